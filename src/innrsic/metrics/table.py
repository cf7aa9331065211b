"""The metrics table: every metric an evaluation reports, in report order, with its title, its
direction (higher or lower is better), whether Bjøntegaard deltas apply, and the function that
computes it. Summary, pipeline and page read their metric lists from here.

The metrics that need weights files take their names and titles from `innrsic.metrics.optional`
(which probes for those files); the rest are listed here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from innrsic.metrics.fidelity import ms_ssim, psnr
from innrsic.metrics.niqe import niqe
from innrsic.metrics.optional import PER_IMAGE_METRICS, lpips_torchvision
from innrsic.metrics.perceptual import lpips_distance
from innrsic.metrics.spectrum import BAND_COLUMNS, BAND_ERROR_COLUMN

# how a metric is computed: "rate" from the bitstream's size, "image" from the two images,
# "weights" from the two images with a weights file, "band" all band-energy columns at once
MetricKind = Literal["rate", "image", "weights", "band"]
Compute = Callable[[np.ndarray, np.ndarray, "str | os.PathLike[str] | None"], float]


@dataclass(frozen=True)
class Metric:
    """One metric: name (its CSV column), title, direction, BD and how it is computed.

    `lower_is_better` is None for metrics without a direction (rates, band-energy ratios).
    `compute(reference, test, weights)` is None for rates and band columns (`band_metrics`
    computes them together). With `undefined_ok` a `MetricError` means the metric is undefined
    on these images (reported as None with a note), not a failure."""

    name: str
    title: str
    kind: MetricKind
    lower_is_better: bool | None = None
    bd: bool = False
    compute: Compute | None = None
    undefined_ok: bool = False

    @property
    def quality(self) -> bool:
        """A per-image quality metric with a direction (the report's quality columns)."""
        return self.kind in ("image", "weights", "band") and self.lower_is_better is not None


def _psnr(reference: np.ndarray, test: np.ndarray, weights: object = None) -> float:
    return psnr(reference, test)


def _ms_ssim(reference: np.ndarray, test: np.ndarray, weights: object = None) -> float:
    return ms_ssim(reference, test)


def _niqe(reference: np.ndarray, test: np.ndarray, weights: object = None) -> float:
    return niqe(test)


_WEIGHTS_COMPUTE: dict[str, Compute] = {
    "lpips_squeeze": lpips_distance,
    "lpips_alex": functools.partial(lpips_torchvision, "lpips_alex"),
    "lpips_vgg": functools.partial(lpips_torchvision, "lpips_vgg"),
}

METRICS: tuple[Metric, ...] = (
    Metric("payload_bpp", "bpp", "rate"),
    Metric("file_bpp", "file bpp", "rate"),
    Metric("psnr", "PSNR (dB)", "image", lower_is_better=False, bd=True, compute=_psnr),
    Metric("ms_ssim", "MS-SSIM", "image", lower_is_better=False, bd=True, compute=_ms_ssim,
           undefined_ok=True),
    *(Metric(name, title, "weights", lower_is_better=True, bd=True,
             compute=_WEIGHTS_COMPUTE[name]) for name, title in PER_IMAGE_METRICS.items()),
    # NIQE is a no-reference score and band energy a spectrum: no Bjøntegaard deltas
    Metric("niqe", "NIQE", "image", lower_is_better=True, compute=_niqe, undefined_ok=True),
    Metric(BAND_ERROR_COLUMN, "band error 1/16-1/4", "band", lower_is_better=True),
    # band-energy ratios (1 = the ground truth's energy): no direction, their own table
    *(Metric(column, f"energy {band}", "band") for band, column in BAND_COLUMNS.items()),
)
METRIC_BY_NAME = {metric.name: metric for metric in METRICS}


def metric_names(
    kinds: tuple[MetricKind, ...] | None = None, *, quality: bool | None = None,
    lower_is_better: bool | None = None, bd: bool | None = None,
) -> tuple[str, ...]:
    """The names of the metrics (in table order) of `kinds` whose `quality`, `lower_is_better`
    and `bd` are as given (None: any)."""
    return tuple(
        m.name for m in METRICS
        if (kinds is None or m.kind in kinds)
        and (quality is None or m.quality == quality)
        and (lower_is_better is None or m.lower_is_better is lower_is_better)
        and (bd is None or m.bd == bd)
    )


RATE_METRICS = metric_names(("rate",))
# computed for every image, no weights needed
ALWAYS_COMPUTED = metric_names(("image", "band"))
BAND_METRICS = metric_names(("band",))
QUALITY_METRICS = metric_names(quality=True)
LOWER_IS_BETTER = frozenset(metric_names(quality=True, lower_is_better=True))
BD_METRICS = metric_names(quality=True, bd=True)
SPECTRUM_METRICS = metric_names(("band",), quality=False)
METRIC_TITLES = {metric.name: metric.title for metric in METRICS}
