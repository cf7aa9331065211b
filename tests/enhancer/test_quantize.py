"""QM: 8-bit values forward, identity gradient backward."""

from __future__ import annotations

import torch

from innrsic.enhancer import quantize_8bit


def test_values() -> None:
    t = torch.tensor([-0.4, 0.0, 0.31, 0.5, 100.4 / 255, 100.6 / 255, 1.0, 1.7])
    expected = torch.tensor([0, 0, 79, 128, 100, 101, 255, 255]) / 255.0
    assert torch.equal(quantize_8bit(t), expected)


def test_output_is_on_the_8bit_grid() -> None:
    t = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 1.4 - 0.2
    levels = quantize_8bit(t) * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert levels.min() >= 0 and levels.max() <= 255


def test_gradient_is_identity() -> None:
    t = torch.tensor([-0.4, 0.2, 0.5, 1.3], requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    (quantize_8bit(t) * weights).sum().backward()
    assert torch.equal(t.grad, weights)
