"""`ChannelExpansion`: RGB to 3(k+1) channels through learnable colour matrices."""

from __future__ import annotations

import torch
from torch import nn

# RGB -> YUV rows; every colour matrix starts here.
RGB_TO_YUV = ((0.299, 0.587, 0.114), (-0.147, -0.289, 0.436), (0.615, -0.515, -0.100))


def _apply(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, x)


def expand(matrices: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`x` (B,3,H,W) cut into ``len(matrices)`` parts that sum to it, part ``i`` multiplied by
    ``matrices[i]``, concatenated: (B,3(k+1),H,W)."""
    count = len(matrices)
    share = x / count
    parts = [share] * (count - 1)
    parts.append(x - sum(parts))
    return torch.cat([_apply(m, p) for m, p in zip(matrices, parts, strict=True)], dim=1)


def contract(inverses: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``sum_i inverses[i] v_i`` over the 3-channel chunks ``v_i`` of `v`: `expand`'s inverse
    when `inverses` are the matrices' inverses."""
    chunks = v.split(3, dim=1)
    return sum(_apply(m, c) for m, c in zip(inverses, chunks, strict=True))


class ChannelExpansion(nn.Module):
    """Split the image into k+1 parts that sum to it and colour-transform each part.

    Forward: parts ``x/(k+1)`` (the last part is the remainder, so the parts sum to ``x``),
    part ``i`` multiplied by its 3x3 matrix ``M_i``, concatenated. Inverse: ``sum_i M_i^-1 v_i``,
    which is exact on forward outputs and a left inverse elsewhere.
    """

    def __init__(self, expansion: int = 1) -> None:
        super().__init__()
        self.parts = expansion + 1
        initial = torch.tensor(RGB_TO_YUV, dtype=torch.float32)
        self.matrices = nn.Parameter(initial.repeat(self.parts, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return expand(self.matrices, x)

    def inverse(self, v: torch.Tensor) -> torch.Tensor:
        return contract(torch.linalg.inv(self.matrices), v)
