"""What one enhancer pass costs: convolution multiply-accumulates, counted analytically."""

from __future__ import annotations

from innrsic.enhancer.config import EnhancerConfig

KERNEL = 9  # 3x3 convolutions
CONVS_PER_DENSE_BLOCK = 5


def dense_block_macs_per_pixel(in_channels: int, out_channels: int, growth: int) -> int:
    """Multiply-accumulates per output pixel of one DenseBlock (five 3x3 convs, dense concat)."""
    macs = 0
    width = in_channels
    for _ in range(CONVS_PER_DENSE_BLOCK - 1):
        macs += width * growth * KERNEL
        width += growth
    return macs + width * out_channels * KERNEL


def enhancer_macs(config: EnhancerConfig, height: int, width: int) -> int:
    """Convolution MACs of one enhancer pass (forward or inverse: both run every subnet once).

    Odd sizes are padded to even, as `INNEnhancer` does. The colour matrices, Haar transform and
    element-wise arithmetic (well under 0.1% of the total) are not counted; nor are biases.
    """
    height += height % 2
    width += width % 2
    channels = 4 * config.expanded_channels
    split = config.expanded_channels
    coupling = (
        dense_block_macs_per_pixel(channels - split, split, config.growth)  # F
        + 2 * dense_block_macs_per_pixel(split, channels - split, config.growth)  # G, H
    )
    gaussian = 2 * dense_block_macs_per_pixel(3, config.latent_channels, config.gaussian_growth)
    half_res = (height // 2) * (width // 2)
    return config.blocks * coupling * half_res + gaussian * height * width
