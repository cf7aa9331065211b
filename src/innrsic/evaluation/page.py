"""The evaluation report, rebuilt from every row file under the output folder.

Writes ``rows.csv`` (one row per image and combination), ``summary.json`` / ``summary.csv``
(per combination: n, means and 95% Student-t confidence intervals; in summary.json also the
controls' tuning, each codec spec's best control and the paired differences of every enhanced
combination against the decoded image and the best control: `paired`), ``bd.csv``
(Bjøntegaard deltas of every curve against the anchor), ``rate_distortion.png`` (bpp vs PSNR,
MS-SSIM), ``rate_perception.png`` (bpp vs LPIPS, NIQE, band error), ``perception_distortion.png``
(PSNR vs LPIPS and NIQE per codec spec: decoded and controls as points, each enhancer's
temperature sweep as a line), side-by-side crops under ``crops/`` and ``index.html``.
bpp is the codec payload's bits per pixel; ``file_bpp`` adds the .rsic header and checksums.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from innrsic.atomic import write_bytes_atomic
from innrsic.data.splits import ImageRef
from innrsic.errors import InnrsicError
from innrsic.evaluation.claims import (
    claims_section,
    paired_section,
    spectrum_section,
    tuning_section,
    write_pd_plot,
)
from innrsic.evaluation.controls import read_tuning
from innrsic.evaluation.crops import CropWindow
from innrsic.evaluation.figures import (
    html_figure_grid,
    html_table,
    plot_rate_distortion,
    write_csv,
    write_html_page,
)
from innrsic.evaluation.grid import slug, temperature_text
from innrsic.evaluation.paired import Comparison, comparison_json, comparisons
from innrsic.evaluation.pipeline import ALWAYS_COMPUTED
from innrsic.evaluation.store import Row, read_grid_file, read_rows
from innrsic.evaluation.summary import (
    BD_METRICS,
    LOWER_IS_BETTER,
    QUALITY_METRICS,
    RATE_METRICS,
    SPECTRUM_METRICS,
    Combination,
    Curve,
    bd_json,
    bd_table,
    build_curves,
    compute_stats,
    group_rows,
    resolve_anchor,
)
from innrsic.evaluation.text import METRIC_TITLES, condition_text, digits, fmt_ci
from innrsic.metrics.optional import MetricProbe, probe_metrics
from innrsic.raster.image import read_image

CROP_TEMPERATURES = (0.0, 1.0)
ROW_COLUMNS = (
    "image", "codec", "family", "rate", "enhancer", "enhancer_name", "control", "strength",
    "temperature", "seed", "width", "height", "payload_bytes", "file_bytes",
    "payload_bpp", "file_bpp",
)
ROW_TAIL_COLUMNS = ("status", "notes", "bitstream", "image_file", "source", "box")
COMBO_COLUMNS = ("codec", "family", "rate", "enhancer", "enhancer_name", "control", "strength",
                 "temperature", "seed")


@dataclass
class ReportResult:
    """What `build_report` wrote and the anchor it used."""

    out: Path
    rows: int
    combinations: int
    anchor: str
    files: list[Path] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)


@dataclass
class _Report:
    """Everything the report's files are written from."""

    grid: dict[str, Any]
    rows: list[Row]
    combos: list[Combination]
    curves: list[Curve]
    anchor: Curve
    bd: list[dict[str, Any]]
    metrics: list[str]  # quality metrics present, in report order
    bd_metrics: list[str]
    spectrum: list[str]  # band-energy ratios present
    status: dict[str, str]
    tuning: dict[str, Any]  # controls.json, {} without controls
    comparisons: list[Comparison]
    bad_lines: list[str]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def metric_status(rows: list[Row], probes: dict[str, MetricProbe]) -> dict[str, str]:
    """Each metric: "computed ..." or "unavailable: <what is missing, where it looked>"."""
    ok = [r for r in rows if r.get("status") == "ok"]
    status = {name: "computed (no weights needed)" for name in ALWAYS_COMPUTED}
    for name, probe in probes.items():
        done = sum(1 for r in ok if name in r)
        files = ", ".join(str(p) for p in probe.files.values())
        if ok and done == len(ok):
            status[name] = "computed" + (f" with {files}" if files else "")
        elif done:
            rest = ("rerun without --report-only to fill the rest" if probe.available
                    else probe.status)
            status[name] = f"computed for {done} of {len(ok)} rows; {rest}"
        elif probe.available:
            status[name] = (f"available ({files}) but not computed yet: rerun without "
                            "--report-only")
        else:
            status[name] = probe.status
    return status


def build_report(
    out: str | os.PathLike[str],
    anchor: str | None = None,
    weights_dir: str | os.PathLike[str] | None = None,
    probes: dict[str, MetricProbe] | None = None,
    title: str = "innrsic evaluation",
    lead: Sequence[str] = (),
) -> ReportResult:
    """Merge every row file under `out` and write the tables, plots, crops and index.html
    (titled `title`; a preset's own HTML sections `lead` open the page)."""
    out = Path(out)
    rowset = read_rows(out)
    if not rowset.rows:
        raise InnrsicError(f"no result rows under {out / 'rows'}; run `innrsic evaluate` first")
    grid = read_grid_file(out)
    codec_order = list(grid.get("codecs", []))
    enhancer_order = [e["id"] for e in grid.get("enhancers", [])]
    anchor = anchor or grid.get("anchor")
    probes = probes if probes is not None else probe_metrics(weights_dir)
    rows = list(rowset.rows.values())
    metrics = [m for m in QUALITY_METRICS if any(m in r for r in rows)]
    spectrum = [m for m in SPECTRUM_METRICS if any(m in r for r in rows)]
    combos = group_rows(rows, codec_order, enhancer_order)
    compute_stats(combos, [*metrics, *spectrum])
    curves = build_curves(combos)
    anchor_curve = resolve_anchor(anchor, curves, codec_order)
    bd_metrics = [m for m in metrics if m in BD_METRICS]
    bd = bd_table(curves, anchor_curve, bd_metrics)
    report = _Report(grid=grid, rows=rows, combos=combos, curves=curves, anchor=anchor_curve,
                     bd=bd, metrics=metrics, bd_metrics=bd_metrics, spectrum=spectrum,
                     status=metric_status(rows, probes), tuning=read_tuning(out),
                     comparisons=comparisons(combos), bad_lines=list(rowset.bad_lines))
    result = ReportResult(out, len(rows), len(combos), anchor_curve.label,
                          bad_lines=list(rowset.bad_lines))

    order = {id(row): i for i, combo in enumerate(combos) for row in combo.rows}
    sorted_rows = sorted(rows, key=lambda r: (str(r["image"]), order[id(r)]))
    row_columns = [*ROW_COLUMNS, *metrics, *spectrum, *ROW_TAIL_COLUMNS]
    write_csv(out / "rows.csv", sorted_rows, row_columns)
    summary_rows = _summary_csv_rows(combos, [*metrics, *spectrum])
    summary_columns = list(summary_rows[0]) if summary_rows else []
    write_csv(out / "summary.csv", summary_rows, summary_columns)
    bd_rows, bd_columns = _bd_csv_rows(bd, bd_metrics)
    write_csv(out / "bd.csv", bd_rows, bd_columns)
    text = json.dumps(_json_safe(_summary_json(report)), indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(out / "summary.json", text.encode())
    plots = _write_plots(out, report)
    crops = _write_crops(out, rows, combos)
    _write_index(out, report, plots, crops, (title, lead))
    names = ["rows.csv", "summary.csv", "summary.json", "bd.csv", *plots, "index.html"]
    result.files = [out / name for name in names]
    return result


def _summary_csv_rows(combos: list[Combination], metrics: list[str]) -> list[dict[str, Any]]:
    table = []
    for combo in combos:
        entry: dict[str, Any] = {c: getattr(combo, c) for c in COMBO_COLUMNS}
        entry.update(images=len(combo.rows), n=len(combo.ok_rows),
                     unreachable=combo.count("unreachable"), failed=combo.count("failed"))
        for metric in (*RATE_METRICS, *metrics):
            stat = combo.stats.get(metric)
            values = stat.to_dict() if stat is not None else {}
            for part in ("mean", "ci_low", "ci_high", "ci_half_width", "n"):
                entry[f"{metric}_{part}"] = values.get(part)
        table.append(entry)
    return table


def _bd_csv_rows(bd: list[dict[str, Any]], metrics: list[str]) -> tuple[list[dict], list[str]]:
    columns = ["curve", "anchor", "points", "fit_anchor", "fit_test"]
    for metric in metrics:
        columns += [f"bd_rate_{metric}_percent", f"bd_{metric}"]
    rows = []
    for entry in bd:
        row: dict[str, Any] = {"curve": entry["curve"], "anchor": entry["anchor"],
                               "points": entry["points"]}
        fits = entry[f"bd_rate_{metrics[0]}"].fits if metrics else ("", "")
        row["fit_anchor"], row["fit_test"] = fits
        for metric in metrics:
            for name, column in ((f"bd_rate_{metric}", f"bd_rate_{metric}_percent"),
                                 (f"bd_{metric}", f"bd_{metric}")):
                result = entry[name]
                row[column] = result.value if result.value is not None else f"n/a: {result.reason}"
        rows.append(row)
    return rows, columns


def _summary_json(report: _Report) -> dict[str, Any]:
    grid, rows, curves, anchor, bd = (report.grid, report.rows, report.curves, report.anchor,
                                      report.bd)
    unavailable = {name: text for name, text in report.status.items()
                   if text.startswith("unavailable")}
    combinations = []
    for combo in report.combos:
        entry: dict[str, Any] = {c: getattr(combo, c) for c in COMBO_COLUMNS}
        entry.update(images=len(combo.rows), n=len(combo.ok_rows),
                     unreachable=combo.count("unreachable"), failed=combo.count("failed"))
        entry["metrics"] = {m: s.to_dict() for m, s in combo.stats.items()}
        entry["metrics"].update(unavailable)
        combinations.append(entry)
    return {
        "format": "innrsic-evaluation-summary",
        "version": 1,
        "data": grid.get("data", ""),
        "images": len({r["image"] for r in rows}),
        "rows": len(rows),
        "rate": "payload_bpp: codec payload bits per pixel (the curves and BD use it); "
                "file_bpp adds the .rsic header and checksums",
        "confidence_interval": "95% two-sided Student-t interval of the mean",
        "metrics": report.status,
        "combinations": combinations,
        "controls": {
            "validation": report.tuning.get("validation"),
            "rule": "per codec spec, each control's strength is the one of its grid with the "
                    "lowest mean lpips_squeeze over the validation images (coded with that "
                    "spec); noise sigma in 8-bit levels, unsharp amount at the given radius",
            "setup": report.tuning.get("setup"),
            "codecs": report.tuning.get("codecs", {}),
        },
        "comparisons": [comparison_json(c) for c in report.comparisons],
        "curves": [
            {"label": c.label, "family": c.key[0], "enhancer": c.key[1],
             "temperature": c.key[2], "seed": c.key[3],
             "points": [p.codec for p in c.points]}
            for c in curves
        ],
        "bd": {
            "anchor": anchor.label,
            "method": "Bjøntegaard on mean payload bpp and mean metric per point: log-rate; "
                      "cubic polynomial fit for >= 4 points, PCHIP for 2-3 points; integrated "
                      "over the overlapping interval; BD-rate in percent, BD-<metric> is test "
                      "minus anchor in the metric's unit",
            "curves": [
                {"curve": e["curve"], "points": e["points"],
                 **{name: bd_json(value) for name, value in e.items()
                    if name.startswith("bd_")}}
                for e in bd
            ],
        },
        "unreadable_row_lines": report.bad_lines,
    }


def _write_plots(out: Path, report: _Report) -> list[str]:
    images = len({r["image"] for r in report.rows})
    # The data label reads "<name> (<details>)"; a plot's title keeps it short.
    name = str(report.grid.get("data") or "").split(" (")[0]
    title = f"{name}: {images} images" if name else f"{images} images"
    curves, metrics = report.curves, report.metrics
    written = []
    fidelity = [m for m in metrics if m not in LOWER_IS_BETTER]
    perception = [m for m in metrics if m in LOWER_IS_BETTER]
    for name, group in (("rate_distortion.png", fidelity), ("rate_perception.png", perception)):
        if not group:
            continue
        points = {}
        for curve in curves:
            points[curve.label] = []
            for point in curve.points:
                rate = point.stats.get("payload_bpp")
                if rate is None or rate.mean is None:
                    continue
                values = {m: point.stats[m].mean for m in group if m in point.stats}
                points[curve.label].append(
                    {"bpp": rate.mean, **{m: v for m, v in values.items() if v is not None}}
                )
        drawn = [m for m in group if any(m in p for curve in points.values() for p in curve)]
        if not drawn:
            continue
        labels = [(m, METRIC_TITLES.get(m, m) + (" (lower is better)"
                                                 if m in LOWER_IS_BETTER else "")) for m in drawn]
        plot_rate_distortion(points, labels, out / name, title=title)
        written.append(name)
    if write_pd_plot(out / "perception_distortion.png", report.comparisons, title):
        written.append("perception_distortion.png")
    return written


def _crop_images(rows: list[Row], combos: list[Combination]) -> list[str]:
    """Up to two images (the first, and the middle one) decoded OK by every codec spec."""
    specs = {c.codec for c in combos if not c.enhancer}
    decoded_ok: dict[str, set[str]] = {}
    for row in rows:
        if not row.get("enhancer") and row.get("status") == "ok":
            decoded_ok.setdefault(str(row["image"]), set()).add(str(row["codec"]))
    names = sorted(name for name, done in decoded_ok.items() if done == specs)
    if not names:
        return []
    chosen = [names[0], names[len(names) // 2]]
    return list(dict.fromkeys(chosen))


def _caption(kind: str, row: Row) -> str:
    parts = [f"{row['payload_bpp']:.3f} bpp"]
    if isinstance(row.get("psnr"), float):
        parts.append(f"{row['psnr']:.2f} dB")
    if isinstance(row.get("lpips_squeeze"), float):
        parts.append(f"LPIPS {row['lpips_squeeze']:.3f}")
    return f"{kind}: {', '.join(parts)}"


def _write_crops(out: Path, rows: list[Row], combos: list[Combination]) -> list[str]:
    """HTML sections of side-by-side crops: ground truth, decoded, the controls, enhanced at
    T = 0 and 1."""
    by_key = {(str(r["image"]), str(r["codec"]), str(r.get("enhancer") or ""),
               r.get("temperature")): r for r in rows}
    sections = []
    for index, name in enumerate(_crop_images(rows, combos)):
        sample = next(r for r in rows if r["image"] == name)
        box = tuple(sample["box"]) if sample.get("box") else None
        try:
            gt = ImageRef(Path(sample["source"]), name, box).load()  # type: ignore[arg-type]
        except InnrsicError as exc:
            sections.append(f"<p>No crops of {html.escape(name)}: {html.escape(str(exc))}</p>")
            continue
        window = CropWindow.busiest(gt)
        folder = f"crops/{index}"
        ground_truth = window.write(out, f"{folder}/ground_truth.png", gt)
        parts = [f"<h3>{html.escape(name)}: {window.size}x{window.size} crop at x={window.left}, "
                 f"y={window.top} (its busiest region), shown at 2x</h3>"]
        for combo in combos:
            if combo.enhancer:
                continue
            decoded = by_key.get((name, combo.codec, "", None))
            if decoded is None or decoded.get("status") != "ok":
                continue
            items = [(ground_truth, f"ground truth {name}")]
            wanted = [(f"decoded {combo.codec}", decoded)]
            for other in combos:
                if (other.codec == combo.codec and other.enhancer
                        and (other.control or other.temperature in CROP_TEMPERATURES)):
                    row = by_key.get((name, other.codec, other.enhancer, other.temperature))
                    if row is not None and row.get("status") == "ok":
                        label = condition_text(other)
                        wanted.append((label if other.control else f"enhanced {label}", row))
            for number, (label, row) in enumerate(wanted):
                try:
                    image = read_image(out / row["image_file"])
                except InnrsicError:
                    continue
                rel = window.write(out, f"{folder}/{slug(combo.codec)}/{number}.png", image)
                items.append((rel, _caption(label, row)))
            parts.append(f"<h4>{html.escape(combo.codec)}</h4>" + html_figure_grid(items))
        sections.append("".join(parts))
    return sections


def _intro(report: _Report) -> str:
    """The page's opening paragraphs: what was run, how to read it, and its warnings."""
    grid, rows, combos = report.grid, report.rows, report.combos
    images = {str(r["image"]) for r in rows}
    enhancers = grid.get("enhancers", [])
    enhancer_text = ", ".join(f"{e['name']} ({e['id'][:8]})" for e in enhancers)
    controlled = any(c.control for c in combos)
    intro = (
        f"<p>{len(images)} images ({html.escape(str(grid.get('data') or 'data not recorded'))}),"
        f" {len(combos)} combinations, {len(rows)} rows. Codec specs: "
        f"{html.escape(', '.join(dict.fromkeys(c.codec for c in combos)))}. "
        + (f"Enhancers: {html.escape(enhancer_text)}"
           f"; temperatures {html.escape(', '.join(map(str, grid.get('temperatures', []))))}; "
           f"seeds {html.escape(', '.join(map(str, grid.get('seeds', []))))}. "
           if enhancers else "No enhancer. ")
        + ("Controls: decoded + white Gaussian noise and decoded + unsharp mask, strengths "
           f"tuned on {html.escape(str(report.tuning.get('validation') or 'validation images'))}"
           ". " if controlled else "")
        + "bpp is the codec payload's bits per pixel (file bpp, with the .rsic header and "
        "checksums, is in the CSV); enhanced images have their codec's rate, the enhancer adds "
        "no bits. Means are over the images a combination coded successfully; ± is the "
        "half-width of the 95% Student-t confidence interval of the mean.</p>"
    )
    if enhancers and not controlled:
        intro += ("<p><b>No controls were run</b> (<code>--no-controls</code>): a perceptual "
                  "gain over the decoded image shown here may be no more than adding noise or "
                  "sharpening gives; no perceptual claim is made.</p>")
    sizes = {len(c.ok_rows) for c in combos}
    if len(sizes) > 1:
        intro += ("<p><b>Note:</b> combinations are averaged over different numbers of images "
                  f"({', '.join(map(str, sorted(sizes)))}); see the table of rows not OK.</p>")
    expected = grid.get("images")
    if isinstance(expected, int) and expected > len(images):
        intro += (f"<p><b>Incomplete:</b> the last run covered {expected} images; rows exist "
                  f"for {len(images)}. Shards may still be running.</p>")
    return intro


def _means_table(report: _Report) -> str:
    """The table of each combination's mean rate and metrics with their 95% CIs."""
    metrics = ("payload_bpp", *report.metrics)
    columns = ["codec", "condition", "T", "n", *[METRIC_TITLES.get(m, m) for m in metrics]]
    table_rows = []
    for combo in report.combos:
        entry = {"codec": combo.codec, "condition": condition_text(combo),
                 "T": "" if combo.temperature is None else temperature_text(combo.temperature),
                 "n": str(len(combo.ok_rows))}
        for metric in metrics:
            entry[METRIC_TITLES.get(metric, metric)] = fmt_ci(combo.stats.get(metric),
                                                              digits(metric))
        table_rows.append(entry)
    return html_table(table_rows, columns)


def _bd_html_table(report: _Report) -> str:
    """The table of every curve's Bjøntegaard deltas against the anchor."""
    bd_metrics = report.bd_metrics
    bd_columns = ["curve", "points", "fits (anchor / test)"]
    bd_rows = []
    for entry in report.bd:
        first = entry[f"bd_rate_{bd_metrics[0]}"] if bd_metrics else None
        row = {"curve": entry["curve"], "points": str(entry["points"]),
               "fits (anchor / test)": " / ".join(first.fits) if first and first.fits[0] else ""}
        for metric in bd_metrics:
            title = METRIC_TITLES.get(metric, metric)
            unit = " (dB)" if metric == "psnr" else ""
            row[f"BD-rate {title} (%)"] = entry[f"bd_rate_{metric}"].text(2)
            row[f"BD-{title.split(' (')[0]}{unit}"] = entry[f"bd_{metric}"].text(
                3 if metric == "psnr" else 4)
        bd_rows.append(row)
    if bd_rows:
        bd_columns += [c for c in bd_rows[0] if c not in bd_columns]
    return html_table(bd_rows, bd_columns)


def _write_index(
    out: Path, report: _Report, plots: list[str], crops: list[str],
    page: tuple[str, Sequence[str]],
) -> None:
    not_ok = [r for r in report.rows if r.get("status") != "ok"]
    metric_items = "".join(
        f"<li><b>{html.escape(METRIC_TITLES.get(name, name))}</b> (<code>{name}</code>): "
        f"{html.escape(text)}</li>" for name, text in report.status.items()
    )
    pd_plots = [p for p in plots if p == "perception_distortion.png"]
    rate_plots = [p for p in plots if p not in pd_plots]
    sections = [
        _intro(report),
        claims_section(report.comparisons),
        *(["<h2>Perception-distortion</h2><p>Per codec spec, PSNR against LPIPS-squeeze and "
           "against NIQE (lower is better for both): the decoded image and the controls as "
           "points, each enhancer's temperature sweep as a line.</p>"
           + "".join(f'<img class="plot" src="{p}" alt="{p}">' for p in pd_plots)]
          if pd_plots else []),
        "<h2>Rate-distortion and rate-perception</h2>"
        + "".join(f'<img class="plot" src="{p}" alt="{p}">' for p in rate_plots),
        paired_section(report.comparisons),
        f"<h2>Metrics</h2><ul>{metric_items}</ul>",
        "<h2>Mean per combination (95% CI)</h2>" + _means_table(report),
        spectrum_section(report.combos, report.spectrum),
        tuning_section(report.tuning, [c.codec for c in report.comparisons]),
        f"<h2>Bjøntegaard deltas against {html.escape(report.anchor.label)}</h2>"
        "<p>On each point's mean payload bpp and mean metric; log-rate; cubic polynomial fit "
        "for curves of 4 or more points, PCHIP (monotone piecewise cubic) for 2-3 points; "
        "integrated over the interval both curves cover. BD-rate: negative means fewer bits "
        "for the same quality. BD-metric: test minus anchor at the same rate (higher PSNR / "
        "MS-SSIM is better, lower LPIPS is better).</p>" + _bd_html_table(report),
        "<h2>Side by side (same bitstream, same bpp)</h2>"
        + ("".join(crops) if crops else "<p>no image was decoded by every codec spec</p>"),
        f"<h2>Rows not OK ({len(not_ok)})</h2>"
        + (html_table(not_ok[:200], ("image", "codec", "enhancer", "temperature", "status"))
           if not_ok else "<p>none</p>"),
    ]
    if report.bad_lines:
        sections.append(f"<p><b>{len(report.bad_lines)} unreadable row line(s) skipped:</b> "
                        f"{html.escape('; '.join(report.bad_lines[:10]))}</p>")
    sections.append(
        '<p>Files: <a href="rows.csv">rows.csv</a>, <a href="summary.csv">summary.csv</a>, '
        '<a href="summary.json">summary.json</a>, <a href="bd.csv">bd.csv</a>'
        + (', <a href="controls.json">controls.json</a>' if report.tuning else "") + ".</p>"
    )
    title, lead = page
    write_html_page(out / "index.html", title, [*lead, *(s for s in sections if s)])
