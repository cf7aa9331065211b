"""The shipping rule and model-card tables for enhancers, from an acceptance run.

An acceptance run (``benchmarks/enhancer_acceptance.py``, its ``summary.json``) measures an
enhancer at several temperatures on pairs sets, beside the decoded image and the two trivial
controls tuned on training images (decoded + noise, decoded + unsharp mask). Issue 15's rule,
applied by `refusals`: a model ships only if

- at T = 0 it restores: its PSNR is above the decoded image's beyond the 95% CI of the paired
  difference, on the first pairs set;
- at its default temperature (`choose_temperature`: the largest of the sweep whose mean PSNR is
  not below the decoded image's on the first set) LPIPS-squeeze beats the best control beyond
  the CI, on every set;
- and, given the model it would replace (measured in the same run), it is not worse on the
  first set: PSNR at T = 0 and LPIPS-squeeze at each model's default temperature (means).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from innrsic.compute.cpu import cpu_info
from innrsic.errors import InnrsicError

_CONDITION = re.compile(r"^(?P<label>.+)@T=(?P<temperature>[0-9.eE+-]+)$")
CONTROL_TITLES = {"noise": "decoded + noise", "unsharp": "decoded + unsharp"}
TABLE_METRICS = (("psnr", "PSNR dB", 2), ("lpips", "LPIPS-sq", 3), ("niqe", "NIQE", 2),
                 ("band_err_16_4", "band err 1/16-1/4", 3), ("seed_diff", "seed diff", 1))


@dataclass(frozen=True)
class Measure:
    """One (pairs set, condition, metric) row of an acceptance summary."""

    mean: float | None
    diff_vs_decoded: tuple[float, float, float] | None
    diff_vs_best_control: tuple[float, float, float] | None


@dataclass(frozen=True)
class Acceptance:
    """An acceptance run: its pairs sets in order, measures, tuned controls and enhancers."""

    pairs: list[str]
    measures: dict[tuple[str, str, str], Measure]
    tuning: dict[str, dict]
    default_temperatures: dict[str, float | None]
    command: str

    def measure(self, pairs: str, condition: str, metric: str) -> Measure:
        key = (pairs, condition, metric)
        if key not in self.measures:
            raise InnrsicError(f"the acceptance run has no {metric} of {condition} on {pairs}")
        return self.measures[key]

    def temperatures(self, label: str) -> list[float]:
        """The temperatures enhancer `label` was measured at, ascending."""
        found = {float(m["temperature"]) for _, condition, _ in self.measures
                 if (m := _CONDITION.match(condition)) and m["label"] == label}
        if not found:
            raise InnrsicError(f"the acceptance run has no enhancer labelled {label!r}")
        return sorted(found)


def condition(label: str, temperature: float) -> str:
    """The acceptance run's name of enhancer `label` at `temperature`."""
    return f"{label}@T={temperature:g}"


def _triple(row: dict, name: str) -> tuple[float, float, float] | None:
    values = [row.get(f"diff_vs_{name}{suffix}") for suffix in ("", "_ci_low", "_ci_high")]
    return None if any(v is None for v in values) else tuple(float(v) for v in values)


def read_acceptance(path: Path) -> Acceptance:
    """An acceptance run's ``summary.json``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        meta, rows = data["meta"], data["summary"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InnrsicError(f"{path}: not an acceptance summary ({exc})") from exc
    measures = {
        (row["pairs"], row["condition"], row["metric"]): Measure(
            row.get("mean"), _triple(row, "decoded"), _triple(row, "best_control"))
        for row in rows
    }
    return Acceptance(
        pairs=list(meta["pairs"]), measures=measures, tuning=meta.get("tuning", {}),
        default_temperatures={e["label"]: e.get("default_temperature")
                              for e in meta.get("enhancers", [])},
        command=meta.get("command", ""),
    )


def choose_temperature(acceptance: Acceptance, label: str) -> float:
    """The largest temperature of the sweep whose mean PSNR is not below the decoded image's
    on the first pairs set (0 when none is)."""
    first = acceptance.pairs[0]
    keep = [t for t in acceptance.temperatures(label)
            if (d := acceptance.measure(first, condition(label, t), "psnr").diff_vs_decoded)
            and d[0] >= 0]
    return max(keep, default=0.0)


def refusals(acceptance: Acceptance, label: str, temperature: float,
             replaces: str | None = None) -> list[str]:
    """Why enhancer `label` at default `temperature` must not ship (empty: it may)."""
    first = acceptance.pairs[0]
    reasons = []
    restore = acceptance.measure(first, condition(label, 0), "psnr").diff_vs_decoded
    if restore is None or restore[1] <= 0:
        reasons.append(f"at T=0 PSNR is not above the decoded image's beyond the CI on {first}"
                       f" ({_diff(restore, 2)} dB)")
    for pairs in acceptance.pairs:
        gain = acceptance.measure(pairs, condition(label, temperature), "lpips")
        if gain.diff_vs_best_control is None or gain.diff_vs_best_control[2] >= 0:
            reasons.append(f"at T={temperature:g} LPIPS-squeeze does not beat the best control "
                           f"beyond the CI on {pairs} ({_diff(gain.diff_vs_best_control, 3)})")
    if replaces is not None:
        old_t = acceptance.default_temperatures.get(replaces) or 0.0
        pairs_of = {"PSNR at T=0": ("psnr", 0.0, 0.0, 1), "LPIPS-squeeze at the default "
                    "temperature": ("lpips", temperature, old_t, -1)}
        for what, (metric, new_t, t_old, sign) in pairs_of.items():
            new = acceptance.measure(first, condition(label, new_t), metric).mean
            old = acceptance.measure(first, condition(replaces, t_old), metric).mean
            if new is None or old is None or sign * (new - old) < 0:
                reasons.append(f"{what} is worse than {replaces}'s on {first} ({new} vs {old})")
    return reasons


def _diff(triple: tuple[float, float, float] | None, digits: int) -> str:
    if triple is None:
        return ""
    mean, low, high = triple
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _value(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def acceptance_table(acceptance: Acceptance, pairs: str, labels: dict[str, str]) -> str:
    """A Markdown table of `pairs`: decoded, both tuned controls, and each enhancer of
    `labels` (label -> title) at each temperature, with differences and their 95% CIs."""
    tuning = acceptance.tuning.get(pairs, {})
    rows = [("decoded", "decoded")]
    for kind, title in CONTROL_TITLES.items():
        strength = tuning.get(kind, {}).get("strength")
        rows.append((kind, f"{title} ({strength:g}, tuned)" if strength is not None else title))
    rows += [(condition(label, t), f"{title} T={t:g}") for label, title in labels.items()
             for t in acceptance.temperatures(label)]
    head = [title for _, title, _ in TABLE_METRICS]
    head += ["ΔPSNR vs decoded", "ΔLPIPS vs decoded", "ΔLPIPS vs best control"]
    lines = ["| condition | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, title in rows:
        cells = []
        for metric, _, digits in TABLE_METRICS:
            key = (pairs, name, metric)
            cells.append(_value(acceptance.measures[key].mean, digits)
                         if key in acceptance.measures else "")
        psnr = acceptance.measures.get((pairs, name, "psnr"))
        lpips = acceptance.measures.get((pairs, name, "lpips"))
        cells += [_diff(psnr.diff_vs_decoded if psnr else None, 2),
                  _diff(lpips.diff_vs_decoded if lpips else None, 3),
                  _diff(lpips.diff_vs_best_control if lpips else None, 3)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def hardware_description() -> str:
    """CPU model and core count of this machine (what trained or measured)."""
    info = cpu_info()
    return f"{info.model}, {info.logical_cpus} logical cores, no GPU"
