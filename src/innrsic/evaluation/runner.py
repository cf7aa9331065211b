"""Running an evaluation grid over images: every codec spec, then its controls (when asked
for; `innrsic.evaluation.controls`) and every enhancer x temperature on its decoded image, with
everything cached under the output folder.

Layout of the output folder::

    cache/bitstreams/<codec>/<image>.rsic            the real bitstream (.rsic container)
    cache/decoded/<codec>/<image>.png                its decoded image
    cache/enhanced/<enhancer id>/T<t>/<seed>/<codec>/<image>.png
                                                     <seed> is seed<S> or deterministic (T=0)
    cache/controls/<kind>/<strength>/<codec>/<image>.png   decoded + noise / unsharp mask
    controls.json                                    the controls' tuning (see `controls`)
    rows/shard-<i>-of-<n>.jsonl                      result rows (see `store`)
    grid.json                                        codecs, enhancers, temperatures seen so far
    rows.csv, summary.json, summary.csv, bd.csv, *.png, crops/, index.html   (see `page`)

A rerun computes only what is missing: a row already present is reused; a row lacking a metric
that has become available gets that metric added; a missing decoded or enhanced image is made
from the cached bitstream or decoded image when those exist. Enhanced rows report the codec's
rate: the enhancer adds no bits.

Seeds: every image is enhanced with the run's seed (``--seed``) itself. The latent is keyed to
(seed, pixel position) by the one sampler, `innrsic.enhancer.apply.latent_noise`, so an
enhanced image is exactly what ``innrsic enhance DECODED.png --seed <seed> --temperature T``
writes for its decoded image, and sharding or image order change nothing.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs import Codec, make_codec
from innrsic.compute.threads import torch_threads
from innrsic.data.splits import ImageRef
from innrsic.enhancer.apply import enhance_array
from innrsic.enhancer.fast import DEFAULT_PRECISION, engine_for
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.enhancer.temperature import GRID_TEMPERATURES
from innrsic.errors import (
    ConfigError,
    ContainerError,
    ImageReadError,
    InnrsicError,
    RateTargetError,
)
from innrsic.evaluation.controls import (
    TUNING_METRIC,
    ControlEntry,
    ControlSettings,
    check_cached_setup,
    check_grids,
    check_validation_images,
    tune_codecs,
)
from innrsic.evaluation.grid import (
    CodecEntry,
    EnhancerEntry,
    check_temperatures,
    codec_entries,
    enhancer_entry,
    shard_from_env,
    temperature_text,
)
from innrsic.evaluation.page import build_report as write_report
from innrsic.evaluation.pipeline import (
    Bitstream,
    compute_metrics,
    encode_image,
    per_image_metrics,
)
from innrsic.evaluation.store import (
    GRID_FILE,
    Row,
    RowKey,
    RowSet,
    RowWriter,
    is_failed,
    make_key,
    merge_row,
    read_grid_file,
    read_rows,
    shard_path,
)
from innrsic.metrics.optional import MetricProbe, probe_metrics
from innrsic.raster.image import read_image, write_image

log = logging.getLogger(__name__)

CACHE_DIR = "cache"
# how the enhanced images' latents are drawn: position-keyed at the run's seed. Folders of
# 2026-12-07 keyed them at a seed derived per image, earlier ones used a torch.Generator.
LATENT = "position-keyed, run seed 2026-12-08"


@dataclass(frozen=True)
class EvaluationSettings:
    """What to run: codec specs, enhancer weights files and temperatures, and how."""

    codecs: tuple[str, ...]
    enhancers: tuple[Path, ...] = ()
    temperatures: tuple[float, ...] = GRID_TEMPERATURES
    seed: int = 0
    weights_dir: Path | None = None
    anchor: str | None = None
    device: str = "cpu"
    data_label: str = ""
    # torch threads while running. 1 by default: the per-image work is small, parallelism comes
    # from shards (processes), and on a busy machine extra threads spin instead of working.
    threads: int | None = 1
    # the enhancer network's precision (`innrsic.enhancer.fast.FastEnhancer`); float32 gives
    # the reference's pixels exactly
    precision: str = DEFAULT_PRECISION
    # decoded + noise / unsharp conditions per codec spec, tuned on these validation images
    controls: ControlSettings | None = None


@dataclass
class EvaluationResult:
    """What one run did. `rows_computed` counts new rows, `rows_updated` rows that gained a
    metric, `rows_reused` rows taken from earlier runs unchanged."""

    out: Path
    shard: tuple[int, int]
    images: int
    rows_computed: int = 0
    rows_updated: int = 0
    rows_reused: int = 0
    bitstreams_encoded: int = 0
    images_decoded: int = 0
    images_enhanced: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    missing_rows: int = 0
    report_written: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures


def _writable(image: np.ndarray) -> np.ndarray:
    return image if image.flags.writeable else image.copy()


def _load_png(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        return read_image(path)
    except ImageReadError as exc:
        log.warning("recomputing %s: %s", path, exc)
        return None


def _cached_bitstream(path: Path) -> Bitstream | None:
    if not path.is_file():
        return None
    try:
        return Bitstream.read(path.read_bytes())
    except ContainerError as exc:
        log.warning("re-encoding %s: %s", path, exc)
        return None


Condition = EnhancerEntry | ControlEntry | None  # None: the decoded image itself


class _Job(NamedTuple):
    """One row to make for an image and codec spec: its key, its condition (with the
    temperature of an enhancer) and the metrics it lacks (None: the whole row is new)."""

    key: RowKey
    condition: Condition
    temperature: float | None
    missing: list[str] | None

    @property
    def needed(self) -> bool:
        return self.missing is None or bool(self.missing)


@dataclass(frozen=True)
class _Plan:
    """What every image of a shard goes through: codec specs, their tuned controls, the
    enhancers (with their networks) at each temperature, and the metric probes."""

    entries: list[CodecEntry]
    controls: dict[str, list[ControlEntry]]
    enhancers: list[tuple[EnhancerEntry, torch.nn.Module]]
    temperatures: tuple[float, ...]
    probes: dict[str, MetricProbe]


@dataclass
class _GridRunner:
    """The per-image work of one shard: runs its plan, reusing the cache, and writes rows."""

    out: Path
    plan: _Plan
    settings: EvaluationSettings
    existing: RowSet
    writer: RowWriter
    result: EvaluationResult
    wanted: list[str] = field(init=False)
    codecs: dict[str, Codec] = field(init=False)

    def __post_init__(self) -> None:
        self.wanted = per_image_metrics(self.plan.probes)
        self.codecs = {entry.spec: make_codec(entry.spec) for entry in self.plan.entries}

    # -- cache paths (relative to out) --
    @staticmethod
    def bitstream_rel(entry: CodecEntry, name: str) -> str:
        return f"{CACHE_DIR}/bitstreams/{entry.slug}/{name}.rsic"

    @staticmethod
    def decoded_rel(entry: CodecEntry, name: str) -> str:
        return f"{CACHE_DIR}/decoded/{entry.slug}/{name}.png"

    def enhanced_rel(
        self, enhancer: EnhancerEntry, temperature: float, entry: CodecEntry, name: str
    ) -> str:
        draw = "deterministic" if temperature == 0 else f"seed{self.settings.seed}"
        return (f"{CACHE_DIR}/enhanced/{enhancer.id}/T{temperature_text(temperature)}/{draw}/"
                f"{entry.slug}/{name}.png")

    @staticmethod
    def control_rel(control: ControlEntry, entry: CodecEntry, name: str) -> str:
        return (f"{CACHE_DIR}/controls/{control.kind}/{control.strength:g}/{entry.slug}/"
                f"{name}.png")

    def _needs(self, key: RowKey, strength: float | None = None) -> list[str] | None:
        """Metrics to compute for `key`: all (None means a new row), some, or [] (reuse). A
        control row made at another strength than `strength` is made again."""
        row = self.existing.rows.get(key)
        if row is None or is_failed(row):
            return None
        if strength is not None and row.get("strength") != strength:
            return None
        if row.get("status") != "ok":
            return []
        return [m for m in self.wanted if m not in row]

    def _jobs(self, ref: ImageRef, entry: CodecEntry) -> list[_Job]:
        """Every row of `ref` coded with `entry`: decoded, each control, each enhancer x
        temperature."""
        decoded_key = make_key(ref.name, entry.spec)
        jobs = [_Job(decoded_key, None, None, self._needs(decoded_key))]
        for control in self.plan.controls.get(entry.spec, []):
            key = make_key(ref.name, entry.spec, control.id)
            jobs.append(_Job(key, control, None, self._needs(key, control.strength)))
        for enhancer, _ in self.plan.enhancers:
            for temperature in self.plan.temperatures:
                key = make_key(ref.name, entry.spec, enhancer.id, temperature, self.settings.seed)
                jobs.append(_Job(key, enhancer, temperature, self._needs(key)))
        return jobs

    def run_image(self, ref: ImageRef) -> None:
        gt: np.ndarray | None = None
        unreadable: InnrsicError | None = None
        for entry in self.plan.entries:
            jobs = self._jobs(ref, entry)
            todo = [job for job in jobs if job.needed]
            self.result.rows_reused += len(jobs) - len(todo)
            if not todo:
                continue
            if gt is None and unreadable is None:
                try:
                    gt = _writable(ref.load())
                except InnrsicError as exc:
                    unreadable = exc
            try:
                if gt is None:
                    raise unreadable or InnrsicError(f"{ref.name}: not loaded")
                bitstream, decoded = self._coded(ref, entry, gt)
            except InnrsicError as exc:
                for job in todo:
                    self._write_error(ref, entry, job, gt, exc)
                continue
            coded = {**bitstream.sizes(*gt.shape[:2]),
                     "bitstream": self.bitstream_rel(entry, ref.name)}
            for job in todo:
                image, image_rel = self._condition_image(ref, entry, job, decoded)
                row = self._base_row(ref, entry, job, gt.shape)
                row.update(coded, image_file=image_rel, status="ok")
                self._emit(job, row, image, gt)

    def _condition_image(
        self, ref: ImageRef, entry: CodecEntry, job: _Job, decoded: np.ndarray
    ) -> tuple[np.ndarray, str]:
        """The image `job` measures (decoded, a control of it, or it enhanced) and its file."""
        condition = job.condition
        if condition is None:
            return decoded, self.decoded_rel(entry, ref.name)
        if isinstance(condition, ControlEntry):
            image_rel = self.control_rel(condition, entry, ref.name)
            return self._control(condition, ref.name, decoded, image_rel), image_rel
        assert job.temperature is not None
        image_rel = self.enhanced_rel(condition, job.temperature, entry, ref.name)
        return self._enhanced(condition, job.temperature, decoded, image_rel), image_rel

    def _coded(
        self, ref: ImageRef, entry: CodecEntry, gt: np.ndarray
    ) -> tuple[Bitstream, np.ndarray]:
        """The bitstream and the decoded image, from the cache where possible."""
        codec = self.codecs[entry.spec]
        bitstream_path = self.out / self.bitstream_rel(entry, ref.name)
        decoded_path = self.out / self.decoded_rel(entry, ref.name)
        bitstream = _cached_bitstream(bitstream_path)
        if bitstream is None:
            bitstream = encode_image(gt, codec)
            bitstream.write(bitstream_path)
            self.result.bitstreams_encoded += 1
            decoded = None
        else:
            decoded = _load_png(decoded_path)
        if decoded is None:
            decoded = bitstream.decode(codec)
            write_image(decoded_path, decoded)
            self.result.images_decoded += 1
        if decoded.shape != gt.shape:
            raise InnrsicError(f"decoded image is {decoded.shape}, ground truth {gt.shape}")
        return bitstream, decoded

    def _control(
        self, control: ControlEntry, name: str, decoded: np.ndarray, image_rel: str
    ) -> np.ndarray:
        cached = _load_png(self.out / image_rel)
        if cached is not None:
            return cached
        image = control.apply(decoded, name)
        write_image(self.out / image_rel, image)
        return image

    def _enhanced(
        self,
        enhancer: EnhancerEntry,
        temperature: float,
        decoded: np.ndarray,
        image_rel: str,
    ) -> np.ndarray:
        path = self.out / image_rel
        cached = _load_png(path)
        if cached is not None:
            return cached
        net = next(net for entry, net in self.plan.enhancers if entry is enhancer)
        # what `innrsic enhance --seed <seed> --temperature T` writes (module docstring)
        settings = EnhanceSettings(temperature, self.settings.seed)
        image = enhance_array(decoded, net, settings)
        write_image(path, image)
        self.result.images_enhanced += 1
        return image

    def _base_row(
        self, ref: ImageRef, entry: CodecEntry, job: _Job, shape: tuple[int, ...] | None
    ) -> Row:
        _, _, enhancer_id, key_temperature, key_seed = job.key
        condition = job.condition
        row: Row = {
            "image": ref.name,
            "source": str(ref.path.resolve()),
            "box": list(ref.box) if ref.box is not None else None,
            "height": int(shape[0]) if shape else None,
            "width": int(shape[1]) if shape else None,
            "codec": entry.spec,
            "family": entry.family,
            "rate": entry.rate,
            "enhancer": enhancer_id,
            "enhancer_name": condition.name if condition is not None else "",
            "temperature": key_temperature,
            "seed": key_seed,
        }
        if isinstance(condition, ControlEntry):
            row.update(control=condition.kind, strength=condition.strength)
        return row

    def _emit(self, job: _Job, row: Row, image: np.ndarray, gt: np.ndarray) -> None:
        names = self.wanted if job.missing is None else job.missing
        values, notes = compute_metrics(gt, image, names, self.plan.probes)
        row.update(values)
        if notes:
            row["notes"] = "; ".join(notes)
        if job.missing is None:
            self.result.rows_computed += 1
        else:
            row = merge_row(self.existing.rows[job.key], row)
            self.result.rows_updated += 1
        self.writer.write(row)
        self.existing.add(row)

    def _write_error(
        self, ref: ImageRef, entry: CodecEntry, job: _Job, gt: np.ndarray | None,
        exc: InnrsicError,
    ) -> None:
        kind = "unreachable" if isinstance(exc, RateTargetError) else "failed"
        row = self._base_row(ref, entry, job, gt.shape if gt is not None else None)
        row["status"] = f"{kind}: {exc}"
        if kind == "failed":
            self.result.failures.append((ref.name, entry.spec, str(exc)))
        self.result.rows_computed += 1
        self.writer.write(row)
        self.existing.add(row)


def _check_sources(images: Sequence[ImageRef], existing: RowSet) -> None:
    """Refuse an output folder whose rows came from other files under the same image names."""
    sources: dict[str, tuple[str, Any]] = {}
    for row in existing.rows.values():
        sources.setdefault(row["image"], (row.get("source"), row.get("box")))
    for ref in images:
        known = sources.get(ref.name)
        here = (str(ref.path.resolve()), list(ref.box) if ref.box is not None else None)
        if known is not None and known != here:
            raise ConfigError(
                f"the output folder holds results for image {ref.name!r} from {known[0]} "
                f"(box {known[1]}), not {here[0]} (box {here[1]}); use another --out"
            )


def update_grid_file(
    out: Path,
    entries: list[CodecEntry],
    enhancers: list[EnhancerEntry],
    settings: EvaluationSettings,
    temperatures: tuple[float, ...],
    image_count: int,
) -> dict[str, Any]:
    """Merge this run's grid into ``grid.json`` (the order the report uses) and return it."""
    grid = read_grid_file(out)

    def union(old: list, new: list) -> list:
        return list(old) + [item for item in new if item not in old]

    sampled = any(t > 0 for t in grid.get("temperatures", []))
    if enhancers and sampled and grid.get("latent") != LATENT:
        raise ConfigError(
            f"{out} holds enhanced images drawn with an earlier latent sampler (not "
            f"{LATENT!r}); use another output folder, or delete its cache/enhanced and rows"
        )
    grid["format"] = "innrsic-evaluation-grid"
    if enhancers or grid.get("enhancers"):
        grid["latent"] = LATENT
    grid["codecs"] = union(grid.get("codecs", []), [e.spec for e in entries])
    known = {e["id"] for e in grid.get("enhancers", [])}
    grid["enhancers"] = grid.get("enhancers", []) + [
        {"id": e.id, "name": e.name, "path": str(e.path)} for e in enhancers if e.id not in known
    ]
    if enhancers:
        grid["temperatures"] = union(grid.get("temperatures", []), list(temperatures))
        grid["seeds"] = union(grid.get("seeds", []), [settings.seed])
    if settings.controls is not None:
        grid["controls"] = settings.controls.label
    if settings.anchor:
        grid["anchor"] = settings.anchor
    grid["data"] = settings.data_label
    grid["images"] = image_count
    write_bytes_atomic(out / GRID_FILE, (json.dumps(grid, indent=2) + "\n").encode())
    return grid


def expected_keys(
    images: Sequence[ImageRef],
    entries: list[CodecEntry],
    enhancers: list[EnhancerEntry],
    temperatures: tuple[float, ...],
    seed: int,
    controls: dict[str, list[ControlEntry]] | None = None,
) -> list[RowKey]:
    """Every row key of the grid over all images (all shards)."""
    keys = []
    for ref in images:
        for entry in entries:
            keys.append(make_key(ref.name, entry.spec))
            for control in (controls or {}).get(entry.spec, []):
                keys.append(make_key(ref.name, entry.spec, control.id))
            for enhancer in enhancers:
                for temperature in temperatures:
                    keys.append(make_key(ref.name, entry.spec, enhancer.id, temperature, seed))
    return keys


def run_evaluation(
    images: Sequence[ImageRef],
    out: str | Path,
    settings: EvaluationSettings,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    build_report: bool = True,
) -> EvaluationResult:
    """Compute this shard's missing rows of the grid, then (re)build the report.

    `shard` (i, n) processes ``images[i::n]``; None takes torchrun's RANK/WORLD_SIZE from the
    environment, else (0, 1). With several shards the report is built by a shard that finds
    every row of the grid present (so the last one to finish), or later with
    `innrsic.evaluation.build_report` (``innrsic evaluate --report-only``). With
    `settings.controls`, the controls of every codec spec are tuned first (or read from
    ``controls.json``); tuning on evaluated or holdout images is refused before any work.
    """
    from innrsic.enhancer import load_enhancer

    out = Path(out)
    entries, enhancers, temperatures = _grid_of(images, settings)
    index, count = shard if shard is not None else shard_from_env()
    if not 0 <= index < count:
        raise ConfigError(f"shard {index}/{count}: need 0 <= i < n")
    probes = probe_metrics(settings.weights_dir)
    lpips_weights = _check_controls(out, settings.controls, images, probes)
    existing = read_rows(out)
    mine = list(images)[index::count]
    _check_sources(mine, existing)
    update_grid_file(out, entries, enhancers, settings, temperatures, len(images))
    nets = [
        (e, engine_for(load_enhancer(e.path, device=settings.device).eval(),
                       settings.precision))  # type: ignore[arg-type]
        for e in enhancers
    ]
    result = EvaluationResult(out, (index, count), len(mine))
    with torch_threads(settings.threads):
        controls: dict[str, list[ControlEntry]] = {}
        if settings.controls is not None and lpips_weights is not None:  # both or neither
            controls = tune_codecs(out, [e.spec for e in entries], settings.controls,
                                   lpips_weights, progress)
        plan = _Plan(entries, controls, nets, temperatures, probes)
        _run_shard(out, mine, plan, settings, existing, result, progress)
    present = read_rows(out).rows
    keys = expected_keys(images, entries, enhancers, temperatures, settings.seed, controls)
    result.missing_rows = sum(1 for key in keys if key not in present)
    if build_report and (count == 1 or result.missing_rows == 0):
        write_report(out, anchor=settings.anchor, weights_dir=settings.weights_dir,
                     probes=probes)
        result.report_written = True
    return result


def _grid_of(
    images: Sequence[ImageRef], settings: EvaluationSettings
) -> tuple[list[CodecEntry], list[EnhancerEntry], tuple[float, ...]]:
    """The codec entries, enhancers and temperatures of `settings`, after checking them and
    the image names (ConfigError)."""
    if not images:
        raise ConfigError("no images to evaluate")
    if not settings.codecs:
        raise ConfigError("no codec specs given")
    names = [ref.name for ref in images]
    if len(set(names)) != len(names):
        raise ConfigError("two images share a name; names key the cache and the rows")
    entries = codec_entries(list(settings.codecs))
    enhancers = [enhancer_entry(path) for path in settings.enhancers]
    enhancers = list({e.id: e for e in enhancers}.values())
    temperatures = check_temperatures(list(settings.temperatures)) if enhancers else ()
    if enhancers and not temperatures:
        raise ConfigError("enhancers given but no temperatures")
    return entries, enhancers, temperatures


def _check_controls(
    out: Path,
    controls: ControlSettings | None,
    images: Sequence[ImageRef],
    probes: dict[str, MetricProbe],
) -> Path | None:
    """The LPIPS-squeeze weights the controls are tuned with, after checking the validation
    images, grids and any cached tuning (None without controls)."""
    if controls is None:
        return None
    check_validation_images(controls.images, images)
    check_grids(controls)
    check_cached_setup(out, controls)
    probe = probes[TUNING_METRIC]
    if not probe.available:
        raise ConfigError(f"the controls are tuned by LPIPS-squeeze, which is {probe.status}; "
                          "give --weights-dir, or --no-controls")
    (weights,) = probe.files.values()
    return weights


def _run_shard(
    out: Path,
    mine: list[ImageRef],
    plan: _Plan,
    settings: EvaluationSettings,
    existing: RowSet,
    result: EvaluationResult,
    progress: bool,
) -> None:
    index, count = result.shard
    with RowWriter(shard_path(out, index, count)) as writer:
        runner = _GridRunner(out, plan, settings, existing, writer, result)
        bar = tqdm(mine, desc=f"evaluate {index}/{count}", unit="image", file=sys.stderr,
                   disable=not progress)
        for ref in bar:
            runner.run_image(ref)
            bar.set_postfix(new=result.rows_computed + result.rows_updated,
                            reused=result.rows_reused, refresh=False)
