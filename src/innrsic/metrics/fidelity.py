"""Fidelity metrics on 8-bit RGB images: PSNR and MS-SSIM (pytorch-msssim).

Inputs are HxWx3 uint8 arrays (as returned by `innrsic.raster.image.read_image`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from innrsic.errors import MetricError

MS_SSIM_WINDOW = 11
MS_SSIM_SCALES = 5
# pytorch-msssim needs the smaller side above (window - 1) * 2 ** (scales - 1) = 160 pixels.
MS_SSIM_MIN_SIDE = (MS_SSIM_WINDOW - 1) * 2 ** (MS_SSIM_SCALES - 1) + 1


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    for name, image in (("reference", reference), ("test", test)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            raise MetricError(f"{name} image must be an HxWxC uint8 array")
    if reference.shape != test.shape:
        raise MetricError(f"image shapes differ: {reference.shape} vs {test.shape}")


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB with an 8-bit peak (255) over all pixels and channels; `inf` if identical."""
    _check_pair(reference, test)
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def mean_psnr(values: Iterable[float]) -> float:
    """Arithmetic mean of per-image PSNRs (the field's convention); `inf` if any is `inf`."""
    items = list(values)
    if not items:
        raise MetricError("mean of an empty set of PSNR values")
    return math.fsum(items) / len(items) if all(map(math.isfinite, items)) else math.inf


def ms_ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM (5 scales, 11x11 Gaussian window, data range 255) via pytorch-msssim.

    Images whose smaller side is under MS_SSIM_MIN_SIDE (161) pixels are refused with a
    MetricError: the five-scale pyramid does not fit, and a reduced pyramid would give a
    different metric. Evaluation code records such images as undefined instead.
    """
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    _check_pair(reference, test)
    if min(reference.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise MetricError(
            f"MS-SSIM needs both sides >= {MS_SSIM_MIN_SIDE} px; got {reference.shape[1]}x"
            f"{reference.shape[0]}"
        )

    def to_tensor(image: np.ndarray) -> torch.Tensor:
        return torch.tensor(image, dtype=torch.float64).permute(2, 0, 1).unsqueeze(0)

    with torch.no_grad():
        value = _ms_ssim(to_tensor(reference), to_tensor(test), data_range=255.0, size_average=True)
    return float(value)
