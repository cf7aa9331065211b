"""The identity start: forward (x, 0), inverse y plus latent noise scaled by the gain."""

from __future__ import annotations

import pytest
import torch

from innrsic.enhancer import EnhancerConfig, INNEnhancer
from innrsic.enhancer.initialisation import identity_initialise
from innrsic.errors import ConfigError


@pytest.mark.parametrize("expansion", [1, 2])
def test_identity_start_keeps_the_image_and_scales_the_latent(expansion: int) -> None:
    config = EnhancerConfig(blocks=2, growth=4, gaussian_growth=4, expansion=expansion)
    net = identity_initialise(INNEnhancer(config), gain=8.0)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((2, 3, 18, 22), generator=generator)
    y, z = net(x)
    assert torch.allclose(y, x, atol=1e-6)
    assert z.abs().max() < 1e-4
    latent = torch.randn(z.shape, generator=generator)
    out = net.inverse(x, latent)
    noise = latent.view(2, expansion, 3, 18, 22).sum(dim=1) / ((expansion + 1) * 8.0)
    assert torch.allclose(out - x, noise, atol=1e-5)


def test_identity_start_refuses_a_non_positive_gain() -> None:
    with pytest.raises(ConfigError, match="gain"):
        identity_initialise(INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)), 0)
