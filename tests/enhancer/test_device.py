"""The device path of the enhancer, run on the CPU: `EnhanceSettings.device` (checked when
built), the engine moved where the settings say, tiles batched as on a GPU, and the Python
API's ``device``."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

import innrsic
from innrsic.enhancer import EnhancerConfig, INNEnhancer, apply, capability, session
from innrsic.enhancer.apply import decompress_enhanced, enhance_array, enhance_image
from innrsic.enhancer.fast import FastEnhancer, engine_device, engine_for
from innrsic.enhancer.settings import EnhanceSettings, resolve_device
from innrsic.errors import ConfigError, UnsupportedPrecision


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(scope="module")
def net() -> INNEnhancer:
    torch.manual_seed(0)
    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return net


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (150, 170, 3), dtype=np.uint8)


def test_the_device_is_resolved_when_built(no_cuda) -> None:
    assert EnhanceSettings().device is None  # the network's own
    assert EnhanceSettings(device="auto").device == "cpu"
    assert EnhanceSettings(device="cpu").device == "cpu"
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        EnhanceSettings(device="gpu")
    with pytest.raises(ConfigError, match=r"^device cuda: torch .* sees no CUDA GPU"):
        EnhanceSettings(device="cuda")


def test_auto_picks_cuda_where_torch_sees_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"
    assert resolve_device("cpu") == "cpu"


def test_engine_for_moves_an_engine_to_the_settings_device(net) -> None:
    engine = engine_for(net, device="cpu")
    assert isinstance(engine, FastEnhancer) and engine_device(engine).type == "cpu"
    assert engine_for(engine, device="cpu") is engine
    moved = []
    engine.to = lambda device: moved.append(device)  # no GPU here: record the move
    engine.engine.workspaces[(4, torch.device("cpu"))] = torch.empty(4)
    assert engine_for(engine, device="meta") is engine
    assert moved == ["meta"] and not engine.engine.workspaces  # the old device's released


def test_batched_tiles_give_the_one_by_one_pixels(net, image, monkeypatch) -> None:
    """The GPU's batching (consecutive tiles of one size at once), run on the CPU."""
    engine = engine_for(net)
    settings = EnhanceSettings(1.0, seed=3, tile=32, overlap=8)
    one_by_one = enhance_array(image, engine, settings)
    monkeypatch.setattr(apply, "tiles_per_batch", lambda device, pixels: 3)
    calls = []
    inverse = engine.inverse
    monkeypatch.setattr(engine, "inverse", lambda y, z: calls.append(y.shape[0]) or inverse(y, z))
    assert np.array_equal(enhance_array(image, engine, settings), one_by_one)
    assert max(calls) == 3 and sum(calls) == len(apply.BlendGrid(170, 150, 32, 8))


def test_batched_tiles_keep_each_tiles_nodata_mask(net, scene, tmp_path, monkeypatch) -> None:
    """Batched tiles are all read before any is finished: each finished window gets the
    nodata mask of its own tile, not of the batch's last."""
    settings = EnhanceSettings(1.0, seed=3, tile=64, overlap=8)
    decompress_enhanced(scene["rsic"], tmp_path / "one.tif", net, settings)
    monkeypatch.setattr(apply, "tiles_per_batch", lambda device, pixels: 5)
    decompress_enhanced(scene["rsic"], tmp_path / "batched.tif", net, settings)
    with rasterio.open(tmp_path / "one.tif") as one, rasterio.open(tmp_path / "batched.tif") as b:
        single, batched = one.read(), b.read()
    assert np.array_equal((single == 0).all(axis=0), (batched == 0).all(axis=0))
    # (a batch of this scene's tiles rounds 3 pixels of its 143360 to the other level)
    assert np.abs(single.astype(int) - batched).max() <= 1


def test_bfloat16_is_checked_against_the_cpu_only_where_it_runs_there(net, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(capability, "bf16_convolution_supported", lambda: False)
    monkeypatch.setattr(session, "load_enhancer", lambda model: net)
    built = []

    def engine_for(net, precision, threads, device):
        built.append((precision, device))
        return net  # no GPU here: record where the engine would run

    monkeypatch.setattr(session, "engine_for", engine_for)
    session.open_session(EnhanceSettings(precision="bfloat16", device="cuda", model="m"))
    assert built == [("bfloat16", "cuda")]
    for device in ("cpu", None):  # None: the CPU the model loads on
        with pytest.raises(UnsupportedPrecision, match="AVX512-BF16"):
            session.open_session(EnhanceSettings(precision="bfloat16", device=device, model="m"))
    assert len(built) == 1


def test_the_api_takes_a_device(net, image, no_cuda) -> None:
    on_cpu = enhance_image(image, net, 0.0, tile=64, device="cpu")
    assert np.array_equal(on_cpu, enhance_image(image, net, 0.0, tile=64))
    assert np.array_equal(on_cpu, enhance_image(image, net, 0.0, tile=64, device="auto"))
    with pytest.raises(ConfigError, match="device cuda"):
        enhance_image(image, net, 0.0, device="cuda")
    assert next(innrsic.load_enhancer("enhancer-jpeg2000-bpp0.2").parameters()).device.type == \
        "cpu"  # auto, without a GPU
    with pytest.raises(ConfigError, match="device cuda"):
        innrsic.load_enhancer("enhancer-jpeg2000-bpp0.2", device="cuda")
