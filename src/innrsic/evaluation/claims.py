"""The report's parts about controls: what each enhancer's perceptual result means against the
best control (the claims), the paired differences behind them, the band-energy table, the
controls' tuning, and the perception-distortion plot."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from innrsic.evaluation.figures import html_table, plot_perception_distortion
from innrsic.evaluation.grid import temperature_text
from innrsic.evaluation.paired import BEST_CONTROL_METRIC, PAIRED_METRICS, Comparison, direction
from innrsic.evaluation.paired import verdict as judge
from innrsic.evaluation.summary import Combination
from innrsic.evaluation.text import METRIC_TITLES, condition_text, digits, fmt_ci, fmt_interval
from innrsic.metrics.controls import CONTROL_KINDS

PD_METRICS = (("lpips_squeeze", "LPIPS-squeeze (lower is better)"),
              ("niqe", "NIQE (lower is better)"))
CONTROL_MARKERS = {"noise": "s", "unsharp": "^"}


def _label(combo: Combination) -> str:
    text = condition_text(combo)
    if combo.temperature is not None:
        text += f" T={temperature_text(combo.temperature)}"
    if combo.seed is not None:
        text += f" seed {combo.seed}"
    return text


def _claim(comparison: Comparison, combo: Combination) -> str:
    """One sentence: the enhancer's LPIPS-squeeze against the best control, then the decoded."""
    best = comparison.best_control
    metric = BEST_CONTROL_METRIC
    if best is None or metric not in combo.stats or metric not in best.stats:
        return "no LPIPS-squeeze against a control: no perceptual claim is made"
    against = comparison.difference(combo, best, metric)
    decoded = comparison.difference(combo, comparison.decoded, metric)
    control = html.escape(condition_text(best))
    numbers = (f"LPIPS-squeeze {fmt_interval(against, 4)} against the best control, "
               f"{fmt_interval(decoded, 4)} against the decoded image")
    outcome = {
        "better": f"<b>a perceptual gain beyond {control}</b>",
        "worse": f"<b>worse than {control}</b>: the control gives more",
        "no clear difference": f"<b>no perceptual gain shown beyond {control}</b>",
        "n/a": "too few images for a confidence interval: no claim",
    }[judge(against, direction(metric))]
    return f"{outcome} ({numbers})"


def claims_section(comparisons: Sequence[Comparison]) -> str:
    """What each enhanced combination's LPIPS-squeeze says against the best control ("" when
    no codec spec has an enhancer and a control)."""
    items = []
    for comparison in comparisons:
        best = comparison.best_control
        if best is None or not comparison.enhanced:
            continue
        lines = "".join(f"<li>{html.escape(_label(c))}: {_claim(comparison, c)}</li>"
                        for c in comparison.enhanced)
        lpips = best.stats.get(BEST_CONTROL_METRIC)
        decoded = comparison.decoded.stats.get(BEST_CONTROL_METRIC)
        items.append(
            f"<h3>{html.escape(comparison.codec)}</h3><p>Best control: "
            f"{html.escape(condition_text(best))}, LPIPS-squeeze {fmt_ci(lpips, 4)} (decoded "
            f"{fmt_ci(decoded, 4)}).</p><ul>{lines}</ul>"
        )
    if not items:
        return ""
    return ("<h2>Perceptual claims, against the best control</h2><p>A perceptual gain is "
            "claimed only against the best control of the codec spec: of decoded + noise and "
            "decoded + unsharp mask, each at the strength tuned on the validation images, the "
            "one with the lower mean LPIPS-squeeze on these images. Differences are paired "
            "(per image), enhanced minus reference, with 95% CIs; a gain needs the whole CI "
            "below 0.</p>" + "".join(items))


def _cell(comparison: Comparison, combo: Combination, reference: Combination | None,
          metric: str) -> str:
    if reference is None or metric not in combo.stats or metric not in reference.stats:
        return "—"
    ci = comparison.difference(combo, reference, metric)
    word = judge(ci, direction(metric))
    return fmt_interval(ci, digits(metric)) + (f" {word}" if word in ("better", "worse") else "")


def paired_section(comparisons: Sequence[Comparison]) -> str:
    """Per codec spec: every control and enhanced combination minus the decoded image, and
    every enhanced combination minus the best control, for `PAIRED_METRICS`."""
    parts = []
    for comparison in comparisons:
        others = [*comparison.controls, *comparison.enhanced]
        if not others:
            continue
        metrics = [m for m in PAIRED_METRICS if m in comparison.decoded.stats]
        columns = ["condition", "n"]
        for metric in metrics:
            title = METRIC_TITLES.get(metric, metric).split(" (")[0]
            columns += [f"Δ {title} vs decoded", f"Δ {title} vs best control"]
        rows = []
        for combo in others:
            row = {"condition": _label(combo), "n": str(len(combo.ok_rows))}
            for metric, vs_decoded, vs_best in zip(metrics, columns[2::2], columns[3::2],
                                                   strict=True):
                row[vs_decoded] = _cell(comparison, combo, comparison.decoded, metric)
                row[vs_best] = ("" if combo.control else
                                _cell(comparison, combo, comparison.best_control, metric))
            rows.append(row)
        parts.append(f"<h3>{html.escape(comparison.codec)}</h3>" + html_table(rows, columns))
    if not parts:
        return ""
    return ("<h2>Paired differences (95% CI)</h2><p>Per image, condition minus reference; "
            "mean [CI]; <i>better</i>/<i>worse</i> where the whole CI is on that side of 0 "
            "(higher PSNR, lower LPIPS, NIQE and band error are better). Band error is "
            "|log2| of the energy ratio to the ground truth in 1/16-1/4 cycle/pixel.</p>"
            + "".join(parts))


def spectrum_section(combos: Sequence[Combination], spectrum: Sequence[str]) -> str:
    """Mean band-energy ratios to the ground truth per combination ("" without them)."""
    if not spectrum:
        return ""
    columns = ["codec", "condition", "n", *(METRIC_TITLES[m] for m in spectrum)]
    rows = []
    for combo in combos:
        row = {"codec": combo.codec, "condition": _label(combo), "n": str(len(combo.ok_rows))}
        for metric in spectrum:
            row[METRIC_TITLES[metric]] = fmt_ci(combo.stats.get(metric), digits(metric))
        rows.append(row)
    return ("<h2>Spectral energy per band, relative to the ground truth (95% CI)</h2><p>Energy "
            "of the windowed luminance spectrum in each radial band (cycles/pixel), divided by "
            "the ground truth's: 1 is the original's energy, below 1 lost detail (blur), above "
            "1 added energy (noise, ringing).</p>" + html_table(rows, columns))


def tuning_section(tuning: dict[str, Any], codecs: Sequence[str]) -> str:
    """The controls' chosen strengths and validation LPIPS per strength ("" without)."""
    records = tuning.get("codecs", {})
    if not records:
        return ""
    columns = ["codec", "control", "chosen strength", "validation LPIPS (chosen)",
               "validation LPIPS (decoded)", "images", "all strengths (validation LPIPS)"]
    rows = []
    for spec in [c for c in codecs if c in records] + [c for c in records if c not in codecs]:
        record = records[spec]
        if "error" in record:
            rows.append({"codec": spec, "control": "—", "chosen strength": record["error"]})
            continue
        for kind in CONTROL_KINDS:
            tuned = record[kind]
            table = ", ".join(f"{r['strength']:g}: {r['mean']:.4f}" for r in tuned["table"])
            rows.append({
                "codec": spec, "control": kind,
                "chosen strength": f"{tuned['strength']:g}"
                + (" (largest tried)" if tuned["at_grid_edge"] else ""),
                "validation LPIPS (chosen)": f"{tuned['val_lpips']:.4f}",
                "validation LPIPS (decoded)": f"{record['decoded_val_lpips']:.4f}",
                "images": str(record["n"]), "all strengths (validation LPIPS)": table,
            })
    radius = (tuning.get("setup") or {}).get("unsharp_radius")
    return (f"<h2>Controls: strengths tuned on {html.escape(str(tuning.get('validation')))}"
            "</h2><p>Per codec spec, each control's strength is the one with the lowest mean "
            "LPIPS-squeeze over the validation images coded with that spec. Noise: white "
            "Gaussian, σ in 8-bit levels, rounded and clipped; unsharp mask: Pillow's, amount "
            f"at radius {radius} px.</p>" + html_table(rows, columns))


def write_pd_plot(path: Path, comparisons: Sequence[Comparison], title: str) -> bool:
    """PSNR against LPIPS-squeeze and NIQE per codec spec; False (nothing written) when no
    codec spec has a control or an enhancer, or the metrics are missing."""
    panels: dict[str, list[dict[str, Any]]] = {}
    for comparison in comparisons:
        if not comparison.controls and not comparison.enhanced:
            continue
        points = [_point(comparison.decoded, label="decoded")]
        points += [_point(c, label=c.enhancer_name, marker=CONTROL_MARKERS.get(c.control, "o"))
                   for c in comparison.controls]
        seeds = {c.enhancer: {c.seed for c in comparison.enhanced} - {None}
                 for c in comparison.enhanced}
        for combo in comparison.enhanced:
            line = f"{combo.enhancer_name} ({combo.enhancer[:8]})"
            wanted = sorted(seeds[combo.enhancer]) if combo.seed is None else [combo.seed]
            for seed in (wanted if len(seeds[combo.enhancer]) > 1 else [None]):
                name = line if seed is None else f"{line} seed {seed}"
                points.append(_point(combo, label=name, line=name))
        panels[comparison.codec] = points
    metrics = [(key, label) for key, label in PD_METRICS
               if any(key in p for points in panels.values() for p in points)]
    if not panels or not metrics:
        return False
    plot_perception_distortion(panels, metrics, path, title=title)
    return True


def _point(combo: Combination, **fields: Any) -> dict[str, Any]:
    values = {m: combo.stats[m].mean for m in ("psnr", *(k for k, _ in PD_METRICS))
              if m in combo.stats and combo.stats[m].mean is not None}
    return {**values, "temperature": combo.temperature, **fields}
