"""innrsic's own enhancer weights file: safetensors + config metadata."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch

from innrsic.enhancer import EnhancerConfig, INNEnhancer, load_enhancer, save_enhancer
from innrsic.errors import WeightsError


def test_save_load_round_trip(tmp_path, randomized, small_k2) -> None:
    net = randomized(small_k2, seed=3)
    path = tmp_path / "k2.safetensors"
    save_enhancer(net, path)
    loaded = load_enhancer(path)
    assert loaded.config == small_k2
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        for a, b in zip(net(x), loaded(x), strict=True):
            assert torch.equal(a, b)


def test_half_storage_loads_as_float32(tmp_path, randomized, small_k2) -> None:
    net = randomized(small_k2, seed=4)
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    save_enhancer(net, full)
    save_enhancer(net, half, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_enhancer(half)
    for key, value in net.state_dict().items():
        assert loaded.state_dict()[key].dtype == torch.float32
        assert torch.equal(loaded.state_dict()[key], value.half().float()), key


def test_refuses_pickle(tmp_path, small_k2) -> None:
    path = tmp_path / "enhancer.pth"
    torch.save(INNEnhancer(small_k2).state_dict(), path)
    with pytest.raises(WeightsError, match="not a safetensors file"):
        load_enhancer(path)


def test_refuses_foreign_or_broken_files(tmp_path, small_k2) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_enhancer(tmp_path / "absent.safetensors")

    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(WeightsError, match="not innrsic enhancer weights"):
        load_enhancer(foreign)

    tensors = {k: v.contiguous() for k, v in INNEnhancer(small_k2).state_dict().items()}
    base = {"format": "innrsic.enhancer", "format_version": "1"}
    cases = [
        ({**base, "config": "{not json"}, "invalid enhancer config"),
        ({**base, "config": json.dumps({"blocks": 2, "depth": 3})}, "invalid enhancer config"),
        ({**base, "config": json.dumps({**small_k2.to_dict(), "blocks": 3})}, "missing"),
        ({**base, "format_version": "99", "config": "{}"}, "format version '99'"),
    ]
    for i, (metadata, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.safetensors"
        safetensors.torch.save_file(tensors, path, metadata=metadata)
        with pytest.raises(WeightsError, match=message):
            load_enhancer(path)


def test_default_config_file_round_trip(tmp_path) -> None:
    path = tmp_path / "default.safetensors"
    save_enhancer(INNEnhancer(), path)
    assert load_enhancer(path).config == EnhancerConfig()


@pytest.mark.parametrize("field", ["blocks", "growth", "gaussian_growth"])
def test_absurd_sizes_in_the_metadata_are_refused_before_building(tmp_path, field) -> None:
    config = EnhancerConfig().to_dict()
    config[field] = 10**6
    path = tmp_path / "huge.safetensors"
    metadata = {"format": "innrsic.enhancer", "format_version": "1", "config": json.dumps(config)}
    safetensors.torch.save_file({"x": torch.zeros(1)}, str(path), metadata=metadata)
    with pytest.raises(WeightsError, match="limit"):
        load_enhancer(path)
