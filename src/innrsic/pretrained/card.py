"""Model cards for shipped enhancers, written from `innrsic evaluate` rows and a training run.

For each evaluation (a folder written by ``innrsic evaluate`` with one codec spec, one enhancer
and several temperatures) the card tabulates bpp, PSNR, MS-SSIM and LPIPS-squeeze of the
decoded image and of the enhanced image at each temperature (means with 95% confidence
intervals), plus the paired enhanced-minus-decoded difference per image with its own interval.

The default temperature is the one with the best (lowest) mean LPIPS-squeeze among those whose
mean PSNR is at most `PSNR_TOLERANCE_DB` below the decoded image's, on the first evaluation.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from innrsic.compute.cpu import cpu_info
from innrsic.errors import InnrsicError
from innrsic.metrics.stats import mean_ci

PSNR_TOLERANCE_DB = 0.5
METRICS = ("payload_bpp", "psnr", "ms_ssim", "lpips_squeeze")
DECODED = "decoded"


@dataclass(frozen=True)
class ConditionStats:
    """One row of a card table: a condition's means, intervals and paired differences."""

    condition: str
    temperature: float | None
    n: int
    means: dict[str, float]
    half_widths: dict[str, float]
    differences: dict[str, float]
    difference_half_widths: dict[str, float]


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def _half_width(values: list[float]) -> tuple[float, float]:
    stats = mean_ci(values)
    mean = stats.mean if stats.mean is not None else math.nan
    return mean, stats.half_width if stats.half_width is not None else math.nan


def evaluation_stats(rows_csv: Path, codec: str) -> list[ConditionStats]:
    """Decoded and every enhanced temperature of `codec` in an evaluation's ``rows.csv``."""
    by_condition: dict[tuple[str, float | None], dict[str, dict[str, float]]] = defaultdict(dict)
    with rows_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["codec"] != codec or row["status"] != "ok":
                continue
            if row["enhancer"]:
                key = (row["enhancer_name"] or row["enhancer"], _float(row["temperature"]))
            else:
                key = (DECODED, None)
            by_condition[key][row["image"]] = {m: _float(row[m]) for m in METRICS}
    decoded = by_condition.get((DECODED, None))
    if not decoded:
        raise InnrsicError(f"{rows_csv}: no decoded rows for codec {codec}")
    stats = []
    order = sorted(by_condition, key=lambda k: (k[0] != DECODED, k[1] or 0.0))
    for condition, temperature in order:
        images = by_condition[(condition, temperature)]
        means, halves, diffs, diff_halves = {}, {}, {}, {}
        for metric in METRICS:
            means[metric], halves[metric] = _half_width([v[metric] for v in images.values()])
            paired = [
                values[metric] - decoded[name][metric]
                for name, values in images.items()
                if name in decoded
            ]
            diffs[metric], diff_halves[metric] = _half_width(paired)
        stats.append(
            ConditionStats(condition, temperature, len(images), means, halves, diffs, diff_halves)
        )
    return stats


def choose_temperature(stats: list[ConditionStats]) -> float | None:
    """Best-LPIPS temperature whose PSNR is within `PSNR_TOLERANCE_DB` of decoded (or None)."""
    decoded = next(s for s in stats if s.temperature is None)
    eligible = [
        s
        for s in stats
        if s.temperature is not None
        and s.means["psnr"] >= decoded.means["psnr"] - PSNR_TOLERANCE_DB
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda s: s.means["lpips_squeeze"]).temperature


def lpips_gain_is_significant(stats: list[ConditionStats], temperature: float) -> bool:
    """Enhanced LPIPS below decoded by more than both means' 95% intervals and the paired one."""
    decoded = next(s for s in stats if s.temperature is None)
    chosen = next(s for s in stats if s.temperature == temperature)
    gain = decoded.means["lpips_squeeze"] - chosen.means["lpips_squeeze"]
    widest = max(
        decoded.half_widths["lpips_squeeze"],
        chosen.half_widths["lpips_squeeze"],
        chosen.difference_half_widths["lpips_squeeze"],
    )
    return gain > widest


def _cell(mean: float, half: float, digits: int) -> str:
    if math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def stats_table(stats: list[ConditionStats]) -> str:
    """A Markdown table: means ± 95% CI, then the paired differences against decoded."""
    digits = {"payload_bpp": 4, "psnr": 2, "ms_ssim": 4, "lpips_squeeze": 4}
    head = (
        "| condition | n | bpp | PSNR dB | MS-SSIM | LPIPS-sq | ΔPSNR dB | ΔMS-SSIM | ΔLPIPS-sq |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for s in stats:
        name = DECODED if s.temperature is None else f"enhanced T={s.temperature:g}"
        cells = [_cell(s.means[m], s.half_widths[m], digits[m]) for m in METRICS]
        if s.temperature is None:
            deltas = ["", "", ""]
        else:
            deltas = [
                _cell(s.differences[m], s.difference_half_widths[m], digits[m])
                for m in ("psnr", "ms_ssim", "lpips_squeeze")
            ]
        lines.append(f"| {name} | {s.n} | " + " | ".join(cells + deltas) + " |")
    return head + "\n".join(lines) + "\n"


def hardware_description() -> str:
    """CPU model and core count of this machine (what trained or measured)."""
    info = cpu_info()
    return f"{info.model}, {info.logical_cpus} logical cores, no GPU"
