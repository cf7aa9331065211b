"""Control conditions of an evaluation: decoded + white Gaussian noise and decoded + unsharp
mask (`innrsic.metrics.controls`), each with its strength tuned per codec spec on validation
images, so that an enhancer is compared with the strongest trivial alternative.

Tuning, per codec spec: every validation image is coded and decoded (not cached; an image the
codec cannot code is skipped and recorded), and each control gets the strength of its grid with
the lowest mean LPIPS-squeeze over the validation pairs (`tune_controls`). The results go to
``OUT/controls.json``; a rerun reuses them and tunes only codec specs not tuned yet. A rerun
that asks for other validation images, grids or unsharp radius is refused: its control rows
would mix two tunings. Validation images may not be evaluated images (same file and box) and
may not come from the reserved holdout.

On the evaluated images, the noise of image ``name`` is drawn with seed
``image_seed(NOISE_SEED, name)``: it depends on nothing else (not on ``--seed``, sharding or
image order). On the validation pairs, pair ``i`` uses seed ``NOISE_SEED + i``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs import make_codec
from innrsic.data.splits import RESERVED, ImageRef
from innrsic.errors import ConfigError, InnrsicError
from innrsic.evaluation.grid import control_id, image_seed
from innrsic.evaluation.pipeline import code_image
from innrsic.evaluation.store import read_json_file
from innrsic.metrics.controls import (
    CONTROL_KINDS,
    NOISE_STRENGTHS,
    UNSHARP_RADIUS,
    UNSHARP_STRENGTHS,
    ControlKind,
    apply_control,
    tune_controls,
)

log = logging.getLogger(__name__)

CONTROLS_FILE = "controls.json"
NOISE_SEED = 1000
TUNING_METRIC = "lpips_squeeze"


@dataclass(frozen=True)
class ControlSettings:
    """Validation images the controls are tuned on (`label` says how they were chosen) and the
    strengths tried: noise sigma in 8-bit levels, unsharp amount at `unsharp_radius` px."""

    images: tuple[ImageRef, ...]
    label: str = ""
    noise_strengths: tuple[float, ...] = NOISE_STRENGTHS
    unsharp_strengths: tuple[float, ...] = UNSHARP_STRENGTHS
    unsharp_radius: float = UNSHARP_RADIUS

    def grids(self) -> dict[ControlKind, tuple[float, ...]]:
        return {"noise": self.noise_strengths, "unsharp": self.unsharp_strengths}

    def setup(self) -> dict[str, Any]:
        """What a tuning depends on besides the codec spec (compared on reruns)."""
        return {
            "images": [[ref.name, str(ref.path.resolve()), list(ref.box) if ref.box else None]
                       for ref in self.images],
            "grids": {kind: [float(s) for s in grid] for kind, grid in self.grids().items()},
            "unsharp_radius": float(self.unsharp_radius),
            "noise_seed": NOISE_SEED,
            "metric": TUNING_METRIC,
        }


@dataclass(frozen=True)
class ControlEntry:
    """One tuned control of one codec spec, applied to its decoded images."""

    kind: ControlKind
    strength: float
    radius: float = UNSHARP_RADIUS

    @property
    def id(self) -> str:
        return control_id(self.kind)

    @property
    def name(self) -> str:
        return f"decoded+{self.kind}"

    def apply(self, decoded: np.ndarray, image_name: str) -> np.ndarray:
        return apply_control(self.kind, decoded, self.strength,
                             seed=image_seed(NOISE_SEED, image_name), radius=self.radius)


def subsample(refs: Sequence[ImageRef], count: int | None) -> list[ImageRef]:
    """`count` images spread evenly over `refs` (the first included), or all of them."""
    if count is None or count >= len(refs):
        return list(refs)
    return [refs[i * len(refs) // count] for i in range(count)]


def check_not_reserved(path: Path) -> None:
    """Refuse a path inside a folder named after a reserved split (the UC-M holdout)."""
    if any(part in RESERVED for part in path.resolve().parts):
        raise ConfigError(f"{path} is in the reserved holdout: the controls are never tuned "
                          "on it; tune on the train split (--control-data ucmerced-train)")


def check_validation_images(
    validation: Sequence[ImageRef], evaluated: Sequence[ImageRef]
) -> None:
    """Refuse no validation images, holdout images, or images that are also evaluated."""
    if not validation:
        raise ConfigError("no validation images to tune the controls on")
    for ref in validation:
        check_not_reserved(ref.path)

    def identity(ref: ImageRef) -> tuple[str, tuple[int, ...] | None]:
        return str(ref.path.resolve()), ref.box

    evaluated_ids = {identity(ref) for ref in evaluated}
    shared = [ref.name for ref in validation if identity(ref) in evaluated_ids]
    if shared:
        raise ConfigError(
            f"the controls would be tuned on {len(shared)} evaluated image(s) "
            f"({', '.join(shared[:3])}{', ...' if len(shared) > 3 else ''}): tune on other "
            "images (--control-data, e.g. ucmerced-train for a test split) or --no-controls"
        )


def check_grids(settings: ControlSettings) -> None:
    """Each grid non-empty, each strength finite and >= 0, the radius > 0."""
    for kind, grid in settings.grids().items():
        if not grid or not all(0 <= float(s) < float("inf") for s in grid):
            raise ConfigError(f"{kind} control strengths must be one or more finite numbers "
                              f">= 0, got {list(grid)}")
    if not 0 < settings.unsharp_radius < float("inf"):
        raise ConfigError(f"unsharp radius must be > 0, got {settings.unsharp_radius}")


def read_tuning(out: Path) -> dict[str, Any]:
    """The contents of ``OUT/controls.json``, or {} when absent or unreadable."""
    return read_json_file(out / CONTROLS_FILE)


def check_cached_setup(out: Path, settings: ControlSettings) -> None:
    """Refuse to add to a tuning file made with other validation images or grids."""
    cached = read_tuning(out)
    if cached.get("codecs") and cached.get("setup") != settings.setup():
        raise ConfigError(
            f"{out / CONTROLS_FILE} holds control strengths tuned on "
            f"{cached.get('validation') or 'other validation images'}, not on {settings.label}"
            " (or with other strength grids); give the same --control-data, use another "
            "--out, or delete that file and the control rows"
        )


def tune_codecs(
    out: Path,
    codecs: Sequence[str],
    settings: ControlSettings,
    weights: Path,
    progress: bool = True,
) -> dict[str, list[ControlEntry]]:
    """The tuned controls of each codec spec, tuning (and recording) those not in the file.

    A codec spec that coded no validation image gets no controls (its record says why)."""
    check_grids(settings)
    check_cached_setup(out, settings)
    tuned = dict(read_tuning(out).get("codecs", {}))
    todo = [spec for spec in codecs if spec not in tuned]
    for spec in tqdm(todo, desc="tune controls", unit="codec", file=sys.stderr,
                     disable=not progress or not todo):
        record = _tune_codec(spec, settings, weights)
        tuned[spec] = record
        disk = read_tuning(out).get("codecs", {})  # another shard may have added codecs
        _write_tuning(out, settings, {**disk, spec: record})
    entries: dict[str, list[ControlEntry]] = {}
    for spec in codecs:
        record = tuned[spec]
        if "error" in record:
            log.warning("no controls for %s: %s", spec, record["error"])
            continue
        entries[spec] = [ControlEntry(kind, float(record[kind]["strength"]),
                                      settings.unsharp_radius) for kind in CONTROL_KINDS]
    return entries


def _tune_codec(spec: str, settings: ControlSettings, weights: Path) -> dict[str, Any]:
    from innrsic.metrics.perceptual import lpips_distance

    codec = make_codec(spec)
    pairs, bpps, skipped = [], [], []
    for ref in settings.images:
        try:
            gt = ref.load()
            coded = code_image(gt, codec)
        except InnrsicError as exc:
            skipped.append(f"{ref.name}: {exc}")
            continue
        pairs.append((gt, coded.decoded))
        bpps.append(coded.bitstream.sizes(*gt.shape[:2])["payload_bpp"])
    if not pairs:
        return {"error": f"no validation image could be coded ({len(skipped)} tried)",
                "skipped": skipped}

    def metric(reference: np.ndarray, test: np.ndarray) -> float:
        return lpips_distance(reference, test, weights)

    record = tune_controls(pairs, settings.grids(), metric, seed=NOISE_SEED,
                           radius=settings.unsharp_radius)
    for kind in CONTROL_KINDS:
        if record[kind]["at_grid_edge"]:
            log.warning("%s: the %s control's largest strength won; extend its grid", spec, kind)
    return {**record, "val_payload_bpp": sum(bpps) / len(bpps), "skipped": skipped}


def _write_tuning(out: Path, settings: ControlSettings, codecs: dict[str, Any]) -> None:
    data = {
        "format": "innrsic-control-tuning",
        "version": 1,
        "validation": settings.label,
        "setup": settings.setup(),
        "codecs": codecs,
    }
    write_bytes_atomic(out / CONTROLS_FILE, (json.dumps(data, indent=2) + "\n").encode())
