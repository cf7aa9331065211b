"""Spectral energy of an image per radial frequency band, and its ratio to a reference's.

An enhancer that restores detail should bring the energy of the mid/high bands back towards the
ground truth's; white noise instead adds energy mostly to the highest band, and blur removes it.

How: BT.601 luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` (float), mean removed, times a 2-D
Hann window (outer product of periodic Hann windows) against edge leakage; power spectrum
``|FFT2|^2 / (H * W * mean(window^2))`` (so that the power summed over all bins is about the
variance of the image, and white noise of variance s^2 has about s^2 / (H W) per bin); band
energy = power summed over the FFT bins whose radial frequency ``sqrt(fx^2 + fy^2)`` (cycles
per pixel, numpy's ``fftfreq``) lies in the band. Bands are half-open ``[low, high)`` except the
last, which includes 1/2 (corner frequencies above 1/2 are in no band).
"""

from __future__ import annotations

import math

import numpy as np

from innrsic.errors import MetricError

# name -> (low, high) in cycles/pixel; the four octaves, then the acceptance criterion's band.
BANDS: dict[str, tuple[float, float]] = {
    "1/32-1/16": (1 / 32, 1 / 16),
    "1/16-1/8": (1 / 16, 1 / 8),
    "1/8-1/4": (1 / 8, 1 / 4),
    "1/4-1/2": (1 / 4, 1 / 2),
    "1/16-1/4": (1 / 16, 1 / 4),
}
OCTAVE_BANDS = ("1/32-1/16", "1/16-1/8", "1/8-1/4", "1/4-1/2")
ACCEPTANCE_BAND = "1/16-1/4"
# Column names of `band_metrics`: "1/32-1/16" -> "band_ratio_32_16", and the acceptance error.
BAND_COLUMNS = {name: "band_ratio_" + name.replace("1/", "").replace("-", "_") for name in BANDS}
BAND_ERROR_COLUMN = "band_err_16_4"
LUMA_BT601 = (0.299, 0.587, 0.114)
MIN_SIDE = 32  # the lowest band needs a few bins at 1/32 cycles/pixel


def luminance(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 (or HxWx1 / HxW) uint8 image as float64, in 8-bit levels."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise MetricError("image must be a uint8 array")
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0].astype(np.float64)
    if image.ndim == 3 and image.shape[2] == 3:
        return image.astype(np.float64) @ np.asarray(LUMA_BT601)
    raise MetricError(f"image must be HxW, HxWx1 or HxWx3, got shape {image.shape}")


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * math.pi * np.arange(n) / n)


def power_spectrum(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(power, radial frequency) arrays of shape HxW for the windowed luminance of `image`."""
    y = luminance(image)
    height, width = y.shape
    if min(height, width) < MIN_SIDE:
        raise MetricError(f"band energy needs both sides >= {MIN_SIDE} px; got {width}x{height}")
    window = np.outer(_hann(height), _hann(width))
    spectrum = np.fft.fft2((y - y.mean()) * window)
    power = np.abs(spectrum) ** 2 / (height * width * float(np.mean(window**2))) / (height * width)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return power, np.sqrt(fy**2 + fx**2)


def _band_mask(radius: np.ndarray, low: float, high: float) -> np.ndarray:
    upper = radius <= high if high >= 0.5 else radius < high
    return (radius >= low) & upper


def band_energy(image: np.ndarray) -> dict[str, float]:
    """Energy (summed windowed power, in squared 8-bit levels) of each band in `BANDS`."""
    power, radius = power_spectrum(image)
    return {name: float(power[_band_mask(radius, lo, hi)].sum()) for name, (lo, hi) in
            BANDS.items()}


def band_energy_ratio(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Test energy / reference energy per band (1.0 = the reference's spectrum, < 1 = less
    detail, > 1 = more); `inf` or `nan` where the reference band is empty (a flat image)."""
    if reference.shape != test.shape:
        raise MetricError(f"image shapes differ: {reference.shape} vs {test.shape}")
    ref, out = band_energy(reference), band_energy(test)
    ratios = {}
    for name in BANDS:
        if ref[name] > 0:
            ratios[name] = out[name] / ref[name]
        else:
            ratios[name] = math.inf if out[name] > 0 else math.nan
    return ratios


def band_ratio_16_4(reference: np.ndarray, test: np.ndarray) -> float:
    """The acceptance criterion's ratio: test / reference energy in [1/16, 1/4) cycles/pixel."""
    return band_energy_ratio(reference, test)[ACCEPTANCE_BAND]


def log_ratio_error(ratio: float) -> float:
    """``|log2(ratio)|``: how far a band ratio is from the reference (0 = equal energy), so that
    half and double the energy count the same. "Closer to the ground truth" compares these."""
    if not ratio > 0:
        return math.inf
    return abs(math.log2(ratio))


def band_metrics(reference: np.ndarray, test: np.ndarray) -> dict[str, float | None]:
    """Per-image measures by column name: `band_energy_ratio` as ``band_ratio_<a>_<b>`` for
    the band 1/a-1/b (``band_ratio_32_16`` ... ``band_ratio_4_2``, ``band_ratio_16_4``) and
    ``band_err_16_4``, the `log_ratio_error` of the acceptance band. None where undefined (an
    empty reference band). Raises MetricError for images under `MIN_SIDE` px."""
    ratios = band_energy_ratio(reference, test)
    values: dict[str, float | None] = {
        BAND_COLUMNS[name]: None if math.isnan(value) else value for name, value in ratios.items()
    }
    acceptance = ratios[ACCEPTANCE_BAND]
    values[BAND_ERROR_COLUMN] = None if math.isnan(acceptance) else log_ratio_error(acceptance)
    return values


__all__ = [
    "ACCEPTANCE_BAND",
    "BANDS",
    "BAND_COLUMNS",
    "BAND_ERROR_COLUMN",
    "OCTAVE_BANDS",
    "band_energy",
    "band_energy_ratio",
    "band_metrics",
    "band_ratio_16_4",
    "log_ratio_error",
    "luminance",
    "power_spectrum",
]
