"""`FastEnhancer` computes the reference `INNEnhancer`'s function: bit for bit in float32 (the
issue allows 1e-5), within 45 dB PSNR in bfloat16; chunked, reused workspaces change nothing."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from innrsic.enhancer import EnhancerConfig, INNEnhancer, capability, load_enhancer
from innrsic.enhancer import fast as fast_module
from innrsic.enhancer.cost import dense_block_macs_per_pixel, enhancer_macs
from innrsic.enhancer.fast import FastEnhancer
from innrsic.errors import ConfigError, UnsupportedPrecision

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")

FLOAT32_BOUND = 1e-5
BF16_MIN_PSNR = 45.0
SMALL = EnhancerConfig(blocks=2, growth=16, gaussian_growth=16)
SMALL_K2 = EnhancerConfig(blocks=2, growth=8, gaussian_growth=8, expansion=2, clamp=0.5)
requires_bf16 = pytest.mark.skipif(
    not capability.bf16_convolution_supported(),
    reason=f"this CPU has no bfloat16 convolutions ({capability.BF16_CPU_FEATURES})",
)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    mse = (test - reference).double().pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def latent(net: INNEnhancer | FastEnhancer, x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    shape = (x.shape[0], net.config.latent_channels, *x.shape[-2:])
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def outputs(net: INNEnhancer | FastEnhancer, x: torch.Tensor, seed: int = 7) -> dict:
    """forward, inverse on (image, N(0, I) latent), enhance at T=1 and T=0 for input x."""
    z = latent(net, x)
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
    fast = FastEnhancer(reference_net, workers=2)
    assert_close(outputs(fast, x), ref, FLOAT32_BOUND)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_float32_inverse_whole_real_image(reference_net, airplane, workers) -> None:
    """256x256 real image: every DenseBlock in several row chunks (6 at full resolution)."""
    z = latent(reference_net, airplane)
    with torch.no_grad():
        ref = reference_net.inverse(airplane, z)
    fast = FastEnhancer(reference_net, workers=workers)
    assert max_abs(fast.inverse(airplane, z), ref) <= FLOAT32_BOUND


@pytest.mark.slow
def test_float32_chunk_borders(reference_net, airplane, monkeypatch) -> None:
    """Chunks down to one row: every row of every convolution is a chunk border, and the image
    border rows come from the workspace's zero rows. Odd size (padded, cropped)."""
    monkeypatch.setattr(fast_module, "CHUNK_BYTES", 1 << 14)
    x = airplane[..., 40:115, 20:121]  # 75x101
    ref = outputs(reference_net, x)
    fast = FastEnhancer(reference_net, workers=2)
    assert_close(outputs(fast, x), ref, FLOAT32_BOUND)


@pytest.mark.parametrize("config", [SMALL, SMALL_K2], ids=["k1", "k2"])
@pytest.mark.parametrize("workers", [1, 2])
def test_float32_equals_random_network(random_net, airplane, config, workers) -> None:
    net = random_net(config)
    x = airplane[..., :64, :96]
    ref = outputs(net, x)
    assert ref["inverse"].abs().max() < 20, "the random network should stay image-sized"
    assert ref["z"].std() > 0.05, "the Gaussianisation must not be a constant"
    assert_close(outputs(FastEnhancer(net, workers=workers), x), ref, FLOAT32_BOUND)


def test_float32_tiny_images_random_network(random_net, airplane) -> None:
    """Inputs so small that PyTorch runs its own convolution kernel, not oneDNN's."""
    net = random_net(EnhancerConfig())
    x = airplane[..., :16, :24]
    assert_close(outputs(FastEnhancer(net), x), outputs(net, x), FLOAT32_BOUND)


def test_batches_and_odd_sizes(reference_net, airplane) -> None:
    """A batch (item by item), odd height and width (padded and cropped)."""
    x = torch.cat((airplane[..., :23, :31], airplane[..., 100:123, 50:81].flip(-1)))
    fast = FastEnhancer(reference_net, workers=2)
    assert_close(outputs(fast, x), outputs(reference_net, x), FLOAT32_BOUND)


def test_channels_last_is_close(reference_net, airplane) -> None:
    """NHWC changes the summation order only: small differences, not bitwise (opt-in mode)."""
    x = airplane[..., 96:128, 64:96]
    fast = outputs(FastEnhancer(reference_net, channels_last=True), x)
    ref = outputs(reference_net, x)
    for key, value in ref.items():
        scale = max(1.0, value.abs().max().item())
        assert max_abs(fast[key], value) <= 1e-5 * scale * 100, key


@requires_bf16
@pytest.mark.parametrize("config", [SMALL, SMALL_K2], ids=["k1", "k2"])
def test_bfloat16_within_45db_random_network(random_net, airplane, config) -> None:
    net = random_net(config, seed=3)
    x = airplane[..., :64, :96]
    exact = outputs(FastEnhancer(net), x)
    low = outputs(FastEnhancer(net, precision="bfloat16"), x)
    for key in exact:
        assert low[key].dtype == torch.float32
        assert psnr(low[key], exact[key]) >= BF16_MIN_PSNR, (key, psnr(low[key], exact[key]))
    assert psnr(low["inverse"], exact["inverse"]) < 200, "bfloat16 should not be exact"


@requires_bf16
def test_bfloat16_within_45db_paper_size_real_image(random_net, airplane) -> None:
    """Paper-size network with image-sized outputs, whole 256x256 real image, T=1: the raw
    inverse (unclamped) within 45 dB of float32."""
    net = random_net(EnhancerConfig(), seed=5)
    z = latent(net, airplane)
    exact = FastEnhancer(net).inverse(airplane, z)
    low = FastEnhancer(net, precision="bfloat16").inverse(airplane, z)
    assert psnr(low, exact) >= BF16_MIN_PSNR, psnr(low, exact)


@requires_bf16
def test_bfloat16_within_45db_reference_checkpoint(reference_net, airplane) -> None:
    """Images (forward y, enhance) within 45 dB. The raw inverse of this random-weight network
    spans about [-15, 25] instead of [0, 1] and amplifies every rounding error (about 38 dB for
    peak 1), so its PSNR is taken over that range."""
    x = airplane[..., 96:144, 64:128]
    exact = outputs(FastEnhancer(reference_net), x)
    low = outputs(FastEnhancer(reference_net, precision="bfloat16"), x)
    for key in ("y", "z", "enhance", "enhance_t0"):
        assert psnr(low[key], exact[key]) >= BF16_MIN_PSNR, (key, psnr(low[key], exact[key]))
    for key in ("inverse", "roundtrip"):
        span = (exact[key].max() - exact[key].min()).item()
        ranged = psnr(low[key], exact[key]) + 20 * math.log10(max(span, 1.0))
        assert ranged >= BF16_MIN_PSNR, (key, ranged)


def test_workspaces_are_reused_and_released(reference_net, airplane) -> None:
    """One workspace per block width, reused by later calls and grown for larger images only;
    a smaller image in a larger workspace gives the same result as in its own."""
    fast = FastEnhancer(reference_net)
    small, large = airplane[..., :48, :64], airplane[..., :64, :96]
    first = fast.inverse(small, torch.zeros(1, 3, 48, 64))
    fast.inverse(large, torch.zeros(1, 3, 64, 96))
    buffers = {key: t.data_ptr() for key, t in fast.engine.workspaces.items()}
    # Gaussianisation (3 + 4 * 64 channels), F (18 + 4 * 32) and G/H (6 + 4 * 32).
    assert sorted(key[0] for key in buffers) == [134, 146, 259]
    assert torch.equal(fast.inverse(small, torch.zeros(1, 3, 48, 64)), first)
    assert {key: t.data_ptr() for key, t in fast.engine.workspaces.items()} == buffers
    fast.release()
    assert not fast.engine.workspaces
    assert torch.equal(fast.inverse(small, torch.zeros(1, 3, 48, 64)), first)


def test_weights_are_read_from_the_reference(random_net) -> None:
    net = random_net(SMALL_K2)
    fast = FastEnhancer(net)
    for fc, rc in zip(fast.couplings, net.couplings, strict=True):
        for i in range(5):
            assert torch.equal(fc.G.conv(i)[0], rc.G.convs[i].weight)
            assert torch.equal(fc.F.conv(i)[1], rc.F.convs[i].bias)
    assert torch.equal(fast.scale.conv(4)[0], net.gaussianize.scale.convs[4].weight)
    assert torch.equal(fast.inverse_matrices, torch.linalg.inv(net.expansion.matrices))


def test_inverse_does_not_invert_matrices(reference_net, airplane, monkeypatch) -> None:
    fast = FastEnhancer(reference_net)

    def refuse(*args, **kwargs):
        raise AssertionError("matrix inverse computed per call")

    monkeypatch.setattr(torch.linalg, "inv", refuse)
    fast.inverse(airplane[..., :16, :16], torch.zeros(1, 3, 16, 16))


def test_options_are_checked(reference_net) -> None:
    with pytest.raises(ConfigError, match="precision"):
        FastEnhancer(reference_net, precision="float16")
    with pytest.raises(ConfigError, match="workers"):
        FastEnhancer(reference_net, workers=0)
    with pytest.raises(ConfigError, match="INNEnhancer"):
        FastEnhancer(torch.nn.Conv2d(3, 3, 3))
    fast = FastEnhancer(reference_net)
    assert fast.precision == "float32" and not fast.channels_last
    with pytest.raises(ValueError, match="differ"):
        fast.inverse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 10))
    with pytest.raises(ConfigError, match="temperature"):
        fast.enhance(torch.zeros(1, 3, 8, 8), temperature=-1.0)


@requires_bf16
def test_bfloat16_runs_channels_last(reference_net) -> None:
    assert FastEnhancer(reference_net, precision="bfloat16").channels_last


def test_bfloat16_without_cpu_support_is_a_clear_error(reference_net, monkeypatch) -> None:
    """The branch an AVX2-only CPU takes, on any machine: the probe says no."""
    monkeypatch.setattr(capability, "bf16_convolution_supported", lambda: False)
    with pytest.raises(UnsupportedPrecision, match="AVX512-BF16") as caught:
        FastEnhancer(reference_net, precision="bfloat16")
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ConfigError)
    FastEnhancer(reference_net, precision="float32")  # float32 always runs


def test_bf16_probe_matches_the_real_convolution() -> None:
    """The probe answers what a bf16 FastEnhancer convolution does on this machine."""
    net = INNEnhancer(SMALL).eval()
    x = torch.rand(1, 3, 16, 16)
    if capability.bf16_convolution_supported():
        FastEnhancer(net, precision="bfloat16").inverse(x, torch.zeros_like(x))
    else:
        with pytest.raises(RuntimeError, match="bf16"):
            rows = torch.zeros(1, 8, 4, 4, dtype=torch.bfloat16)
            weight = torch.zeros(8, 8, 3, 3, dtype=torch.bfloat16)
            torch.ops.aten.mkldnn_convolution(
                rows.contiguous(memory_format=torch.channels_last),
                weight.contiguous(memory_format=torch.channels_last),
                torch.zeros(8, dtype=torch.bfloat16), [1, 1], [1, 1], [1, 1], 1,
            )


def test_no_autograd_and_reference_untouched(reference_net, airplane) -> None:
    before = {k: v.clone() for k, v in reference_net.state_dict().items()}
    fast = FastEnhancer(reference_net)
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


def test_shipped_model_float32_fast_path_on_a_real_image(airplane) -> None:
    """The shipped trained enhancers: float32 fast path within 1e-5 of the reference."""
    from innrsic.pretrained import installed_models

    for model in installed_models():
        net = load_enhancer(model.weights).eval()
        exact = FastEnhancer(net)
        with torch.no_grad():
            reference = net.inverse(airplane, torch.zeros_like(airplane))
        assert max_abs(exact.inverse(airplane, torch.zeros_like(airplane)), reference) <= 1e-5


@requires_bf16
def test_shipped_model_bf16_fast_path_on_a_real_image(airplane) -> None:
    """The shipped trained enhancers at their default temperature: bf16 raw inverse within
    45 dB of float32."""
    from innrsic.pretrained import installed_models

    for model in installed_models():
        net = load_enhancer(model.weights).eval()
        exact = FastEnhancer(net)
        low = FastEnhancer(net, precision="bfloat16")
        z = latent(net, airplane) * model.default_temperature
        raw = psnr(low.inverse(airplane, z), exact.inverse(airplane, z))
        assert raw >= BF16_MIN_PSNR, (model.name, raw)


def test_enhance_defaults_to_the_models_own_temperature_like_the_reference() -> None:
    net = INNEnhancer(SMALL).eval()
    net.default_temperature = 0.0
    fast = FastEnhancer(net)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    # T = 0 draws nothing: without the model's own temperature these would be T = 1 draws
    assert torch.equal(fast.enhance(x), fast.enhance(x, 0.0))
    assert torch.equal(net.enhance(x), net.enhance(x, 0.0))
    assert max_abs(fast.enhance(x), net.enhance(x)) <= FLOAT32_BOUND
