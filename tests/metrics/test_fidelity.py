"""PSNR and MS-SSIM (against pytorch_msssim), and bits per pixel of bytes and of files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as reference_ms_ssim

from innrsic.errors import MetricError
from innrsic.metrics import MS_SSIM_MIN_SIDE, bits_per_pixel, mean_psnr, ms_ssim, psnr
from innrsic.rsic.container import Container, file_bpp, pack_container


def test_psnr_hand_computed() -> None:
    a = np.zeros((4, 5, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 60  # MSE = 3600 / 60 = 60
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 60))
    assert psnr(a, a + 1) == pytest.approx(48.13080360867909)


def test_psnr_identical_is_inf_and_mean_handles_it() -> None:
    a = np.full((3, 3, 3), 7, dtype=np.uint8)
    assert psnr(a, a) == math.inf
    assert mean_psnr([30.0, 40.0]) == 35.0
    assert mean_psnr([30.0, math.inf]) == math.inf
    with pytest.raises(MetricError):
        mean_psnr([])


def test_psnr_rejects_mismatched_shapes() -> None:
    with pytest.raises(MetricError, match="shapes differ"):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


def test_ms_ssim_matches_library_and_orders_quality(ucm_image: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(ucm_image + rng.normal(0, 12, ucm_image.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(ucm_image + rng.normal(0, 30, ucm_image.shape), 0, 255).astype(np.uint8)
    assert ms_ssim(ucm_image, ucm_image) == pytest.approx(1.0)
    as_tensor = [torch.from_numpy(x).permute(2, 0, 1)[None].double() for x in (ucm_image, noisy)]
    expected = float(reference_ms_ssim(*as_tensor, data_range=255.0))
    assert ms_ssim(ucm_image, noisy) == pytest.approx(expected, abs=1e-9)
    assert 0 < ms_ssim(ucm_image, noisier) < ms_ssim(ucm_image, noisy) < 1


def test_ms_ssim_refuses_small_images() -> None:
    small = np.zeros((MS_SSIM_MIN_SIDE - 1, 300, 3), dtype=np.uint8)
    with pytest.raises(MetricError, match=f">= {MS_SSIM_MIN_SIDE}"):
        ms_ssim(small, small)
    ok = np.zeros((MS_SSIM_MIN_SIDE, MS_SSIM_MIN_SIDE, 3), dtype=np.uint8)
    assert ms_ssim(ok, ok) == pytest.approx(1.0)


def test_bpp_from_bytes_and_from_file(tmp_path: Path) -> None:
    assert bits_per_pixel(1000, 100, 80) == 1.0
    with pytest.raises(ValueError):
        bits_per_pixel(10, 0, 5)
    path = tmp_path / "x.rsic"
    size = path.write_bytes(pack_container(Container("jpeg", 64, 32, (b"p" * 256,))))
    total, payload = file_bpp(path)
    assert total == pytest.approx(size * 8 / (64 * 32))
    assert payload == pytest.approx(256 * 8 / (64 * 32))
