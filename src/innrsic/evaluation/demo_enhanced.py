"""The demo's enhancer section: each shipped enhancer behind its own codec, swept over the
decode-time temperature against the decoded image and the tuned controls.

The numbers are an evaluation grid (`innrsic.evaluation.runner.run_evaluation`) under
``OUT/enhancers/``: per model, its codec spec on `SECTION_IMAGES` of the demo's images, the
decoded image, decoded + noise and decoded + unsharp mask (tuned as `innrsic evaluate` tunes
them, on UC Merced train images) and the enhancer at each of `TEMPERATURES` (seed `SEED`); that
folder gets the evaluation's own report (`innrsic.evaluation.page.build_report`). A second grid
under ``OUT/enhancers/showcase-seed1/`` draws the showcase image at `SHOWCASE_TEMPERATURES` with
seed 1. This module adds only the demo's page sections: per model a table of means and paired
differences, a perception-distortion plot ``pd-<model>.png`` and crops of the showcase image.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from innrsic.data.image_sets import describe_image_set, image_set
from innrsic.data.splits import ImageRef
from innrsic.errors import ConfigError, InnrsicError
from innrsic.evaluation.claims import write_pd_plot
from innrsic.evaluation.controls import (
    CONTROLS_FILE,
    ControlSettings,
    check_cached_setup,
    check_validation_images,
    subsample,
)
from innrsic.evaluation.crops import CropWindow
from innrsic.evaluation.figures import html_figure_grid, html_table
from innrsic.evaluation.grid import codec_entry, enhancer_entry, slug, temperature_text
from innrsic.evaluation.page import build_report
from innrsic.evaluation.paired import Comparison, comparisons, direction, verdict
from innrsic.evaluation.runner import EvaluationSettings, run_evaluation
from innrsic.evaluation.store import Row, make_key, read_grid_file, read_rows
from innrsic.evaluation.summary import Combination, compute_stats, group_rows
from innrsic.evaluation.text import condition_text, fmt_ci, fmt_interval
from innrsic.metrics.optional import MetricProbe, probe_lpips_squeeze
from innrsic.pretrained import PretrainedModel
from innrsic.raster.image import read_image

LPIPS = "lpips_squeeze"
TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0)
SEED = 0
SHOWCASE_TEMPERATURES = (0.0, 0.5, 1.0)  # the crops' temperatures (the report's own differ)
SHOWCASE_SEEDS = (0, 1)
SECTION_IMAGES = 12  # spread over the demo's images; keeps the sweep to minutes on 1 core
ENHANCERS_DIR = "enhancers"
SHOWCASE_DIR = "showcase-seed1"
TRAIN_SPLIT = "ucmerced-train"
CONTROL_IMAGES = 21  # `innrsic evaluate --control-images`' default: one per class
TEMPERATURE_SENTENCE = (
    "The decode-time temperature T scales the latent z ~ N(0, T²) the enhancer inverts with: "
    "T = 0 is one deterministic restoration, a larger T draws more invented detail (another "
    "seed, other detail); every perceptual claim below is made against the tuned controls "
    "(decoded + white noise, decoded + unsharp mask), not against the decoded image alone."
)


def control_settings(
    root: Path | None, folder: Path, shown: Sequence[ImageRef], lpips: MetricProbe, count: int
) -> tuple[ControlSettings | None, str]:
    """The controls' validation images (`count` of the UC-M train split under `root`) and a
    sentence saying how they are tuned; None, with the reason, without LPIPS or that split."""
    if not lpips.available:
        return None, f"none: LPIPS-squeeze, which tunes them, is {lpips.status}"
    if root is None or not (root / "ucmerced").is_dir():
        return None, ("none: no UC Merced train split to tune them on (the data folder holds "
                      "no ucmerced/)")
    refs = subsample(image_set(TRAIN_SPLIT, root), count)
    settings = ControlSettings(tuple(refs), describe_image_set(TRAIN_SPLIT, root, len(refs)))
    check_validation_images(settings.images, shown)
    try:
        check_cached_setup(folder, settings)
    except ConfigError:  # an earlier demo's tuning: the demo owns its folder, so it retunes
        (folder / CONTROLS_FILE).unlink()
    return settings, (f"per codec spec, the strengths of least mean LPIPS-squeeze on "
                      f"{settings.label}")


def run_model_grids(
    refs: Sequence[ImageRef], folder: Path, model: PretrainedModel, settings: EvaluationSettings
) -> None:
    """The model's grid on `refs` under `folder`, and its seed-1 draws of the showcase image
    (``refs[0]``) under ``folder/SHOWCASE_DIR``; rows only (the report is built once)."""
    model_settings = replace(settings, codecs=(model.codec,), enhancers=(model.weights,))
    run_evaluation(refs, folder, model_settings, build_report=False)
    seeds = replace(model_settings, seed=SHOWCASE_SEEDS[1], controls=None,
                    temperatures=tuple(t for t in SHOWCASE_TEMPERATURES if t > 0))
    run_evaluation(refs[:1], folder / SHOWCASE_DIR, seeds, progress=False, build_report=False)


def run_enhancer_section(
    images: Sequence[Path],
    out: Path,
    models: Sequence[PretrainedModel],
    weights_dir: Path | None = None,
    control_root: Path | None = None,
    control_images: int = CONTROL_IMAGES,
) -> list[str]:
    """Run every model's grid over `SECTION_IMAGES` of `images` under ``out/enhancers`` (with
    its report), against the controls tuned on the UC-M train split under `control_root`;
    returns the demo page's HTML sections."""
    refs = subsample([ImageRef(path, path.stem) for path in images], SECTION_IMAGES)
    folder = out / ENHANCERS_DIR
    lpips = probe_lpips_squeeze(weights_dir)
    controls, note = control_settings(control_root, folder, refs, lpips, control_images)
    settings = EvaluationSettings(codecs=(), temperatures=TEMPERATURES, seed=SEED,
                                  weights_dir=weights_dir, controls=controls,
                                  data_label=f"{len(refs)} of the demo images")
    for model in models:
        run_model_grids(refs, folder, model, settings)
    build_report(folder, weights_dir=weights_dir)
    found = {c.codec: c for c in grid_comparisons(folder)}
    parts = [model_section(out, model, found[codec_entry(model.codec).spec], refs[0])
             for model in models]
    return [_intro(len(refs), note, lpips), *parts, _links()]


def grid_comparisons(folder: Path) -> list[Comparison]:
    """The per-codec-spec comparisons of the rows under `folder`, as the report groups them."""
    grid = read_grid_file(folder)
    rows = list(read_rows(folder).rows.values())
    combos = group_rows(rows, grid.get("codecs", []), [e["id"] for e in grid.get("enhancers", [])])
    compute_stats(combos, ["psnr", LPIPS, "niqe"])
    return comparisons(combos)


def model_table(comparison: Comparison) -> str:
    """Means (95% CI) per condition, the paired PSNR difference from decoded and the paired
    LPIPS difference from the best control."""
    best = comparison.best_control
    columns = ("condition", "T", "n", "PSNR (dB)", "LPIPS-sq", "NIQE", "ΔPSNR vs decoded",
               "ΔLPIPS-sq vs best control")
    shown = []
    for combo in [comparison.decoded, *comparison.controls, *comparison.enhanced]:
        shown.append({
            "condition": condition_text(combo) + (" (best control)" if combo is best else ""),
            "T": "" if combo.temperature is None else temperature_text(combo.temperature),
            "n": str(len(combo.ok_rows)), "PSNR (dB)": fmt_ci(combo.stats.get("psnr"), 2),
            "LPIPS-sq": fmt_ci(combo.stats.get(LPIPS), 3),
            "NIQE": fmt_ci(combo.stats.get("niqe"), 2),
            "ΔPSNR vs decoded": _difference(comparison, combo, comparison.decoded, "psnr", 2),
            "ΔLPIPS-sq vs best control": _difference(comparison, combo, best, LPIPS, 3),
        })
    return html_table(shown, columns)


def _difference(
    comparison: Comparison, combo: Combination, reference: Combination | None, metric: str,
    places: int,
) -> str:
    """``+0.21 [+0.15, +0.27] better``; "reference" for the reference itself; "" without."""
    if reference is None or metric not in combo.stats or metric not in reference.stats:
        return ""
    if combo is reference:
        return "reference"
    ci = comparison.difference(combo, reference, metric)
    word = verdict(ci, direction(metric))
    return fmt_interval(ci, places) + (f" ({word})" if word != "n/a" else "")


def model_section(
    out: Path, model: PretrainedModel, comparison: Comparison, showcase: ImageRef
) -> str:
    """One model's heading, table, perception-distortion plot and showcase crops."""
    parts = [
        f"<h3>{html.escape(model.name)}</h3><p>Behind <code>{html.escape(model.codec)}</code>; "
        f"default temperature {model.default_temperature:g}. {html.escape(model.summary)}</p>",
        model_table(comparison),
    ]
    plot = f"pd-{model.name}.png"
    images = len(comparison.decoded.ok_rows)
    if write_pd_plot(out / plot, [comparison], f"{model.name}: means over {images} images"):
        parts.append(f'<img class="plot" src="{plot}" alt="perception-distortion plot">')
    crops = showcase_crops(out, model, comparison, showcase)
    if crops:
        parts.append(f"<h4>Crops of {html.escape(showcase.name)}</h4>" + html_figure_grid(crops))
    return "".join(parts)


def showcase_rows(
    out: Path, model: PretrainedModel, comparison: Comparison, name: str
) -> list[tuple[str, Path, Row]]:
    """(label, folder, row) of the showcase image: decoded, the best control and the enhancer
    at `SHOWCASE_TEMPERATURES` with each of `SHOWCASE_SEEDS` (one at T = 0: deterministic)."""
    folder = out / ENHANCERS_DIR
    rows = read_rows(folder).rows
    seeded = read_rows(folder / SHOWCASE_DIR).rows
    enhancer = enhancer_entry(model.weights).id
    wanted = [("decoded", folder, rows.get(make_key(name, comparison.codec)))]
    best = comparison.best_control
    if best is not None:
        wanted.append((best.enhancer_name, folder,
                       rows.get(make_key(name, comparison.codec, best.enhancer))))
    for temperature in SHOWCASE_TEMPERATURES:
        for seed in SHOWCASE_SEEDS if temperature > 0 else SHOWCASE_SEEDS[:1]:
            source, where = (rows, folder) if seed == SEED else (seeded, folder / SHOWCASE_DIR)
            key = make_key(name, comparison.codec, enhancer, temperature, seed)
            wanted.append((f"T={temperature:g} seed {seed}", where, source.get(key)))
    return [(label, where, row) for label, where, row in wanted
            if row is not None and row.get("status") == "ok"]


def showcase_crops(
    out: Path, model: PretrainedModel, comparison: Comparison, showcase: ImageRef
) -> list[tuple[str, str]]:
    """Crops of the showcase image (original first) at its busiest window, with captions."""
    try:
        original = showcase.load()
    except InnrsicError:
        return []
    window = CropWindow.busiest(original)
    folder = f"crops/{model.name}"
    items = [(window.write(out, f"{folder}/00-original.png", original),
              f"{showcase.name} original")]
    for index, (label, where, row) in enumerate(showcase_rows(out, model, comparison,
                                                             showcase.name), 1):
        image = read_image(where / str(row["image_file"]))
        rel = window.write(out, f"{folder}/{index:02d}-{slug(label)}.png", image)
        caption = f"{label}: {row['psnr']:.2f} dB"
        lpips = row.get(LPIPS)
        if isinstance(lpips, float) and math.isfinite(lpips):
            caption += f", LPIPS {lpips:.3f}"
        items.append((rel, caption))
    return items


def _intro(count: int, note: str, lpips: MetricProbe) -> str:
    lpips_note = "" if lpips.available else (
        " Without LPIPS-squeeze there is no tuned control to make a perceptual claim against: "
        "PSNR and NIQE only.")
    return (
        "<h2>Shipped enhancers: the temperature knob against tuned controls</h2>"
        f"<p>{TEMPERATURE_SENTENCE}</p>"
        f"<p>{count} of the demo images (spread evenly), seed {SEED} (every image enhanced "
        f"with it, as `innrsic evaluate` does). Controls: {html.escape(note)}.{lpips_note} "
        "ΔPSNR = condition − decoded; ΔLPIPS-sq = condition − best control (the control of "
        "lower mean LPIPS-squeeze on these images); both per image, then mean [95% CI], "
        "'better'/'worse' where the whole CI lies on that side of 0. LPIPS-squeeze and NIQE: "
        "lower is better.</p>"
    )


def _links() -> str:
    return (f'<p>The enhancer grid\'s own evaluation report: <a href="{ENHANCERS_DIR}/'
            f'index.html">{ENHANCERS_DIR}/index.html</a>; per-image rows: <a href="'
            f'{ENHANCERS_DIR}/rows.csv">{ENHANCERS_DIR}/rows.csv</a>; means and paired '
            f'differences: <a href="{ENHANCERS_DIR}/summary.csv">summary.csv</a>, <a href="'
            f'{ENHANCERS_DIR}/summary.json">summary.json</a>; control tuning: <a href="'
            f'{ENHANCERS_DIR}/{CONTROLS_FILE}">{CONTROLS_FILE}</a>.</p>')
