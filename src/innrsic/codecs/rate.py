"""Searching a codec's quality knob so the payload lands at or just below a target size."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from innrsic.errors import RateTargetError


@dataclass(frozen=True)
class Knob:
    """A codec's quality knob: larger values give larger payloads (monotone, up to noise)."""

    name: str
    low: float
    high: float
    integer: bool


@dataclass(frozen=True)
class RateFit:
    """The result of a search: the payload, the knob value that made it, and its size."""

    payload: bytes
    knob_value: float


def fit_to_size(
    encode: Callable[[float], bytes],
    knob: Knob,
    max_bytes: float,
    guess: float | None = None,
    iterations: int = 14,
    pixels: int | None = None,
    overhead: int = 0,
) -> RateFit:
    """Find the knob value whose payload is the largest one not exceeding `max_bytes`.

    `overhead` bytes stored with the payload (a container's tile record and nodata mask) count
    against `max_bytes` too, so the payload itself gets at most ``max_bytes - overhead``.

    Integer knobs are bisected exactly (then the two values above the answer are tried too,
    since real codecs are only nearly monotone). Continuous knobs are bisected on a log scale
    for `iterations` steps, within [guess / 2, guess * 2] when a `guess` is given and that
    bracket holds the answer. Raises RateTargetError if even the lowest knob value is too big
    (in bytes, and in bits per pixel when the image's `pixels` are given).
    """
    cache: dict[float, bytes] = {}

    def fits(value: float) -> bool:
        if value not in cache:
            cache[value] = encode(value)
        return len(cache[value]) + overhead <= max_bytes

    if not fits(knob.low):
        raise _unreachable(knob, max_bytes, len(cache[knob.low]) + overhead, pixels, overhead)
    if knob.integer:
        _bisect_integer(fits, knob)
    else:
        _bisect_log(fits, knob, guess, iterations)
    feasible = [(len(data), value) for value, data in cache.items()
                if len(data) + overhead <= max_bytes]
    _, best = max(feasible)
    return RateFit(cache[best], best)


def _bisect_integer(fits: Callable[[float], bool], knob: Knob) -> None:
    """Bisect an integer knob to the largest value that fits, then try the two above it."""
    low, high = int(knob.low), int(knob.high)
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    for above in range(low + 1, min(low + 3, int(knob.high)) + 1):
        fits(above)


def _bisect_log(
    fits: Callable[[float], bool], knob: Knob, guess: float | None, iterations: int
) -> None:
    """Bisect a continuous knob on a log scale, within [guess / 2, guess * 2] when that
    bracket holds the answer (then in fewer steps)."""
    low_log, high_log = math.log(knob.low), math.log(knob.high)
    if guess is not None:
        below, above = max(knob.low, guess / 2), min(knob.high, guess * 2)
        if fits(below) and (above == knob.high or not fits(above)):
            low_log, high_log, iterations = math.log(below), math.log(above), iterations // 2 + 2
    if fits(math.exp(high_log)):
        return
    for _ in range(iterations):
        mid = math.exp((low_log + high_log) / 2)
        if fits(mid):
            low_log = math.log(mid)
        else:
            high_log = math.log(mid)


def _unreachable(
    knob: Knob, max_bytes: float, smallest: int, pixels: int | None, overhead: int
) -> RateTargetError:
    """The error for a target below the smallest payload the knob gives."""
    target_bpp, smallest_bpp = (
        (f" ({8 * max_bytes / pixels:.4g} bpp)", f" ({8 * smallest / pixels:.4g} bpp)")
        if pixels
        else ("", "")
    )
    stored = f", with {overhead} bytes of tile record and nodata mask" if overhead else ""
    return RateTargetError(
        f"target of {max_bytes:.0f} bytes{target_bpp} is unreachable: the smallest payload "
        f"({knob.name}={knob.low:g}{stored}) is {smallest} bytes{smallest_bpp}"
    )
