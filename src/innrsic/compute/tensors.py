"""8-bit images (HxWx3 uint8 arrays) to float tensors in [0, 1] and back."""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1] (a copy: `image` may be read-only)."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """3xHxW (or 1x3xHxW) float in [0, 1] -> HxWx3 uint8, clamped and rounded to the nearest
    level (``torch.round``: halves to even)."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return np.ascontiguousarray(array.permute(1, 2, 0).cpu().numpy())
