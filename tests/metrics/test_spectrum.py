from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageFilter

from innrsic.errors import MetricError
from innrsic.metrics.controls import add_gaussian_noise
from innrsic.metrics.spectrum import (
    ACCEPTANCE_BAND,
    BANDS,
    OCTAVE_BANDS,
    band_energy,
    band_energy_ratio,
    band_ratio_16_4,
    log_ratio_error,
    luminance,
)


def _texture(size: int = 128, seed: int = 0) -> np.ndarray:
    """A 1/f-like texture: energy in every band."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1 / size)
    field = np.real(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((size, size)))))
    field = (field - field.mean()) / field.std() * 40 + 128
    return np.repeat(np.clip(field, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_an_image_against_itself_is_one_in_every_band(ucm_image: np.ndarray) -> None:
    ratios = band_energy_ratio(ucm_image, ucm_image)
    assert set(ratios) == set(BANDS)
    assert all(value == pytest.approx(1.0) for value in ratios.values())
    assert band_ratio_16_4(ucm_image, ucm_image) == pytest.approx(1.0)
    assert log_ratio_error(1.0) == 0.0


def test_blur_removes_high_band_energy(ucm_image: np.ndarray) -> None:
    blurred = np.asarray(Image.fromarray(ucm_image).filter(ImageFilter.GaussianBlur(2)))
    ratios = band_energy_ratio(ucm_image, blurred)
    assert ratios["1/4-1/2"] < 0.05
    assert ratios["1/8-1/4"] < 0.3
    assert ratios["1/4-1/2"] < ratios["1/8-1/4"] < ratios["1/16-1/8"] < ratios["1/32-1/16"]
    assert ratios[ACCEPTANCE_BAND] < 1.0


def test_white_noise_raises_the_highest_band_most(ucm_image: np.ndarray) -> None:
    for image in (ucm_image, _texture()):
        ratios = band_energy_ratio(image, add_gaussian_noise(image, 10.0, seed=0))
        top = ratios["1/4-1/2"]
        assert top > 1.05
        assert all(top > ratios[name] + 0.04 for name in OCTAVE_BANDS[:-1])
        assert all(0.95 < ratios[name] < 1.05 for name in OCTAVE_BANDS[:-1])
    assert band_energy_ratio(ucm_image, add_gaussian_noise(ucm_image, 10.0))["1/4-1/2"] > 1.3


def test_energy_is_in_squared_levels_and_bands_partition_as_declared() -> None:
    # white noise of variance s^2: each band holds about s^2 times its share of the bins
    rng = np.random.default_rng(1)
    noise = np.clip(np.rint(128 + rng.normal(0, 20, (256, 256))), 0, 255).astype(np.uint8)
    energy = band_energy(noise[..., None])
    size = 256
    radius = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    share = float(((radius >= 0.25) & (radius <= 0.5)).mean())
    assert energy["1/4-1/2"] == pytest.approx(400 * share, rel=0.05)
    assert energy["1/16-1/4"] == pytest.approx(energy["1/16-1/8"] + energy["1/8-1/4"])


def test_luminance_and_errors() -> None:
    pixel = np.array([[[255, 0, 0]]], np.uint8)
    assert luminance(pixel)[0, 0] == pytest.approx(0.299 * 255)
    with pytest.raises(MetricError, match=">= 32"):
        band_energy(np.zeros((16, 64, 3), np.uint8))
    with pytest.raises(MetricError, match="shapes differ"):
        band_energy_ratio(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 32, 3), np.uint8))
    flat = np.full((64, 64, 3), 9, np.uint8)
    assert math.isnan(band_energy_ratio(flat, flat)["1/4-1/2"])
    assert log_ratio_error(0.5) == pytest.approx(log_ratio_error(2.0)) == pytest.approx(1.0)
    assert log_ratio_error(0.0) == math.inf


def test_band_metrics_name_every_band_and_the_acceptance_error(ucm_image: np.ndarray) -> None:
    from innrsic.metrics.spectrum import BAND_COLUMNS, BAND_ERROR_COLUMN, band_metrics

    same = band_metrics(ucm_image, ucm_image)
    assert set(same) == {*BAND_COLUMNS.values(), BAND_ERROR_COLUMN}
    assert BAND_COLUMNS["1/32-1/16"] == "band_ratio_32_16"
    assert all(same[c] == pytest.approx(1.0) for c in BAND_COLUMNS.values())
    assert same[BAND_ERROR_COLUMN] == pytest.approx(0.0, abs=1e-12)
    blurred = np.asarray(Image.fromarray(ucm_image).filter(ImageFilter.GaussianBlur(2)))
    values = band_metrics(ucm_image, blurred)
    assert values["band_ratio_4_2"] < values["band_ratio_32_16"] < 1
    assert values[BAND_ERROR_COLUMN] == pytest.approx(
        log_ratio_error(values[BAND_COLUMNS[ACCEPTANCE_BAND]]))
    flat = np.full((64, 64, 3), 100, np.uint8)
    assert band_metrics(flat, flat)[BAND_ERROR_COLUMN] is None
