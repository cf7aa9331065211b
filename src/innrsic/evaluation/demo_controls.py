"""The demo's controls: decoded + white noise and decoded + unsharp mask, tuned per codec spec
as `innrsic evaluate` tunes them (`innrsic.evaluation.controls.tune_codecs`: the strength of
least mean LPIPS-squeeze on images spread over the UC Merced train split). Never tuned on the
reserved holdout nor on the images the demo shows (both refused before any work).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from innrsic.data.image_sets import describe_image_set, image_set
from innrsic.data.splits import ImageRef
from innrsic.errors import ConfigError
from innrsic.evaluation.controls import (
    CONTROLS_FILE,
    ControlEntry,
    ControlSettings,
    check_cached_setup,
    check_validation_images,
    subsample,
    tune_codecs,
)
from innrsic.metrics.optional import MetricProbe

TRAIN_SPLIT = "ucmerced-train"
CONTROL_IMAGES = 21  # `innrsic evaluate --control-images`' default: one per class


@dataclass(frozen=True)
class DemoControls:
    """The tuned controls of each codec spec, and a sentence saying how (or why there are
    none)."""

    note: str
    entries: dict[str, list[ControlEntry]] = field(default_factory=dict)

    def of(self, spec: str) -> list[ControlEntry]:
        return self.entries.get(spec, [])


def tune_demo_controls(
    data_root: Path | None,
    out: Path,
    specs: Sequence[str],
    shown: Sequence[ImageRef],
    lpips: MetricProbe,
    count: int = CONTROL_IMAGES,
) -> DemoControls:
    """Tune the controls of `specs` on `count` train images under `data_root` (the folder
    holding ``ucmerced/``); none, with the reason, without LPIPS-squeeze or that split."""
    if not lpips.available:
        return DemoControls(f"none: LPIPS-squeeze, which tunes them, is {lpips.status}")
    if data_root is None or not (data_root / "ucmerced").is_dir():
        return DemoControls("none: no UC Merced train split to tune them on (the data folder "
                            "holds no ucmerced/)")
    refs = subsample(image_set(TRAIN_SPLIT, data_root), count)
    settings = ControlSettings(tuple(refs), describe_image_set(TRAIN_SPLIT, data_root, len(refs)))
    check_validation_images(settings.images, shown)
    _drop_stale_tuning(out, settings)
    (weights,) = lpips.files.values()
    entries = tune_codecs(out, list(specs), settings, weights)
    return DemoControls(f"per codec spec, the strengths of least mean LPIPS-squeeze on "
                        f"{settings.label}", entries)


def _drop_stale_tuning(out: Path, settings: ControlSettings) -> None:
    """Delete a tuning file of an earlier demo made on other images: the demo owns its
    output folder, so it retunes instead of refusing."""
    try:
        check_cached_setup(out, settings)
    except ConfigError:
        (out / CONTROLS_FILE).unlink()
