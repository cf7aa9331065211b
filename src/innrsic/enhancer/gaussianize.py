"""`ConditionalGaussianization`: maps the non-image channels to z ~ N(0, I) given the image."""

from __future__ import annotations

import torch
from torch import nn

from innrsic.enhancer.blocks import DenseBlock

# Keeps the divisor away from zero; the value of the original code (released weights rely on it).
SCALE_EPS = 1e-6


class ConditionalGaussianization(nn.Module):
    """``z = (v - mu(y)) / sigma(y)`` with ``sigma = exp(2 sigmoid(s(y)) - 1) + 1e-6``.

    `mean` and `scale` are DenseBlocks of the 3-channel image part `y`; the inverse is
    ``v = mu(y) + z * sigma(y)``.
    """

    def __init__(self, latent_channels: int, growth: int) -> None:
        super().__init__()
        self.mean = DenseBlock(3, latent_channels, growth)
        self.scale = DenseBlock(3, latent_channels, growth)

    def _sigma(self, y: torch.Tensor) -> torch.Tensor:
        return torch.exp(2.0 * torch.sigmoid(self.scale(y)) - 1.0) + SCALE_EPS

    def forward(self, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (v - self.mean(y)) / self._sigma(y)

    def inverse(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.mean(y) + z * self._sigma(y)
