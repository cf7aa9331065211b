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
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs import make_codec
from innrsic.coding import compress_image, decompress_container
from innrsic.container import pack_container, read_container
from innrsic.enhance import enhance_image
from innrsic.enhancer import INNEnhancer
from innrsic.enhancer.fast import FastEnhancer, engine_for
from innrsic.errors import InnrsicError, MetricError, WeightsError
from innrsic.evaluation.stats import mean_ci
from innrsic.imageio import read_image, write_image
from innrsic.metrics import bits_per_pixel, ms_ssim, psnr
from innrsic.pretrained import PretrainedModel
from innrsic.report import html_figure_grid, html_table, texture_crop, write_csv

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
METRICS = ("psnr", "ms_ssim", "lpips")
SHOWCASE_IMAGES = 3
CROP_SIZE = 128
SEED = 0
LpipsFunction = Callable[[np.ndarray, np.ndarray], float] | None


def _lpips_function(weights_dir: str | os.PathLike[str] | None) -> tuple[LpipsFunction, str]:
    """`lpips_distance` bound to the weights, or None (with the reason) when they are missing."""
    from innrsic.metrics.perceptual import lpips_distance, lpips_model

    try:
        lpips_model(weights_dir)
    except WeightsError as exc:
        return None, str(exc)
    return (lambda a, b: lpips_distance(a, b, weights_dir)), ""


def _measure(reference: np.ndarray, test: np.ndarray, lpips: LpipsFunction) -> dict[str, float]:
    values = {"psnr": psnr(reference, test)}
    values["lpips"] = lpips(reference, test) if lpips else math.nan
    try:
        values["ms_ssim"] = ms_ssim(reference, test)
    except MetricError:
        values["ms_ssim"] = math.nan
    return values


def _code_and_enhance(
    path: Path, model: PretrainedModel, net: FastEnhancer, out: Path, lpips: LpipsFunction
) -> tuple[dict[str, object], np.ndarray | None, np.ndarray | None]:
    image = read_image(path)
    row: dict[str, object] = {"model": model.name, "image": path.stem}
    try:
        codec = make_codec(model.codec)
        row["spec"] = codec.spec
        data = pack_container(compress_image(image, codec))
        write_bytes_atomic(out / "bitstreams" / model.name / f"{path.stem}.rsic", data)
        container = read_container(data)
        decoded = decompress_container(container, codec)
    except InnrsicError as exc:
        row["status"] = f"failed: {exc}"
        return row, None, None
    enhanced = enhance_image(decoded, net, model.default_temperature, SEED)
    height, width = image.shape[:2]
    row["payload_bpp"] = bits_per_pixel(container.payload_size, height, width)
    for label, test in (("decoded", decoded), ("enhanced", enhanced)):
        for metric, value in _measure(image, test, lpips).items():
            row[f"{metric}_{label}"] = value
    row["status"] = "ok"
    return row, decoded, enhanced


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
    lpips, lpips_missing = _lpips_function(weights_dir)
    rows: list[dict[str, object]] = []
    summary: list[dict[str, object]] = []
    crops: list[tuple[str, str]] = []
    for model in models:
        net = engine_for(INNEnhancer.load(model.weights).eval())
        for index, path in enumerate(tqdm(images, desc=model.name, unit="image")):
            row, decoded, enhanced = _code_and_enhance(path, model, net, out, lpips)
            rows.append(row)
            if index < SHOWCASE_IMAGES and decoded is not None and enhanced is not None:
                crops += _write_crops(out, model.name, path, decoded, enhanced, row)
        summary += summarise_difference(rows, model.name)
    write_csv(out / "enhanced.csv", rows, ROW_COLUMNS)
    write_csv(out / "enhanced_summary.csv", summary, SUMMARY_COLUMNS)
    note = (
        f"<p>LPIPS-squeeze not computed: {lpips_missing}</p>" if lpips is None
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
    out: Path,
    model: str,
    path: Path,
    decoded: np.ndarray,
    enhanced: np.ndarray,
    row: dict[str, object],
) -> list[tuple[str, str]]:
    original = read_image(path)
    top, left = texture_crop(original, CROP_SIZE)
    window = np.s_[top : top + CROP_SIZE, left : left + CROP_SIZE]
    items = []
    for label, image in (("original", original), ("decoded", decoded), ("enhanced", enhanced)):
        name = f"crops/{model}/{path.stem}-{label}.png"
        write_image(out / name, np.ascontiguousarray(image[window]))
        caption = f"{path.stem} {label}"
        if label != "original":
            caption += f": {float(row[f'psnr_{label}']):.2f} dB"
            lpips_value = float(row[f"lpips_{label}"])
            if math.isfinite(lpips_value):
                caption += f", LPIPS {lpips_value:.3f}"
        items.append((name, caption))
    return items
