"""Means with Student-t confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True)
class MeanCI:
    """Mean of `n` values and the two-sided confidence interval of the mean.

    ``low``/``high``/``half_width`` are None, with `note` saying why, when the interval is
    undefined (fewer than 2 values, or an infinite value such as the PSNR of a lossless image).
    """

    n: int
    mean: float | None
    low: float | None = None
    high: float | None = None
    half_width: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "ci_half_width": self.half_width,
            **({"note": self.note} if self.note else {}),
        }


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> MeanCI:
    """Mean and Student-t confidence interval: ``mean ± t_{(1+c)/2, n-1} * s / sqrt(n)``,
    with `s` the sample standard deviation (n - 1 in the denominator). NaNs are left out."""
    from scipy import stats

    items = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(items)
    if n == 0:
        return MeanCI(0, None, note="no values")
    if not all(math.isfinite(v) for v in items):
        # sum(), not fsum(): inf + -inf is nan here instead of an exception.
        return MeanCI(n, sum(items) / n, note="an infinite value: no confidence interval")
    mean = math.fsum(items) / n
    if n < 2:
        return MeanCI(n, mean, note="one value: no confidence interval")
    variance = math.fsum((v - mean) ** 2 for v in items) / (n - 1)
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * math.sqrt(variance / n)
    return MeanCI(n, mean, mean - half, mean + half, half)
