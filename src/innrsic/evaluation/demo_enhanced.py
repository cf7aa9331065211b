"""The demo's enhancer section: each shipped enhancer behind its own codec, swept over the
decode-time temperature and compared with the decoded image and the tuned controls.

For every model of `innrsic.pretrained`, each shown image is compressed with the model's codec
spec and decoded; the conditions are the decoded image, decoded + white noise and decoded +
unsharp mask (strengths tuned as `innrsic evaluate` tunes them, `demo_controls`), and the
enhancer at each of `TEMPERATURES` (seed 0). Each (image, condition) is a row of PSNR,
LPIPS-squeeze (when its weights are found) and NIQE; per model the section shows the means, the
paired PSNR difference from decoded and the paired LPIPS difference from the best control (the
control of lower mean LPIPS on the shown images, as `innrsic.evaluation.paired` picks it) with
95% CIs, a perception-distortion plot, and crops of one image at a few temperatures and seeds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs import make_codec
from innrsic.compute.threads import torch_threads
from innrsic.data.splits import ImageRef
from innrsic.enhancer import load_enhancer
from innrsic.enhancer.apply import enhance_array
from innrsic.enhancer.fast import FastEnhancer, engine_for
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.errors import InnrsicError, WeightsError
from innrsic.evaluation.controls import ControlEntry, subsample
from innrsic.evaluation.crops import CropWindow
from innrsic.evaluation.demo_controls import CONTROL_IMAGES, DemoControls, tune_demo_controls
from innrsic.evaluation.figures import (
    html_figure_grid,
    html_table,
    plot_perception_distortion,
    write_csv,
)
from innrsic.evaluation.grid import slug
from innrsic.evaluation.paired import direction, paired_ci, verdict
from innrsic.evaluation.pipeline import code_image, metric_values
from innrsic.metrics.optional import PER_IMAGE_METRICS, MetricProbe, probe_lpips_squeeze
from innrsic.metrics.stats import MeanCI, mean_ci
from innrsic.pretrained import PretrainedModel

LPIPS = "lpips_squeeze"
METRICS = ("psnr", LPIPS, "niqe")
TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0)
SEED = 0
CROP_TEMPERATURES = (0.0, 0.5, 1.0)
CROP_SEEDS = (0, 1)
SECTION_IMAGES = 12  # spread over the demo's images; keeps the sweep to ~2 minutes on 1 core
ROWS_FILE = "enhancers.csv"
SUMMARY_FILE = "enhancers_summary.csv"
SUMMARY_JSON = "enhancers_summary.json"
ROW_COLUMNS = ("model", "image", "spec", "payload_bpp", "condition", "temperature", "seed",
               "strength", *METRICS, "status")
SUMMARY_COLUMNS = ("model", "condition", "temperature", "strength", "images", *METRICS,
                   "psnr_vs_decoded", "psnr_vs_decoded_ci95", "lpips_vs_best_control",
                   "lpips_vs_best_control_ci95", "lpips_verdict")
DECODED = "decoded"
TEMPERATURE_SENTENCE = (
    "The decode-time temperature T scales the latent z ~ N(0, T²) the enhancer inverts with: "
    "T = 0 is one deterministic restoration, a larger T draws more invented detail (another "
    "seed, other detail); every perceptual claim below is made against the tuned controls "
    "(decoded + white noise, decoded + unsharp mask), not against the decoded image alone."
)


@dataclass(frozen=True)
class Condition:
    """One way to make the shown image from the decoded one: itself, a control, or the
    enhancer at a temperature (seed `SEED`)."""

    label: str
    temperature: float | None = None
    control: ControlEntry | None = None

    def make(self, decoded: np.ndarray, net: FastEnhancer, image_name: str) -> np.ndarray:
        if self.control is not None:
            return self.control.apply(decoded, image_name)
        if self.temperature is not None:
            return enhance_array(decoded, net, EnhanceSettings(self.temperature, SEED))
        return decoded

    def columns(self) -> dict[str, object]:
        """The row fields naming this condition (None where they do not apply)."""
        return {
            "condition": self.label,
            "temperature": self.temperature,
            "seed": None if self.temperature is None else SEED,
            "strength": None if self.control is None else self.control.strength,
        }


def temperature_label(temperature: float, seed: int | None = None) -> str:
    return f"T={temperature:g}" + ("" if seed is None else f" seed {seed}")


def model_conditions(controls: Sequence[ControlEntry]) -> list[Condition]:
    """Decoded, each control, then the temperature sweep."""
    return [
        Condition(DECODED),
        *(Condition(control.name, control=control) for control in controls),
        *(Condition(temperature_label(t), temperature=t) for t in TEMPERATURES),
    ]


def _lpips_probe(weights_dir: str | os.PathLike[str] | None) -> MetricProbe:
    """LPIPS-squeeze's probe; unavailable, with the loader's reason, when its model does not
    load from `weights_dir` (or ``$INNRSIC_WEIGHTS_DIR``)."""
    from innrsic.metrics.perceptual import lpips_model

    try:
        lpips_model(weights_dir)
    except WeightsError as exc:
        return MetricProbe(LPIPS, PER_IMAGE_METRICS[LPIPS], missing=str(exc))
    return probe_lpips_squeeze(weights_dir)


def measure(reference: np.ndarray, test: np.ndarray, lpips: MetricProbe) -> dict[str, float]:
    """PSNR, LPIPS-squeeze (NaN without its weights) and NIQE of `test`."""
    names = [name for name in METRICS if name != LPIPS or lpips.available]
    values = metric_values(reference, test, names, {LPIPS: lpips})
    return {name: values.get(name, math.nan) for name in METRICS}


@dataclass(frozen=True)
class ModelRun:
    """One model's enhancer and conditions, and where its files go."""

    model: PretrainedModel
    net: FastEnhancer
    conditions: list[Condition]
    out: Path
    lpips: MetricProbe

    def image_rows(
        self, ref: ImageRef
    ) -> tuple[list[dict[str, object]], dict[str, np.ndarray]]:
        """The rows of one image (one per condition, or one failed row) and its images by
        condition label (with "original")."""
        image = ref.load()
        base: dict[str, object] = {"model": self.model.name, "image": ref.name}
        try:
            codec = make_codec(self.model.codec)
            base["spec"] = codec.spec
            coded = code_image(image, codec,
                               self.out / "bitstreams" / self.model.name / f"{ref.name}.rsic")
        except InnrsicError as exc:
            return [{**base, "status": f"failed: {exc}"}], {}
        base["payload_bpp"] = coded.bitstream.sizes(*image.shape[:2])["payload_bpp"]
        views = {"original": image}
        rows = []
        for condition in self.conditions:
            views[condition.label] = condition.make(coded.decoded, self.net, ref.name)
            rows.append({**base, **condition.columns(),
                         **measure(image, views[condition.label], self.lpips), "status": "ok"})
        return rows, views


def condition_values(
    rows: Sequence[dict[str, object]], label: str, metric: str
) -> dict[str, float | None]:
    """{image: value} of one condition's successful rows."""
    return {str(r["image"]): float(r[metric])
            for r in rows if r["status"] == "ok" and r["condition"] == label}


def best_control(rows: Sequence[dict[str, object]], conditions: Sequence[Condition]) -> str | None:
    """The control of lowest mean LPIPS-squeeze over the rows (None without controls or
    LPIPS)."""
    means = {c.label: mean_ci(condition_values(rows, c.label, LPIPS).values()).mean
             for c in conditions if c.control is not None}
    known = {label: mean for label, mean in means.items() if mean is not None}
    return min(known, key=lambda label: known[label]) if known else None


def _ci_fields(ci: MeanCI, metric: str) -> dict[str, Any]:
    return {**ci.to_dict(), "verdict": verdict(ci, direction(metric))}


def summarise_model(
    rows: Sequence[dict[str, object]], conditions: Sequence[Condition], best: str | None
) -> list[dict[str, Any]]:
    """Per condition: means, the paired PSNR difference from decoded and the paired LPIPS
    difference from the best control (each a `MeanCI` dict with its verdict)."""
    decoded_psnr = condition_values(rows, DECODED, "psnr")
    best_lpips = condition_values(rows, best, LPIPS) if best else {}
    summary = []
    for condition in conditions:
        values = {m: condition_values(rows, condition.label, m) for m in METRICS}
        entry: dict[str, Any] = {**condition.columns(), "images": len(values["psnr"])}
        entry.update({m: mean_ci(values[m].values()).mean for m in METRICS})
        entry["psnr_vs_decoded"] = _ci_fields(paired_ci(values["psnr"], decoded_psnr), "psnr")
        entry["lpips_vs_best_control"] = (
            _ci_fields(paired_ci(values[LPIPS], best_lpips), LPIPS) if best else None
        )
        summary.append(entry)
    return summary


def flat_summary(model: str, summary: Sequence[dict[str, Any]]) -> list[dict[str, object]]:
    """`summarise_model`'s entries as CSV rows (`SUMMARY_COLUMNS`)."""
    flat = []
    for entry in summary:
        row = {**entry, "model": model}
        for key in ("psnr_vs_decoded", "lpips_vs_best_control"):
            ci = entry[key] or {}
            row[key] = ci.get("mean")
            row[f"{key}_ci95"] = ci.get("ci_half_width")
        row["lpips_verdict"] = (entry["lpips_vs_best_control"] or {}).get("verdict", "")
        flat.append(row)
    return flat


def _number(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) and math.isfinite(value) else ""


def _difference(ci: dict[str, Any] | None, digits: int) -> str:
    """``+0.21 ± 0.05 (better)``, or the mean alone without a CI, or "" without a value."""
    if not ci or ci.get("mean") is None:
        return ""
    text = f"{ci['mean']:+.{digits}f}"
    if ci.get("ci_half_width") is not None:
        text += f" ± {ci['ci_half_width']:.{digits}f}"
    return f"{text} ({ci['verdict']})" if ci["verdict"] != "n/a" else text


def html_summary(summary: Sequence[dict[str, Any]], best: str | None) -> str:
    """The model's table: means and the two paired differences with their CIs."""
    vs_best = f"ΔLPIPS-sq vs {best}" if best else "ΔLPIPS-sq vs best control"
    columns = ("condition", "strength", "images", "PSNR (dB)", "LPIPS-sq", "NIQE",
               "ΔPSNR vs decoded", vs_best)
    shown = [
        {"condition": e["condition"], "strength": _number(e["strength"], 2),
         "images": e["images"], "PSNR (dB)": _number(e["psnr"], 2),
         "LPIPS-sq": _number(e[LPIPS], 3), "NIQE": _number(e["niqe"], 2),
         "ΔPSNR vs decoded": "reference" if e["condition"] == DECODED
         else _difference(e["psnr_vs_decoded"], 2),
         vs_best: "reference" if e["condition"] == best
         else _difference(e["lpips_vs_best_control"], 3)}
        for e in summary
    ]
    return html_table(shown, columns)


def plot_model(out: Path, model: str, summary: Sequence[dict[str, Any]], lpips: bool) -> str:
    """The perception-distortion plot of one model (the sweep as a line, decoded and the
    controls as points); returns its file name."""
    markers = {DECODED: "s", "decoded+noise": "^", "decoded+unsharp": "v"}
    points = []
    for entry in summary:
        label = str(entry["condition"])
        point = {"label": label, "psnr": entry["psnr"], LPIPS: entry[LPIPS],
                 "niqe": entry["niqe"], "marker": markers.get(label, "o")}
        if entry["temperature"] is not None:
            point.update(line=f"enhancer, seed {SEED}", temperature=entry["temperature"])
        elif entry["strength"] is not None:
            point["label"] = f"{label} (strength {entry['strength']:g})"
        points.append(point)
    metrics = [(LPIPS, "LPIPS-squeeze (lower is better)")] if lpips else []
    name = f"pd-{model}.png"
    plot_perception_distortion({model: points}, [*metrics, ("niqe", "NIQE (lower is better)")],
                               out / name, title=f"{model}: means over {summary[0]['images']} "
                               "images")
    return name


def showcase_crops(
    run: ModelRun, ref: ImageRef, views: dict[str, np.ndarray], best: str | None
) -> list[tuple[str, str]]:
    """Crops of the showcase image: original, decoded, the best control and the enhancer at
    `CROP_TEMPERATURES` with each of `CROP_SEEDS` (one crop at T = 0: it is deterministic)."""
    original = views["original"]
    images = {label: views[label] for label in ("original", DECODED, best) if label}
    decoded = views[DECODED]
    for temperature in CROP_TEMPERATURES:
        for seed in CROP_SEEDS if temperature > 0 else CROP_SEEDS[:1]:
            images[temperature_label(temperature, seed)] = (
                views[temperature_label(temperature)] if seed == SEED
                else enhance_array(decoded, run.net, EnhanceSettings(temperature, seed))
            )
    window = CropWindow.busiest(original)
    items = []
    for index, (label, image) in enumerate(images.items()):
        rel = window.write(run.out, f"crops/{run.model.name}/{index:02d}-{slug(label)}.png",
                           image)
        items.append((rel, _crop_caption(ref.name, label, original, image, run.lpips)))
    return items


def _crop_caption(
    name: str, label: str, original: np.ndarray, image: np.ndarray, lpips: MetricProbe
) -> str:
    if label == "original":
        return f"{name} original"
    values = measure(original, image, lpips)
    caption = f"{label}: {values['psnr']:.2f} dB"
    return caption + (f", LPIPS {values[LPIPS]:.3f}" if math.isfinite(values[LPIPS]) else "")


def run_model(
    run: ModelRun, refs: Sequence[ImageRef]
) -> tuple[list[dict[str, object]], list[dict[str, Any]], str]:
    """All rows of one model, its summary and its HTML (table, plot, crops)."""
    rows: list[dict[str, object]] = []
    showcase: dict[str, np.ndarray] = {}
    for ref in tqdm(refs, desc=run.model.name, unit="image"):
        image_rows, views = run.image_rows(ref)
        rows += image_rows
        showcase = showcase or views
    best = best_control(rows, run.conditions)
    summary = summarise_model(rows, run.conditions, best)
    model = run.model
    parts = [
        f"<h3>{model.name}</h3><p>Behind <code>{model.codec}</code>; default temperature "
        f"{model.default_temperature:g}. {model.summary}</p>",
        html_summary(summary, best),
    ]
    if summary[0]["images"]:
        plot = plot_model(run.out, model.name, summary, run.lpips.available)
        parts.append(f'<img class="plot" src="{plot}" alt="perception-distortion plot">')
    if showcase:
        crops = showcase_crops(run, refs[0], showcase, best)
        parts.append(f"<h4>Crops of {refs[0].name}</h4>" + html_figure_grid(crops))
    return rows, summary, "".join(parts)


def run_enhancer_section(
    images: Sequence[Path],
    out: Path,
    models: Sequence[PretrainedModel],
    weights_dir: str | os.PathLike[str] | None = None,
    control_root: Path | None = None,
    control_images: int = CONTROL_IMAGES,
) -> tuple[list[dict[str, object]], list[str]]:
    """Sweep each model over `SECTION_IMAGES` of `images` against decoded and the controls
    (tuned on the UC-M train split under `control_root`); returns (rows, HTML sections).

    Runs on one torch thread, as `innrsic evaluate` does by default: on a machine with a busy
    core, a second thread makes LPIPS-squeeze some 25 times slower instead of faster."""
    with torch_threads(1):
        return _run_section(images, out, models, weights_dir, control_root, control_images)


def _run_section(
    images: Sequence[Path],
    out: Path,
    models: Sequence[PretrainedModel],
    weights_dir: str | os.PathLike[str] | None,
    control_root: Path | None,
    control_images: int,
) -> tuple[list[dict[str, object]], list[str]]:
    refs = subsample([ImageRef(path, path.stem) for path in images], SECTION_IMAGES)
    lpips = _lpips_probe(weights_dir)
    controls = tune_demo_controls(control_root, out, [m.codec for m in models], refs, lpips,
                                  control_images)
    rows: list[dict[str, object]] = []
    flat: list[dict[str, object]] = []
    record: list[dict[str, Any]] = []
    parts = []
    for model in models:
        net = engine_for(load_enhancer(model.weights).eval())
        run = ModelRun(model, net, model_conditions(controls.of(model.codec)), out, lpips)
        model_rows, summary, html = run_model(run, refs)
        rows += model_rows
        flat += flat_summary(model.name, summary)
        record.append(_model_record(model, controls, summary))
        parts.append(html)
    write_csv(out / ROWS_FILE, rows, ROW_COLUMNS)
    write_csv(out / SUMMARY_FILE, flat, SUMMARY_COLUMNS)
    _write_json(out / SUMMARY_JSON, {"images": [r.name for r in refs], "seed": SEED,
                                     "temperatures": list(TEMPERATURES),
                                     "controls": controls.note, "models": record})
    return rows, [_intro(len(refs), controls, lpips), *parts, _links()]


def _model_record(
    model: PretrainedModel, controls: DemoControls, summary: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {"model": model.name, "codec": model.codec,
            "default_temperature": model.default_temperature,
            "controls": {c.name: c.strength for c in controls.of(model.codec)},
            "best_control_rule": f"lowest mean {LPIPS} over the shown images",
            "conditions": list(summary)}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode())


def _json_safe(value: Any) -> Any:
    """`value` with NaN as null and infinities as "inf"/"-inf" (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _intro(count: int, controls: DemoControls, lpips: MetricProbe) -> str:
    lpips_note = "" if lpips.available else (
        " Without LPIPS-squeeze there is no tuned control to make a perceptual claim against: "
        "PSNR and NIQE only.")
    return (
        "<h2>Shipped enhancers: the temperature knob against tuned controls</h2>"
        f"<p>{TEMPERATURE_SENTENCE}</p>"
        f"<p>{count} of the demo images (spread evenly), seed {SEED}. Controls: "
        f"{controls.note}.{lpips_note} ΔPSNR = "
        "condition − decoded; ΔLPIPS-sq = condition − best control (the control of lower mean "
        "LPIPS-squeeze on these images); both per image, then mean ± the half-width of its "
        "95% CI, 'better'/'worse' where the whole CI lies on that side of 0. LPIPS-squeeze "
        "and NIQE: lower is better.</p>"
    )


def _links() -> str:
    return (f'<p>Per-image numbers: <a href="{ROWS_FILE}">{ROWS_FILE}</a>; means and paired '
            f'differences: <a href="{SUMMARY_FILE}">{SUMMARY_FILE}</a>, '
            f'<a href="{SUMMARY_JSON}">{SUMMARY_JSON}</a>; control tuning: '
            '<a href="controls.json">controls.json</a>.</p>')
