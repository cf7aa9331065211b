"""`HaarTransform`: one-level 2-D Haar analysis (C -> 4C at half size) and its exact inverse."""

from __future__ import annotations

import torch
from torch import nn


class HaarTransform(nn.Module):
    """Per-channel 2x2 Haar transform with the original code's normalisation and layout.

    Forward (analysis): for each 2x2 block ``[[a, b], [c, d]]`` the four bands are
    ``(a+b+c+d)/4``, ``(a-b+c-d)/4``, ``(a+b-c-d)/4``, ``(a-b-c+d)/4``. Output channels are
    ordered band-major: all C low-pass channels first, then each detail band, so a coupling
    split at C channels separates the low-pass image from the details. Inverse (synthesis)
    applies the unscaled filters; the filters are orthogonal with squared norm 4, so it is
    exact. Stateless: the original stores the filters as weights, this computes them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"Haar transform needs even height and width, got {tuple(x.shape)}")
        a = x[..., 0::2, 0::2]
        b = x[..., 0::2, 1::2]
        c = x[..., 1::2, 0::2]
        d = x[..., 1::2, 1::2]
        bands = (a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d)
        return torch.cat(bands, dim=1) / 4.0

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        low, h1, h2, h3 = v.chunk(4, dim=1)
        a = low + h1 + h2 + h3
        b = low - h1 + h2 - h3
        c = low + h1 - h2 - h3
        d = low - h1 - h2 + h3
        batch, channels, height, width = low.shape
        # (B, C, H, 2, W, 2) with the two inner axes being the row/column inside a block.
        top = torch.stack((a, b), dim=-1)
        bottom = torch.stack((c, d), dim=-1)
        blocks = torch.stack((top, bottom), dim=-3)
        return blocks.reshape(batch, channels, 2 * height, 2 * width)
