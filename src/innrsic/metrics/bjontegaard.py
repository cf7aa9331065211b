"""Bjøntegaard deltas (VCEG-M33): the average gap between two rate-quality curves.

Both quantities compare a *test* curve with an *anchor* curve, each given as points
(rate, quality) with rates > 0 (bits per pixel, bytes: any unit, as long as both use it):

- **BD-rate**: each curve's log-rate is fitted as a function of quality; the mean difference
  ``test - anchor`` of the two fits over the quality interval both curves cover is ``ΔlogR``,
  and BD-rate is ``exp(ΔlogR) - 1`` in percent. Negative: the test curve needs fewer bits for
  the same quality. The sign convention does not depend on whether higher quality is better.
- **BD-quality** (BD-PSNR when the quality is PSNR): quality fitted as a function of log-rate;
  the mean difference ``test - anchor`` over the log-rate interval both curves cover, in the
  quality's unit (dB for PSNR). Positive is better for higher-is-better metrics (PSNR,
  MS-SSIM), negative is better for LPIPS.

Fits, chosen per curve by its number of points:

- 4 or more points: the classic least-squares cubic polynomial (exact through 4 points);
- 2 or 3 points: a cubic polynomial is under-determined, so the curve is interpolated with
  PCHIP (monotone piecewise-cubic Hermite, ``scipy.interpolate.PchipInterpolator``), which is a
  straight line for 2 points;
- fewer than 2 points, rates <= 0, values that are not finite, repeated fit abscissae, or no
  overlap between the two curves: no number, a `BDResult` whose `reason` says why.

Integration is exact (polynomial antiderivative, or PCHIP's own `integrate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

POLYNOMIAL_MIN_POINTS = 4
MIN_POINTS = 2
FIT_CUBIC = "cubic polynomial"
FIT_PCHIP = "pchip"


@dataclass(frozen=True)
class BDResult:
    """One Bjøntegaard delta: `value`, or None with the `reason` it could not be computed.

    `value` is in percent for BD-rate and in the quality's unit for BD-quality. `fits` names the
    fit used for the (anchor, test) curves; `interval` is the common interval integrated over
    (quality for BD-rate, natural-log rate for BD-quality).
    """

    value: float | None
    reason: str = ""
    fits: tuple[str, str] = ("", "")
    interval: tuple[float, float] | None = None

    @property
    def available(self) -> bool:
        return self.value is not None

    def text(self, digits: int = 2) -> str:
        """The value with a sign and `digits` decimals, or ``"n/a: <reason>"``."""
        return f"{self.value:+.{digits}f}" if self.value is not None else f"n/a: {self.reason}"


class _Curve:
    """A fit of y as a function of x through a curve's points."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray) -> None:
        order = np.argsort(xs)
        self.xs, self.ys = xs[order], ys[order]
        if len(xs) >= POLYNOMIAL_MIN_POINTS:
            self.method = FIT_CUBIC
            self._poly = np.polyint(np.polyfit(self.xs, self.ys, 3))
        else:
            from scipy.interpolate import PchipInterpolator

            self.method = FIT_PCHIP
            self._pchip = PchipInterpolator(self.xs, self.ys)

    def integral(self, low: float, high: float) -> float:
        if self.method == FIT_CUBIC:
            return float(np.polyval(self._poly, high) - np.polyval(self._poly, low))
        return float(self._pchip.integrate(low, high))


def _check_points(
    role: str, rates: Sequence[float], quality: Sequence[float], fit_on: str
) -> tuple[np.ndarray, np.ndarray] | str:
    """(log-rates, qualities) as arrays, or the reason the curve cannot be used."""
    r = np.asarray(rates, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        return f"{role} curve has {r.size} rates but {q.size} quality values"
    if r.size < MIN_POINTS:
        return f"{role} curve has {r.size} point(s); at least {MIN_POINTS} are needed"
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        return f"{role} curve has a value that is not finite"
    if np.any(r <= 0):
        return f"{role} curve has a rate <= 0 (log-rate undefined)"
    log_r = np.log(r)
    abscissa = q if fit_on == "quality" else log_r
    if np.unique(abscissa).size != abscissa.size:
        return f"{role} curve has two points with the same {fit_on}; the fit is undefined"
    return log_r, q


def _delta(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
    fit_on: str,
) -> BDResult:
    """Mean of (test fit - anchor fit) over the common `fit_on` interval ("quality" or "rate")."""
    curves = []
    for role, rates, quality in (
        ("anchor", anchor_rate, anchor_quality),
        ("test", test_rate, test_quality),
    ):
        checked = _check_points(role, rates, quality, fit_on)
        if isinstance(checked, str):
            return BDResult(None, checked)
        log_r, q = checked
        curves.append(_Curve(q, log_r) if fit_on == "quality" else _Curve(log_r, q))
    anchor, test = curves
    fits = (anchor.method, test.method)
    low = max(anchor.xs[0], test.xs[0])
    high = min(anchor.xs[-1], test.xs[-1])
    if not high > low:
        what = "quality" if fit_on == "quality" else "rate"
        return BDResult(
            None,
            f"the curves do not overlap in {what} (anchor {_span(anchor, fit_on)}, "
            f"test {_span(test, fit_on)})",
            fits,
        )
    mean_gap = (test.integral(low, high) - anchor.integral(low, high)) / (high - low)
    return BDResult(mean_gap, "", fits, (float(low), float(high)))


def _span(curve: _Curve, fit_on: str) -> str:
    low, high = curve.xs[0], curve.xs[-1]
    if fit_on == "rate":
        low, high = math.exp(low), math.exp(high)
    return f"{low:.4g}..{high:.4g}"


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> BDResult:
    """BD-rate of the test curve against the anchor, in percent (negative: fewer bits)."""
    result = _delta(anchor_rate, anchor_quality, test_rate, test_quality, "quality")
    if result.value is None:
        return result
    return BDResult(100.0 * math.expm1(result.value), "", result.fits, result.interval)


def bd_quality(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> BDResult:
    """BD-quality (BD-PSNR for PSNR) of the test curve against the anchor, test minus anchor.

    The returned `interval` is in natural-log rate.
    """
    return _delta(anchor_rate, anchor_quality, test_rate, test_quality, "rate")
