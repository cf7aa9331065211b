"""Image-quality and rate metrics: PSNR, MS-SSIM, bpp (and perceptual metrics in `perceptual`)."""

from innrsic.metrics.fidelity import MS_SSIM_MIN_SIDE, mean_psnr, ms_ssim, psnr
from innrsic.metrics.rate import bits_per_pixel

__all__ = ["MS_SSIM_MIN_SIDE", "bits_per_pixel", "mean_psnr", "ms_ssim", "psnr"]
