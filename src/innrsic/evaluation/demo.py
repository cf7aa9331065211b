"""The demo job: each shipped enhancer behind its codec, swept over the decode-time temperature
against the decoded image and tuned controls, then every classical codec at three target rates
on real aerial images.

Writes, under the output directory: the `.rsic` bitstreams, `results.csv` (one row per image,
codec and rate), `summary.csv` (means per codec and rate), `rd.png` (bpp vs PSNR and MS-SSIM),
side-by-side crops, the enhancer section's `enhancers.csv`, `enhancers_summary.csv`,
`enhancers_summary.json`, `controls.json` and one `pd-<model>.png` per model
(`innrsic.evaluation.demo_enhanced`), and `index.html` tying them together, enhancers first.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from innrsic.codecs import make_codec
from innrsic.codecs.classical import CLASSICAL_CODECS
from innrsic.data.splits import ucmerced_split
from innrsic.errors import InnrsicError, RateTargetError
from innrsic.evaluation.crops import CropWindow
from innrsic.evaluation.demo_controls import CONTROL_IMAGES
from innrsic.evaluation.demo_enhanced import run_enhancer_section
from innrsic.evaluation.figures import (
    html_figure_grid,
    html_table,
    plot_rate_distortion,
    write_csv,
    write_html_page,
)
from innrsic.evaluation.pipeline import code_image, metric_values
from innrsic.pretrained import installed_models
from innrsic.raster.image import list_images, read_image

DEFAULT_RATES = (0.25, 0.5, 1.0)
RESULT_COLUMNS = (
    "image",
    "codec",
    "target_bpp",
    "spec",
    "width",
    "height",
    "file_bytes",
    "payload_bytes",
    "bpp",
    "payload_bpp",
    "psnr",
    "ms_ssim",
    "encode_s",
    "decode_s",
    "status",
)
SUMMARY_COLUMNS = ("codec", "target_bpp", "images", "payload_bpp", "bpp", "psnr", "ms_ssim")
DEMO_METRICS = ("psnr", "ms_ssim")


@dataclass(frozen=True)
class DemoInputs:
    """The images the demo runs on and a sentence saying where they came from."""

    images: list[Path]
    source: str


def select_demo_images(data: Path, per_class: int, limit: int | None) -> DemoInputs:
    """UC-M test-split images (`per_class` per class) when `data` holds `ucmerced/`;
    otherwise every image in `data`. `limit` caps the count."""
    if (data / "ucmerced").is_dir():
        taken: dict[str, int] = defaultdict(int)
        images = []
        for ref in ucmerced_split(data, "test"):
            image_class = ref.path.parent.name
            if taken[image_class] < per_class:
                taken[image_class] += 1
                images.append(ref.path)
        source = f"UC Merced test split ({per_class} per class) from {data / 'ucmerced'}"
    else:
        images = list_images(data)
        source = f"images under {data}"
    if limit is not None:
        images = images[:limit]
    if not images:
        raise InnrsicError(f"no images found under {data}")
    return DemoInputs(images, source)


def run_demo(
    data: Path,
    out: Path,
    rates: tuple[float, ...] = DEFAULT_RATES,
    per_class: int = 1,
    limit: int | None = None,
    codecs: tuple[str, ...] = tuple(CLASSICAL_CODECS),
    workers: int = 1,
    enhancers: bool = True,
    weights_dir: str | os.PathLike[str] | None = None,
    control_root: Path | None = None,
    control_images: int = CONTROL_IMAGES,
) -> list[dict[str, object]]:
    """Run the demo grid (images spread over `workers` processes) and write its report.

    With `enhancers`, every shipped enhancer also runs behind its own codec on some of the
    images (`innrsic.evaluation.demo_enhanced`; LPIPS-squeeze from `weights_dir` or
    ``$INNRSIC_WEIGHTS_DIR`` when found), against controls tuned on `control_images` images of
    the UC-M train split under `control_root` (default: `data` when it holds ``ucmerced/``);
    those rows are not returned (see ``enhancers.csv``).

    Returns the per-image result rows. A rate a codec cannot reach for an image is a row with
    status "unreachable: ..."; any other failure has status "failed: ...".
    """
    inputs = select_demo_images(data, per_class, limit)
    showcase_path = inputs.images[0]
    task = partial(_code_image, codecs=codecs, rates=rates, out=out, showcase=showcase_path)
    rows: list[dict[str, object]] = []
    crops: dict[str, np.ndarray] = {}
    with ProcessPoolExecutor(max_workers=max(1, workers), initializer=_single_thread) as pool:
        results = pool.map(task, inputs.images)
        for image_rows in tqdm(results, total=len(inputs.images), desc="demo", unit="image"):
            for row in image_rows:
                decoded = row.pop("decoded", None)
                if decoded is not None:
                    caption = (
                        f"{row['codec']} @ {row['target_bpp']} bpp target: "
                        f"{row['payload_bpp']:.3f} bpp, {row['psnr']:.2f} dB"
                    )
                    crops[caption] = decoded
                rows.append(row)
    summary = summarise(rows)
    write_csv(out / "results.csv", rows, RESULT_COLUMNS)
    write_csv(out / "summary.csv", summary, SUMMARY_COLUMNS)
    curves: dict[str, list[dict[str, float]]] = defaultdict(list)
    for entry in summary:
        curves[str(entry["codec"])].append(
            {"bpp": entry["payload_bpp"], "psnr": entry["psnr"], "ms_ssim": entry["ms_ssim"]}
        )
    plot_rate_distortion(
        curves,
        [("psnr", "PSNR (dB)"), ("ms_ssim", "MS-SSIM")],
        out / "rd.png",
        title=f"{len(inputs.images)} images: {inputs.source}",
    )
    crop_items = _write_crops(out, read_image(showcase_path), showcase_path.stem, crops)
    not_ok = [r for r in rows if r["status"] != "ok"]
    sections = [
        "<h2>Classical codecs</h2>"
        f"<p>{len(inputs.images)} images ({inputs.source}); codecs {', '.join(codecs)}; "
        f"target rates {', '.join(map(str, rates))} bpp. bpp is measured from the payload "
        "bytes; file bpp adds the .rsic header and checksums. Means are over the images "
        "each codec reached the target on.</p>",
        '<h3>Rate-distortion</h3><img class="plot" src="rd.png" alt="rate-distortion plot">',
        "<h3>Mean per codec and rate</h3>" + html_table(summary, SUMMARY_COLUMNS),
        f"<h3>Side by side: {showcase_path.stem}</h3>" + html_figure_grid(crop_items),
        f"<h3>Targets not reached or failed ({len(not_ok)})</h3>"
        + (
            html_table(not_ok, ("image", "codec", "target_bpp", "status"))
            if not_ok
            else "<p>none</p>"
        ),
        '<p>Per-image numbers: <a href="results.csv">results.csv</a>, '
        '<a href="summary.csv">summary.csv</a>.</p>',
    ]
    models = installed_models() if enhancers else []
    if models:
        root = control_root or (data if (data / "ucmerced").is_dir() else None)
        sections = run_enhancer_section(inputs.images, out, models, weights_dir, root,
                                        control_images)[1] + sections
    write_html_page(out / "index.html", "innrsic demo: codecs and enhancers on aerial images",
                    sections)
    return rows


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _code_image(
    path: Path, codecs: tuple[str, ...], rates: tuple[float, ...], out: Path, showcase: Path
) -> list[dict[str, object]]:
    """All (codec, rate) rows for one image; decoded images are kept only for the showcase."""
    image = read_image(path)
    rows = []
    for name in codecs:
        for rate in rates:
            row = _code_one(image, path.stem, name, rate, out)
            if path != showcase:
                row.pop("decoded", None)
            rows.append(row)
    return rows


def _code_one(image: np.ndarray, stem: str, name: str, rate: float, out: Path) -> dict[str, object]:
    height, width = image.shape[:2]
    row: dict[str, object] = {
        "image": stem,
        "codec": name,
        "target_bpp": rate,
        "width": width,
        "height": height,
    }
    try:
        codec = make_codec(f"{name}:bpp={rate}")
        row["spec"] = codec.spec
        coded = code_image(image, codec, out / "bitstreams" / name / f"{rate}" / f"{stem}.rsic")
    except RateTargetError as exc:
        row["status"] = f"unreachable: {exc}"
        return row
    except InnrsicError as exc:
        row["status"] = f"failed: {exc}"
        return row
    sizes = coded.bitstream.sizes(height, width)
    row.update(
        encode_s=coded.encode_s,
        decode_s=coded.decode_s,
        file_bytes=sizes["file_bytes"],
        payload_bytes=sizes["payload_bytes"],
        bpp=sizes["file_bpp"],
        payload_bpp=sizes["payload_bpp"],
        **metric_values(image, coded.decoded, DEMO_METRICS, {}),
        status="ok",
        decoded=coded.decoded,
    )
    return row


def summarise(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Means per (codec, target rate) over the images that coded successfully."""
    groups: dict[tuple[str, float], list[dict[str, object]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok":
            groups[(str(row["codec"]), float(row["target_bpp"]))].append(row)
    summary = []
    for (name, rate), members in sorted(groups.items()):
        entry: dict[str, object] = {"codec": name, "target_bpp": rate, "images": len(members)}
        for key in ("payload_bpp", "bpp", "psnr", "ms_ssim"):
            values = [float(m[key]) for m in members if math.isfinite(float(m[key]))]
            entry[key] = statistics.fmean(values) if values else math.nan
        summary.append(entry)
    return summary


def _write_crops(
    out: Path, showcase: np.ndarray, stem: str, decoded: dict[str, np.ndarray]
) -> list[tuple[str, str]]:
    window = CropWindow.busiest(showcase)
    original = window.write(out, "crops/original.png", showcase)
    items = [(original, f"{stem} original, crop at ({window.left}, {window.top})")]
    for index, (caption, image) in enumerate(decoded.items()):
        items.append((window.write(out, f"crops/{index:02d}.png", image), caption))
    return items
