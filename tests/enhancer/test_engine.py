"""Every enhancing command runs the fast engine: its 8-bit output equals the reference path's,
temperature 0 skips the scale branch exactly, and precision/threads are checked up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.cli import main
from innrsic.enhancer import EnhancerConfig, INNEnhancer, capability, load_enhancer, session
from innrsic.enhancer.apply import enhance_image, enhance_tiles, latent_noise
from innrsic.enhancer.fast import FastEnhancer, engine_for
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.raster.tiling import BlendGrid, TileBlender, Window

pytestmark = pytest.mark.usefixtures("one_intra_op_thread")


def reference_enhance_image(
    image: np.ndarray, net: INNEnhancer, temperature: float, seed: int, tile: int, overlap: int
) -> np.ndarray:
    """`enhance_image` as it was before the engine: `INNEnhancer.inverse` per tile."""
    height, width = image.shape[:2]
    grid = BlendGrid(width, height, tile, overlap)
    blender = TileBlender(grid, 3)
    out = np.empty_like(image)
    channels = net.config.latent_channels
    for row, col in grid.positions():
        window = grid.window(row, col)
        pixels = image[window.slices].transpose(2, 0, 1)[None]
        y = torch.from_numpy(np.ascontiguousarray(pixels, np.float32)) / 255.0
        z = torch.from_numpy(latent_noise(window, channels, seed)[None] * temperature)
        with torch.inference_mode():
            x = net.inverse(y, z).clamp(0.0, 1.0)
        done, blended = blender.add(row, col, x[0].permute(1, 2, 0).numpy())
        out[done.slices] = np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def shipped_net() -> INNEnhancer:
    from innrsic.pretrained import installed_models

    return load_enhancer(installed_models()[0].weights).eval()


@pytest.fixture(scope="module")
def decoded(airplane: torch.Tensor) -> np.ndarray:
    pixels = (airplane[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return np.ascontiguousarray(pixels[:200, :232])


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_product_path_equals_the_reference_path(shipped_net, decoded, temperature) -> None:
    expected = reference_enhance_image(decoded, shipped_net, temperature, 3, 96, 16)
    got = enhance_image(decoded, shipped_net, temperature, seed=3, tile=96, overlap=16)
    assert np.array_equal(got, expected)
    engine = engine_for(shipped_net)
    assert engine_for(engine) is engine  # a batch reuses one engine and its workspaces
    again = enhance_image(decoded, engine, temperature, seed=3, tile=96, overlap=16)
    assert np.array_equal(again, expected)


def test_restore_is_the_inverse_at_zero_latent_bit_for_bit(shipped_net, airplane) -> None:
    fast = FastEnhancer(shipped_net)
    x = airplane[..., :90, :121]
    with torch.no_grad():
        reference = shipped_net.inverse(x, torch.zeros_like(x))
    assert torch.equal(fast.restore(x), fast.inverse(x, torch.zeros_like(x)))
    assert (fast.restore(x) - reference).abs().max() <= 1e-5
    assert torch.equal(fast.enhance(x, 0.0), fast.inverse(x, torch.zeros_like(x)).clamp(0, 1))


def test_restore_skips_the_scale_branch(shipped_net, airplane, monkeypatch) -> None:
    fast = FastEnhancer(shipped_net)
    seen = []
    original = fast.engine.dense

    def spy(block, x, batch, pool):
        seen.append(block)
        return original(block, x, batch, pool)

    monkeypatch.setattr(fast.engine, "dense", spy)
    fast.restore(airplane[..., :32, :32])
    assert fast.mean in seen and fast.scale not in seen
    seen.clear()
    fast.inverse(airplane[..., :32, :32], torch.ones(1, 3, 32, 32))
    assert fast.scale in seen


def test_enhance_tiles_accepts_an_engine_and_checks_precision(monkeypatch) -> None:
    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)).eval()
    image = np.zeros((8, 8, 3), np.uint8)
    monkeypatch.setattr(capability, "bf16_convolution_supported", lambda: False)
    bfloat16 = EnhanceSettings(0.0, precision="bfloat16")
    tiles = enhance_tiles(lambda w: image[w.slices], 8, 8, net, bfloat16)
    with pytest.raises(capability.UnsupportedPrecision):
        next(tiles)
    assert [w for w, _ in enhance_tiles(lambda w: image[w.slices], 8, 8, net,
                                        EnhanceSettings(0.0))] == [
        Window(0, 0, 8, 8)
    ]


def _no_load(*_args, **_kwargs):
    raise AssertionError("the model was loaded before the options were checked")


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--precision", "bfloat16"], "AVX512-BF16"), (["--threads", "0"], "--threads")],
)
def test_cli_refuses_bad_engine_options_before_loading(
    tmp_path: Path, capsys, monkeypatch, options, message
) -> None:
    monkeypatch.setattr(capability, "bf16_convolution_supported", lambda: False)
    monkeypatch.setattr(session, "load_enhancer", _no_load)
    source = tmp_path / "d.png"
    from innrsic.raster.image import write_image

    write_image(source, np.zeros((16, 16, 3), np.uint8))
    try:
        code = main(["enhance", str(source), "-o", str(tmp_path / "e.png"),
                     "--weights", "enhancer-jpeg2000-bpp0.1", *options])
    except SystemExit as exit_:  # argparse refuses a bad value itself
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "e.png").exists()


def test_engines_keep_the_models_default_temperature_and_codec() -> None:
    from innrsic.enhancer.fast import ReferenceEngine

    net = load_enhancer("enhancer-jpeg2000-bpp0.2")
    assert net.default_temperature is not None
    for engine in (engine_for(net), ReferenceEngine(net)):
        assert engine.default_temperature == net.default_temperature
        assert engine.codec == net.codec
