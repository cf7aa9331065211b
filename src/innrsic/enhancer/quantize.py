"""QM, the quantisation module: 8-bit rounding with a straight-through gradient."""

from __future__ import annotations

import torch


def quantize_8bit(t: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to multiples of 1/255; the gradient is the identity.

    The value is exactly ``round(255 * clamp(t, 0, 1)) / 255`` (``torch.round``: halves to
    even). The gradient passes through unchanged, also where the clamp is active, as in the
    original QM.
    """
    quantized = torch.round(t.detach().clamp(0.0, 1.0) * 255.0) / 255.0
    # `t - t.detach()` is exactly zero, so the value is `quantized` bit for bit while autograd
    # sees `t` with derivative 1.
    return quantized + (t - t.detach())
