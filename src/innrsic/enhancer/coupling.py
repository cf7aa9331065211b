"""`AffineCoupling`: the invertible block of the enhancer (IRN-style, three subnets)."""

from __future__ import annotations

import torch
from torch import nn

from innrsic.enhancer.blocks import DenseBlock


class AffineCoupling(nn.Module):
    """Split into ``(x1, x2)`` at `split` channels and couple them.

    Forward: ``y1 = x1 + F(x2)``, ``s = clamp * (2 sigmoid(H(y1)) - 1)``,
    ``y2 = x2 * exp(s) + G(y1)``. Inverse: ``x2 = (y2 - G(y1)) / exp(s)``, ``x1 = y1 - F(x2)``.
    Attribute names `F`, `G`, `H` follow the paper's equations.
    """

    def __init__(self, channels: int, split: int, growth: int, clamp: float = 1.0) -> None:
        super().__init__()
        if not 0 < split < channels:
            raise ValueError(f"coupling split {split} must lie inside (0, {channels})")
        self.split = split
        self.clamp = clamp
        self.F = DenseBlock(channels - split, split, growth)
        self.G = DenseBlock(split, channels - split, growth)
        self.H = DenseBlock(split, channels - split, growth)

    def _log_scale(self, y1: torch.Tensor) -> torch.Tensor:
        return self.clamp * (2.0 * torch.sigmoid(self.H(y1)) - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 + self.F(x2)
        y2 = x2 * torch.exp(self._log_scale(y1)) + self.G(y1)
        return torch.cat((y1, y2), dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        x2 = (y2 - self.G(y1)) / torch.exp(self._log_scale(y1))
        x1 = y1 - self.F(x2)
        return torch.cat((x1, x2), dim=1)
