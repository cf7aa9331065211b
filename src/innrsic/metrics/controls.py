"""Trivial control conditions an enhancer has to beat: added white noise and unsharp masking.

Both take and return HxWx3 uint8 images. A perceptual metric that an enhancer improves should
not be improved as much by these; `tune_control` gives each control its best strength on a
VALIDATION set (never the test set), so the comparison is against the strongest trivial
alternative rather than an arbitrary one.

Parameterisation:

- noise: ``sigma_levels`` is the standard deviation of i.i.d. N(0, sigma^2) noise added to
  every channel of every pixel, in 8-bit levels; the sum is rounded to the nearest level and
  clipped to [0, 255]. The noise is a function of ``seed`` and the image shape only.
- unsharp: Pillow's ``ImageFilter.UnsharpMask(radius, percent=round(100 * amount),
  threshold=0)``, i.e. ``out = clip(image + amount * (image - G_radius * image))`` per channel,
  with ``G_radius`` Pillow's Gaussian blur of standard deviation ``radius`` pixels (extended
  box-blur approximation) and the result rounded to 8 bits by Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from innrsic.errors import MetricError

ControlKind = Literal["noise", "unsharp"]
CONTROL_KINDS: tuple[ControlKind, ...] = ("noise", "unsharp")
UNSHARP_RADIUS = 1.0
# Default tuning grids, weakest first (ties go to the weaker strength).
NOISE_STRENGTHS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)  # sigma, 8-bit levels
UNSHARP_STRENGTHS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # amount
MetricFn = Callable[[np.ndarray, np.ndarray], float]


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise MetricError("image must be an HxWxC uint8 array")


def add_gaussian_noise(image: np.ndarray, sigma_levels: float, seed: int = 0) -> np.ndarray:
    """`image` plus white Gaussian noise of std `sigma_levels` (8-bit levels), rounded, clipped.

    Deterministic: the same `seed` and shape give the same noise. ``sigma_levels == 0`` returns
    a copy of `image`.
    """
    _check_image(image)
    if not math.isfinite(sigma_levels) or sigma_levels < 0:
        raise MetricError(f"noise sigma must be a finite number >= 0, got {sigma_levels!r}")
    if sigma_levels == 0:
        return image.copy()
    noise = np.random.default_rng(seed).standard_normal(image.shape) * float(sigma_levels)
    return np.clip(np.rint(image.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def unsharp_mask(image: np.ndarray, amount: float, radius: float = UNSHARP_RADIUS) -> np.ndarray:
    """Pillow's unsharp mask: ``image + amount * (image - gaussian_blur(image, radius))``.

    `amount` is the gain of the high-pass detail (1.0 = Pillow's ``percent=100``; rounded to
    whole percent), `radius` the blur's standard deviation in pixels; threshold 0. Amount 0
    returns a copy of `image`.
    """
    from PIL import Image, ImageFilter

    _check_image(image)
    if not math.isfinite(amount) or amount < 0:
        raise MetricError(f"unsharp amount must be a finite number >= 0, got {amount!r}")
    if not math.isfinite(radius) or radius <= 0:
        raise MetricError(f"unsharp radius must be a finite number > 0, got {radius!r}")
    percent = round(100 * float(amount))
    if percent == 0:
        return image.copy()
    squeeze = image.shape[2] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(pil.filter(ImageFilter.UnsharpMask(float(radius), percent, 0)))
    return out[..., None].copy() if squeeze else out.copy()


def apply_control(
    kind: ControlKind,
    image: np.ndarray,
    strength: float,
    *,
    seed: int = 0,
    radius: float = UNSHARP_RADIUS,
) -> np.ndarray:
    """`add_gaussian_noise(image, strength, seed)` or `unsharp_mask(image, strength, radius)`."""
    if kind == "noise":
        return add_gaussian_noise(image, strength, seed)
    if kind == "unsharp":
        return unsharp_mask(image, strength, radius)
    raise MetricError(f"unknown control {kind!r}; choose from {', '.join(CONTROL_KINDS)}")


def tune_control(
    kind: ControlKind,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    strengths: Sequence[float],
    metric_fn: MetricFn | None = None,
    *,
    seed: int = 0,
    radius: float = UNSHARP_RADIUS,
) -> tuple[float, list[dict[str, float]]]:
    """The strength minimising the mean of ``metric_fn(gt, control(decoded))`` over `pairs`.

    `pairs` are (ground truth, decoded) uint8 images of a validation set; `metric_fn` is
    lower-is-better, LPIPS-squeeze (`lpips_distance`, weights from ``$INNRSIC_WEIGHTS_DIR``)
    by default. Noise for pair ``i`` uses seed ``seed + i``. Returns ``(best strength, table)``
    with one ``{"strength", "mean", "n"}`` row per strength in the given order; ties go to the
    first (list weaker strengths first to prefer them).
    """
    if kind not in CONTROL_KINDS:
        raise MetricError(f"unknown control {kind!r}; choose from {', '.join(CONTROL_KINDS)}")
    if not pairs:
        raise MetricError("tune_control needs at least one (ground truth, decoded) pair")
    if not strengths:
        raise MetricError("tune_control needs at least one strength")
    if metric_fn is None:
        from innrsic.metrics.perceptual import lpips_distance

        metric_fn = lpips_distance
    table: list[dict[str, float]] = []
    for strength in strengths:
        values = [
            float(metric_fn(gt, apply_control(kind, decoded, strength, seed=seed + i,
                                              radius=radius)))
            for i, (gt, decoded) in enumerate(pairs)
        ]
        table.append({"strength": float(strength), "mean": math.fsum(values) / len(values),
                      "n": float(len(values))})
    best = min(table, key=lambda row: row["mean"])
    return best["strength"], table


def tune_controls(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    grids: Mapping[ControlKind, Sequence[float]],
    metric_fn: MetricFn | None = None,
    *,
    seed: int = 0,
    radius: float = UNSHARP_RADIUS,
) -> dict[str, Any]:
    """`tune_control` for each kind in `grids`, and the decoded images' own mean for reference.

    Returns ``{"n", "decoded_val_lpips", "best_on_validation", <kind>: {"strength",
    "val_lpips", "at_grid_edge", "table"}}``: `at_grid_edge` is true where the largest strength
    tried won (the grid should be extended); `best_on_validation` is the kind with the lowest
    validation mean. "lpips" in the names: `metric_fn` is LPIPS-squeeze by default.
    """
    if metric_fn is None:
        from innrsic.metrics.perceptual import lpips_distance

        metric_fn = lpips_distance
    result: dict[str, Any] = {"n": len(pairs)}
    for kind, strengths in grids.items():
        best, table = tune_control(kind, pairs, strengths, metric_fn, seed=seed, radius=radius)
        result[kind] = {"strength": best, "val_lpips": min(row["mean"] for row in table),
                        "at_grid_edge": len(strengths) > 1 and best == max(strengths),
                        "table": table}
    decoded = [float(metric_fn(gt, decoded)) for gt, decoded in pairs]
    result["decoded_val_lpips"] = math.fsum(decoded) / len(decoded)
    result["best_on_validation"] = min(grids, key=lambda kind: result[kind]["val_lpips"])
    return result


__all__ = [
    "CONTROL_KINDS",
    "NOISE_STRENGTHS",
    "UNSHARP_RADIUS",
    "UNSHARP_STRENGTHS",
    "ControlKind",
    "add_gaussian_noise",
    "apply_control",
    "tune_control",
    "tune_controls",
    "unsharp_mask",
]
