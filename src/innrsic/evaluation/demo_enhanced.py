"""The demo's enhancer section: each shipped enhancer behind its own codec, with and without it.

For every model of `innrsic.pretrained`, each demo image is compressed with the model's codec
spec, decoded, and enhanced at the model's default temperature. Rows hold bpp and PSNR,
MS-SSIM and LPIPS-squeeze (when its weights are found) of the decoded and the enhanced image;
the section shows the mean of each and the enhanced-minus-decoded difference with its 95%
confidence interval, plus crops of a few images side by side.
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import numpy as np
from tqdm import tqdm

from innrsic.codecs import make_codec
from innrsic.enhancer import load_enhancer
from innrsic.enhancer.apply import enhance_image
from innrsic.enhancer.fast import FastEnhancer, engine_for
from innrsic.errors import InnrsicError, WeightsError
from innrsic.evaluation.crops import CropWindow
from innrsic.evaluation.figures import html_figure_grid, html_table, write_csv
from innrsic.evaluation.pipeline import code_image, metric_values
from innrsic.metrics.optional import PER_IMAGE_METRICS, MetricProbe, probe_lpips_squeeze
from innrsic.metrics.stats import mean_ci
from innrsic.pretrained import PretrainedModel
from innrsic.raster.image import read_image

ROW_COLUMNS = (
    "model",
    "image",
    "spec",
    "payload_bpp",
    "psnr_decoded",
    "psnr_enhanced",
    "ms_ssim_decoded",
    "ms_ssim_enhanced",
    "lpips_decoded",
    "lpips_enhanced",
    "status",
)
SUMMARY_COLUMNS = ("model", "metric", "images", "decoded", "enhanced", "difference", "ci95")
LPIPS = "lpips_squeeze"
# column prefix -> metric (`innrsic.evaluation.pipeline.compute_metrics`)
METRICS = {"psnr": "psnr", "ms_ssim": "ms_ssim", "lpips": LPIPS}
SHOWCASE_IMAGES = 3
SEED = 0


def _lpips_probe(weights_dir: str | os.PathLike[str] | None) -> MetricProbe:
    """LPIPS-squeeze's probe; unavailable, with the loader's reason, when its model does not
    load from `weights_dir` (or ``$INNRSIC_WEIGHTS_DIR``)."""
    from innrsic.metrics.perceptual import lpips_model

    try:
        lpips_model(weights_dir)
    except WeightsError as exc:
        return MetricProbe(LPIPS, PER_IMAGE_METRICS[LPIPS], missing=str(exc))
    return probe_lpips_squeeze(weights_dir)


def _code_and_enhance(
    path: Path, model: PretrainedModel, net: FastEnhancer, out: Path, lpips: MetricProbe
) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """The row of one image and (when it coded) its original, decoded and enhanced images."""
    image = read_image(path)
    row: dict[str, object] = {"model": model.name, "image": path.stem}
    try:
        codec = make_codec(model.codec)
        row["spec"] = codec.spec
        coded = code_image(image, codec, out / "bitstreams" / model.name / f"{path.stem}.rsic")
    except InnrsicError as exc:
        row["status"] = f"failed: {exc}"
        return row, {}
    enhanced = enhance_image(coded.decoded, net, model.default_temperature, SEED)
    height, width = image.shape[:2]
    row["payload_bpp"] = coded.bitstream.sizes(height, width)["payload_bpp"]
    names = [name for name in METRICS.values() if name != LPIPS or lpips.available]
    for label, test in (("decoded", coded.decoded), ("enhanced", enhanced)):
        values = metric_values(image, test, names, {LPIPS: lpips})
        for column, name in METRICS.items():
            row[f"{column}_{label}"] = values.get(name, math.nan)
    row["status"] = "ok"
    return row, {"original": image, "decoded": coded.decoded, "enhanced": enhanced}


def summarise_difference(rows: list[dict[str, object]], model: str) -> list[dict[str, object]]:
    """Per metric: mean decoded, mean enhanced, mean paired difference and its 95% CI."""
    ok = [r for r in rows if r["model"] == model and r["status"] == "ok"]
    summary = []
    for metric in METRICS:
        pairs = [
            (float(r[f"{metric}_decoded"]), float(r[f"{metric}_enhanced"]))
            for r in ok
            if math.isfinite(float(r[f"{metric}_decoded"]))
            and math.isfinite(float(r[f"{metric}_enhanced"]))
        ]
        if not pairs:
            continue
        difference = mean_ci([e - d for d, e in pairs])
        summary.append(
            {
                "model": model,
                "metric": metric,
                "images": len(pairs),
                "decoded": statistics.fmean(d for d, _ in pairs),
                "enhanced": statistics.fmean(e for _, e in pairs),
                "difference": difference.mean,
                "ci95": difference.half_width if difference.half_width is not None else math.nan,
            }
        )
    return summary


def run_enhancer_section(
    images: list[Path],
    out: Path,
    models: list[PretrainedModel],
    weights_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[dict[str, object]], list[str]]:
    """Code, decode and enhance `images` for each model; returns (rows, HTML sections)."""
    lpips = _lpips_probe(weights_dir)
    rows: list[dict[str, object]] = []
    summary: list[dict[str, object]] = []
    crops: list[tuple[str, str]] = []
    for model in models:
        net = engine_for(load_enhancer(model.weights).eval())
        for index, path in enumerate(tqdm(images, desc=model.name, unit="image")):
            row, views = _code_and_enhance(path, model, net, out, lpips)
            rows.append(row)
            if index < SHOWCASE_IMAGES and views:
                crops += _write_crops(out, model.name, path.stem, views, row)
        summary += summarise_difference(rows, model.name)
    write_csv(out / "enhanced.csv", rows, ROW_COLUMNS)
    write_csv(out / "enhanced_summary.csv", summary, SUMMARY_COLUMNS)
    note = (
        f"<p>LPIPS-squeeze not computed: {lpips.missing}</p>" if not lpips.available
        else "<p>LPIPS-squeeze: lower is better. difference = enhanced - decoded (mean over "
        "images, paired), ci95 = half-width of its 95% confidence interval.</p>"
    )
    sections = [
        "<h2>Shipped enhancers: decoded vs enhanced</h2>"
        + "".join(
            f"<p><b>{m.name}</b>: behind <code>{m.codec}</code>, temperature "
            f"{m.default_temperature:g}, seed {SEED}. {m.summary}</p>"
            for m in models
        )
        + note
        + html_table(summary, SUMMARY_COLUMNS),
        "<h3>Crops: original | decoded | enhanced</h3>" + html_figure_grid(crops),
        '<p>Per-image numbers: <a href="enhanced.csv">enhanced.csv</a>, '
        '<a href="enhanced_summary.csv">enhanced_summary.csv</a>.</p>',
    ]
    return rows, sections


def _write_crops(
    out: Path, model: str, stem: str, views: dict[str, np.ndarray], row: dict[str, object]
) -> list[tuple[str, str]]:
    window = CropWindow.busiest(views["original"])
    items = []
    for label, image in views.items():
        name = window.write(out, f"crops/{model}/{stem}-{label}.png", image)
        caption = f"{stem} {label}"
        if label != "original":
            caption += f": {float(row[f'psnr_{label}']):.2f} dB"
            lpips_value = float(row[f"lpips_{label}"])
            if math.isfinite(lpips_value):
                caption += f", LPIPS {lpips_value:.3f}"
        items.append((name, caption))
    return items
