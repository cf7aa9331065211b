"""INNEnhancer behaviour: invertibility, odd sizes, k=2, enhance determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from innrsic.enhancer import EnhancerConfig, INNEnhancer
from innrsic.errors import ConfigError


def replicate_pad(t: torch.Tensor) -> torch.Tensor:
    return F.pad(t, (0, t.shape[-1] % 2, 0, t.shape[-2] % 2), mode="replicate")


@pytest.fixture(scope="module")
def decoded(read_ucmerced) -> torch.Tensor:
    return read_ucmerced("harbor07")[..., 100:116, 40:64]


@torch.no_grad()
def test_real_images_are_inverted_exactly(reference_net, read_ucmerced) -> None:
    crops = [
        read_ucmerced(name)[..., top : top + 64, left : left + 64]
        for name, top, left in (("airplane00", 96, 96), ("beach00", 0, 128), ("forest00", 150, 30))
    ]
    x = torch.cat(crops)
    y, z = reference_net(x)
    assert y.shape == x.shape and z.shape == x.shape
    assert not torch.allclose(y, x, atol=1e-2)  # the reference weights change the image
    assert (reference_net.inverse(y, z) - x).abs().max() < 1e-5


@torch.no_grad()
def test_odd_sizes_pad_by_replication_and_crop(reference_net, read_ucmerced) -> None:
    x = read_ucmerced("denseresidential00")[..., 31:52, 17:32]  # 21 x 15
    y, z = reference_net(x)
    assert y.shape == (1, 3, 21, 15) and z.shape == (1, 3, 21, 15)
    y_even, z_even = reference_net(replicate_pad(x))
    assert torch.equal(y, y_even[..., :21, :15]) and torch.equal(z, z_even[..., :21, :15])
    x_hat = reference_net.inverse(y, z)
    assert x_hat.shape == x.shape
    even_inverse = reference_net.inverse(replicate_pad(y), replicate_pad(z))
    assert torch.equal(x_hat, even_inverse[..., :21, :15])


@torch.no_grad()
def test_odd_size_round_trip_is_exact_away_from_the_padded_edge(
    reference_net, read_ucmerced
) -> None:
    # Cropping drops the padded row/column of (y, z), so pixels near that edge cannot be
    # recovered exactly (see INNEnhancer); farther than the subnets' reach they must be.
    x = read_ucmerced("beach00")[..., 50:147, 60:157]  # 97 x 97
    error = (reference_net.inverse(*reference_net(x)) - x).abs()
    assert error[..., :-48, :-48].max() < 1e-5


@torch.no_grad()
def test_k2_round_trip(randomized, small_k2) -> None:
    net = randomized(small_k2)
    x = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    y, z = net(x)
    assert y.shape == (2, 3, 24, 40) and z.shape == (2, 6, 24, 40)
    assert not torch.allclose(y, x, atol=1e-2)
    assert (net.inverse(y, z) - x).abs().max() < 1e-5


def test_fresh_network_starts_as_colour_identity() -> None:
    # Zero output convs: couplings are the identity and z = v, so y is the YUV transform of x.
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        y, _ = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))(x)
    yuv = torch.tensor([[0.299, 0.587, 0.114], [-0.147, -0.289, 0.436], [0.615, -0.515, -0.100]])
    assert torch.allclose(y, torch.einsum("ij,bjhw->bihw", yuv, x) / 2, atol=1e-6)


def test_shape_errors(small_k2) -> None:
    net = INNEnhancer(small_k2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 6, H, W\)"):
        net.inverse(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        net.inverse(torch.rand(1, 3, 8, 8), torch.rand(1, 6, 8, 10))
    with pytest.raises(ConfigError):
        INNEnhancer({"blocks": 2})  # type: ignore[arg-type]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_enhance_is_seed_deterministic(reference_net, decoded) -> None:
    first = reference_net.enhance(decoded, generator=seeded(7))
    again = reference_net.enhance(decoded, generator=seeded(7))
    other = reference_net.enhance(decoded, generator=seeded(8))
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3
    assert first.min() >= 0 and first.max() <= 1 and not first.requires_grad


def test_enhance_draws_z_with_temperature(reference_net, decoded) -> None:
    temperature = 0.5
    z = temperature * torch.randn(1, 3, *decoded.shape[-2:], generator=seeded(3))
    with torch.no_grad():
        expected = reference_net.inverse(decoded, z).clamp(0, 1)
    assert torch.equal(reference_net.enhance(decoded, temperature, seeded(3)), expected)


def test_enhance_temperature_zero_ignores_seed(reference_net, decoded) -> None:
    a = reference_net.enhance(decoded, temperature=0.0, generator=seeded(1))
    b = reference_net.enhance(decoded, temperature=0, generator=seeded(2))
    with torch.no_grad():
        expected = reference_net.inverse(decoded, torch.zeros(1, 3, *decoded.shape[-2:]))
    assert torch.equal(a, b) and torch.equal(a, expected.clamp(0, 1))


def test_enhance_odd_size(reference_net, decoded) -> None:
    odd = decoded[..., :15, :21]
    out = reference_net.enhance(odd, generator=seeded(5))
    assert out.shape == odd.shape
    padded = reference_net.enhance(replicate_pad(odd), generator=seeded(5))
    assert torch.equal(out, padded[..., :15, :21])


@pytest.mark.parametrize("temperature", [-0.1, float("nan"), float("inf")])
def test_enhance_refuses_bad_temperature(reference_net, decoded, temperature) -> None:
    with pytest.raises(ConfigError, match="temperature"):
        reference_net.enhance(decoded, temperature=temperature)
