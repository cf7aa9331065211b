"""From result rows to numbers: per-combination means with confidence intervals, rate curves,
and Bjøntegaard deltas of every curve against the anchor curve. Controls (decoded + noise,
decoded + unsharp) are combinations and curves like enhancers, ordered after the decoded image."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from innrsic.errors import ConfigError
from innrsic.evaluation.grid import codec_entry, control_id, is_control, temperature_text
from innrsic.evaluation.store import Row, row_key
from innrsic.metrics.bjontegaard import BDResult, bd_quality, bd_rate
from innrsic.metrics.controls import CONTROL_KINDS
from innrsic.metrics.stats import MeanCI, mean_ci

# The metric lists (report order, direction, BD) are read from the metrics table.
from innrsic.metrics.table import BD_METRICS as BD_METRICS
from innrsic.metrics.table import LOWER_IS_BETTER as LOWER_IS_BETTER
from innrsic.metrics.table import QUALITY_METRICS as QUALITY_METRICS
from innrsic.metrics.table import RATE_METRICS
from innrsic.metrics.table import SPECTRUM_METRICS as SPECTRUM_METRICS

CombinationKey = tuple[str, str, float | None, int | None]
CurveKey = tuple[str, str, float | None, int | None]


@dataclass
class Combination:
    """One (codec spec, enhancer, temperature, seed) with its rows and statistics."""

    codec: str
    family: str
    rate: str
    enhancer: str
    enhancer_name: str
    temperature: float | None
    seed: int | None
    rows: list[Row] = field(default_factory=list)
    stats: dict[str, MeanCI] = field(default_factory=dict)

    @property
    def control(self) -> str:
        """The control's kind (``noise``, ``unsharp``), or "" for the decoded image and
        enhancers."""
        return str(self.rows[0].get("control") or "") if is_control(self.enhancer) else ""

    @property
    def strength(self) -> float | None:
        """A control's tuned strength (None otherwise)."""
        return self.rows[0].get("strength") if self.control else None

    @property
    def curve_key(self) -> CurveKey:
        return (self.family, self.enhancer, self.temperature, self.seed)

    @property
    def ok_rows(self) -> list[Row]:
        return [r for r in self.rows if r.get("status") == "ok"]

    def count(self, prefix: str) -> int:
        return sum(1 for r in self.rows if str(r.get("status", "")).startswith(prefix))


@dataclass
class Curve:
    """The combinations of one codec family and one (enhancer, temperature, seed)."""

    key: CurveKey
    label: str
    points: list[Combination]

    def series(self, metric: str) -> tuple[list[float], list[float]]:
        """(mean payload bpp, mean metric) of the points where both are defined."""
        rates, values = [], []
        for point in self.points:
            rate, value = point.stats.get("payload_bpp"), point.stats.get(metric)
            if rate is None or value is None or rate.mean is None or value.mean is None:
                continue
            if math.isfinite(rate.mean) and math.isfinite(value.mean):
                rates.append(rate.mean)
                values.append(value.mean)
        return rates, values


def combination_key(row: Row) -> CombinationKey:
    """The row's key without its image (`innrsic.evaluation.store.row_key`)."""
    return row_key(row)[1:]


def group_rows(
    rows: Iterable[Row], codec_order: Sequence[str] = (), enhancer_order: Sequence[str] = ()
) -> list[Combination]:
    """Rows grouped into combinations, ordered by codec family (first appearance in
    `codec_order`, then in the rows), then no enhancer first, enhancer order, temperature,
    seed, and codec spec."""
    groups: dict[CombinationKey, Combination] = {}
    for row in rows:
        key = combination_key(row)
        if key not in groups:
            groups[key] = Combination(
                codec=key[0], family=str(row["family"]), rate=str(row.get("rate", "")),
                enhancer=key[1], enhancer_name=str(row.get("enhancer_name") or ""),
                temperature=key[2], seed=key[3],
            )
        groups[key].rows.append(row)
    families: list[str] = []
    for spec in codec_order:
        family = codec_entry_family(spec)
        if family not in families:
            families.append(family)
    for combo in groups.values():
        if combo.family not in families:
            families.append(combo.family)
    enhancers = ["", *(control_id(kind) for kind in CONTROL_KINDS), *enhancer_order]
    for combo in groups.values():
        if combo.enhancer not in enhancers:
            enhancers.append(combo.enhancer)
    specs = list(codec_order)

    def order(combo: Combination) -> tuple:
        return (
            families.index(combo.family),
            enhancers.index(combo.enhancer),
            -1.0 if combo.temperature is None else combo.temperature,
            -1 if combo.seed is None else combo.seed,
            specs.index(combo.codec) if combo.codec in specs else len(specs),
            combo.codec,
        )

    return sorted(groups.values(), key=order)


def codec_entry_family(spec: str) -> str:
    from innrsic.evaluation.grid import entry_from_canonical

    return entry_from_canonical(spec).family


def compute_stats(combos: Iterable[Combination], metrics: Sequence[str]) -> None:
    """Fill each combination's `stats`: rate metrics and the quality `metrics` present."""
    for combo in combos:
        ok = combo.ok_rows
        combo.stats = {}
        for metric in (*RATE_METRICS, *metrics):
            if any(metric in row for row in ok):
                combo.stats[metric] = mean_ci(row.get(metric) for row in ok)


def curve_label(combo: Combination, show_seed: bool) -> str:
    if not combo.enhancer:
        return combo.family
    if combo.control:
        return f"{combo.family} + {combo.control} control"
    label = (f"{combo.family} + {combo.enhancer_name} ({combo.enhancer[:8]}) "
             f"T={temperature_text(combo.temperature or 0.0)}")
    if show_seed and combo.seed is not None:
        label += f" seed={combo.seed}"
    return label


def build_curves(combos: Sequence[Combination]) -> list[Curve]:
    """Curves in the combinations' order; points sorted by mean payload bpp."""
    show_seed = len({c.seed for c in combos if c.seed is not None}) > 1
    curves: dict[CurveKey, Curve] = {}
    for combo in combos:
        curve = curves.get(combo.curve_key)
        if curve is None:
            curve = curves[combo.curve_key] = Curve(
                combo.curve_key, curve_label(combo, show_seed), []
            )
        curve.points.append(combo)

    def rate_of(combo: Combination) -> float:
        stat = combo.stats.get("payload_bpp")
        return stat.mean if stat is not None and stat.mean is not None else math.inf

    for curve in curves.values():
        curve.points.sort(key=rate_of)
    return list(curves.values())


def resolve_anchor(
    anchor: str | None, curves: Sequence[Curve], codec_order: Sequence[str]
) -> Curve:
    """The anchor curve: the decoded (no enhancer) curve of the family `anchor` names (a family
    or any spec of it), default the first codec family."""
    decoded = {c.key[0]: c for c in curves if not c.key[1]}
    if not decoded:
        raise ConfigError("no decoded (non-enhanced) curve to use as the BD anchor")
    if anchor is None:
        for spec in codec_order:
            family = codec_entry_family(spec)
            if family in decoded:
                return decoded[family]
        return next(iter(decoded.values()))
    if anchor in decoded:
        return decoded[anchor]
    try:
        family = codec_entry(anchor).family
    except Exception as exc:  # an unparsable --anchor: say what would have been accepted
        raise ConfigError(f"--anchor {anchor!r}: {exc}; codec families present: "
                          f"{', '.join(decoded)}") from exc
    if family not in decoded:
        raise ConfigError(f"--anchor {anchor!r} (family {family!r}) has no results; codec "
                          f"families present: {', '.join(decoded)}")
    return decoded[family]


def bd_table(
    curves: Sequence[Curve], anchor: Curve, metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """For each curve: BD-rate (%) and BD-<metric> against the anchor for each quality metric.

    Each value is a `BDResult` (value or the reason it is n/a)."""
    table = []
    for curve in curves:
        entry: dict[str, Any] = {"curve": curve.label, "anchor": anchor.label,
                                 "points": len(curve.points)}
        for metric in metrics:
            anchor_rates, anchor_values = anchor.series(metric)
            rates, values = curve.series(metric)
            entry[f"bd_rate_{metric}"] = bd_rate(anchor_rates, anchor_values, rates, values)
            entry[f"bd_{metric}"] = bd_quality(anchor_rates, anchor_values, rates, values)
        table.append(entry)
    return table


def bd_json(result: BDResult) -> dict[str, Any]:
    if result.value is None:
        return {"value": None, "reason": f"n/a: {result.reason}"}
    return {"value": result.value, "fits": {"anchor": result.fits[0], "test": result.fits[1]}}
