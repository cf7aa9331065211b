"""`FastEnhancer` computes the reference `INNEnhancer`'s function: exactly in float32, within
45 dB PSNR in bfloat16; its fused and precomputed parts are derived from the reference weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from innrsic.enhancer import EnhancerConfig, INNEnhancer
from innrsic.enhancer.blocks import DenseBlock
from innrsic.enhancer.fast import FastEnhancer, _Pair, optimize
from innrsic.errors import ConfigError
from innrsic.perf import dense_block_macs_per_pixel, enhancer_macs

FLOAT32_BOUND = 1e-5
BF16_MIN_PSNR = 45.0
SMALL = EnhancerConfig(blocks=2, growth=16, gaussian_growth=16)
SMALL_K2 = EnhancerConfig(blocks=2, growth=8, gaussian_growth=8, expansion=2, clamp=0.5)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    mse = (test - reference).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def outputs(net: INNEnhancer | FastEnhancer, x: torch.Tensor, seed: int = 7) -> dict:
    """forward, inverse on (image, N(0, I) latent), enhance at T=1 and T=0 for input x."""
    latent = 3 * net.config.expansion
    z = torch.randn(x.shape[0], latent, *x.shape[-2:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y, z_fwd = net(x)
        return {
            "y": y,
            "z": z_fwd,
            "inverse": net.inverse(x, z),
            "roundtrip": net.inverse(y, z_fwd),
            "enhance": net.enhance(x, 1.0, torch.Generator().manual_seed(seed)),
            "enhance_t0": net.enhance(x, 0.0),
        }


def assert_close(fast: dict, ref: dict, bound: float) -> None:
    for key, value in ref.items():
        assert fast[key].shape == value.shape, key
        assert fast[key].dtype == torch.float32, key
        assert max_abs(fast[key], value) <= bound, (key, max_abs(fast[key], value))


def test_float32_equals_reference_checkpoint(reference_net, airplane) -> None:
    x = airplane[..., 96:144, 64:128]  # a 48x64 region of the real image
    ref = outputs(reference_net, x)
    assert ref["inverse"].abs().max() > 1, "this random-weight network amplifies: a hard case"
    fast = FastEnhancer.from_reference(reference_net, workers=2)
    assert_close(outputs(fast, x), ref, FLOAT32_BOUND)


@pytest.mark.slow
def test_float32_equals_reference_checkpoint_whole_image(reference_net, airplane) -> None:
    assert_close(
        outputs(FastEnhancer.from_reference(reference_net), airplane),
        outputs(reference_net, airplane),
        FLOAT32_BOUND,
    )


@pytest.mark.parametrize("config", [SMALL, SMALL_K2], ids=["k1", "k2"])
@pytest.mark.parametrize("workers", [1, 2])
def test_float32_equals_random_network(random_net, airplane, config, workers) -> None:
    net = random_net(config)
    x = airplane[..., :32, :48]
    ref = outputs(net, x)
    assert ref["inverse"].abs().max() < 20, "the random network should stay image-sized"
    assert ref["z"].std() > 0.05, "the Gaussianisation must not be a constant"
    assert_close(outputs(FastEnhancer.from_reference(net, workers=workers), x), ref, FLOAT32_BOUND)


def test_float32_default_size_random_network(random_net, airplane) -> None:
    net = random_net(EnhancerConfig())
    x = airplane[..., :16, :24]
    assert_close(outputs(FastEnhancer.from_reference(net), x), outputs(net, x), FLOAT32_BOUND)


def test_batches_and_odd_sizes(reference_net, airplane) -> None:
    """A batch (split over the workers), odd height and width (padded and cropped)."""
    x = torch.cat((airplane[..., :23, :31], airplane[..., 100:123, 50:81].flip(-1)))
    fast = FastEnhancer.from_reference(reference_net, workers=2)
    assert_close(outputs(fast, x), outputs(reference_net, x), FLOAT32_BOUND)


def test_channels_last_is_close(reference_net, airplane) -> None:
    """NHWC changes the summation order only: small differences, not bitwise (opt-in mode)."""
    x = airplane[..., 96:128, 64:96]
    fast = outputs(FastEnhancer.from_reference(reference_net, channels_last=True), x)
    ref = outputs(reference_net, x)
    for key, value in ref.items():
        scale = max(1.0, value.abs().max().item())
        assert max_abs(fast[key], value) <= 1e-5 * scale * 100, key


@pytest.mark.parametrize("config", [SMALL, SMALL_K2], ids=["k1", "k2"])
def test_bfloat16_within_45db_random_network(random_net, airplane, config) -> None:
    net = random_net(config, seed=3)
    x = airplane[..., :32, :48]
    exact = outputs(FastEnhancer.from_reference(net), x)
    low = outputs(FastEnhancer.from_reference(net, precision="bfloat16"), x)
    for key in exact:
        assert low[key].dtype == torch.float32
        assert psnr(low[key], exact[key]) >= BF16_MIN_PSNR, (key, psnr(low[key], exact[key]))
    assert psnr(low["inverse"], exact["inverse"]) < 200, "bfloat16 should not be exact"


def test_bfloat16_within_45db_reference_checkpoint(reference_net, airplane) -> None:
    """Images (forward y, enhance) within 45 dB; the raw inverse of this random-weight network
    spans about [-15, 25] instead of [0, 1], so its PSNR is taken over that range."""
    x = airplane[..., 96:144, 64:128]
    exact = outputs(FastEnhancer.from_reference(reference_net), x)
    low = outputs(FastEnhancer.from_reference(reference_net, precision="bfloat16"), x)
    for key in ("y", "z", "enhance", "enhance_t0"):
        assert psnr(low[key], exact[key]) >= BF16_MIN_PSNR, (key, psnr(low[key], exact[key]))
    for key in ("inverse", "roundtrip"):
        span = (exact[key].max() - exact[key].min()).item()
        ranged = psnr(low[key], exact[key]) + 20 * math.log10(max(span, 1.0))
        assert ranged >= BF16_MIN_PSNR, (key, ranged)


@pytest.mark.parametrize("latent", [3, 6], ids=["k1", "k2"])
def test_fused_pair_equals_separate_blocks(latent) -> None:
    """The Gaussianisation pair (mean, scale) with a fused first conv, for k=1 and k=2."""
    torch.manual_seed(0)
    mean, scale = DenseBlock(3, latent, 8), DenseBlock(3, latent, 8)
    for block in (mean, scale):
        for conv in block.convs:
            torch.nn.init.normal_(conv.weight, std=0.1)
            torch.nn.init.normal_(conv.bias, std=0.1)
    pair = _Pair(mean, scale, torch.float32, channels_last=False)
    assert torch.equal(pair.w_first, torch.cat((mean.convs[0].weight, scale.convs[0].weight)))
    with torch.no_grad():
        x = torch.rand(1, 3, 20, 24)
        a, b = pair.serial(x)
        assert a.shape == b.shape == (1, latent, 20, 24)
        assert torch.equal(a, mean(x)) and torch.equal(b, scale(x))
        # A batch runs item by item; oneDNN may pick another kernel for a small batch-2 conv.
        x = torch.rand(2, 3, 20, 24)
        a, b = pair.serial(x)
        assert max_abs(a, mean(x)) <= FLOAT32_BOUND and max_abs(b, scale(x)) <= FLOAT32_BOUND


def test_weights_are_read_from_the_reference(random_net) -> None:
    net = random_net(SMALL_K2)
    fast = FastEnhancer.from_reference(net)
    for fc, rc in zip(fast.couplings, net.couplings, strict=True):
        fused = torch.cat((rc.G.convs[0].weight, rc.H.convs[0].weight))
        assert torch.equal(fc.GH.w_first, fused)
        assert torch.equal(fc.F.weight(4), rc.F.convs[4].weight)
    assert torch.equal(fast.inverse_matrices, torch.linalg.inv(net.expansion.matrices))


def test_inverse_does_not_invert_matrices(reference_net, airplane, monkeypatch) -> None:
    fast = FastEnhancer.from_reference(reference_net)

    def refuse(*args, **kwargs):
        raise AssertionError("matrix inverse computed per call")

    monkeypatch.setattr(torch.linalg, "inv", refuse)
    fast.inverse(airplane[..., :16, :16], torch.zeros(1, 3, 16, 16))


def test_options_are_checked(reference_net) -> None:
    with pytest.raises(ConfigError, match="precision"):
        FastEnhancer.from_reference(reference_net, precision="float16")
    with pytest.raises(ConfigError, match="workers"):
        FastEnhancer.from_reference(reference_net, workers=0)
    with pytest.raises(ConfigError, match="INNEnhancer"):
        FastEnhancer(torch.nn.Conv2d(3, 3, 3))
    fast = optimize(reference_net)
    assert fast.precision == "float32" and not fast.channels_last
    with pytest.raises(ValueError, match="differ"):
        fast.inverse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 10))
    with pytest.raises(ConfigError, match="temperature"):
        fast.enhance(torch.zeros(1, 3, 8, 8), temperature=-1.0)


def test_no_autograd_and_reference_untouched(reference_net, airplane) -> None:
    before = {k: v.clone() for k, v in reference_net.state_dict().items()}
    fast = FastEnhancer.from_reference(reference_net)
    out = fast.inverse(airplane[..., :16, :16], torch.zeros(1, 3, 16, 16))
    assert not out.requires_grad
    for key, value in reference_net.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("config", [EnhancerConfig(), SMALL_K2], ids=["default", "k2"])
def test_analytic_macs_match_a_counter(config) -> None:
    net = INNEnhancer(config)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net.inverse(torch.rand(1, 3, 30, 34), torch.rand(1, config.latent_channels, 30, 34))
    conv_flops = counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    assert conv_flops == 2 * enhancer_macs(config, 30, 34)


def test_paper_mac_count() -> None:
    """About 64 GMAC per 256x256 pass, about half in the full-resolution Gaussianisation."""
    total = enhancer_macs(EnhancerConfig(), 256, 256)
    gaussian = 2 * dense_block_macs_per_pixel(3, 3, 64) * 256 * 256
    assert total == 63_810_699_264
    assert 0.45 < gaussian / total < 0.5
