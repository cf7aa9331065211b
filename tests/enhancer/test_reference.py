"""The enhancer against the original code: reference vectors and checkpoint import/export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from innrsic.enhancer import (
    EnhancerConfig,
    INNEnhancer,
    convert_original_checkpoint,
    from_original_checkpoint,
    load_enhancer,
    save_enhancer,
)
from innrsic.enhancer.checkpoint import (
    infer_original_config,
    read_original_state_dict,
    to_original_state_dict,
)
from innrsic.errors import WeightsError


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module")
def original_state(original_checkpoint: Path) -> dict[str, torch.Tensor]:
    return read_original_state_dict(original_checkpoint)


@pytest.fixture(scope="module")
def reference_forward(reference_net, reference_vectors) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return reference_net(reference_vectors["x"])


def test_reference_config_matches_vectors(reference_net, reference_vectors) -> None:
    meta = reference_vectors["config"]
    assert reference_net.config == EnhancerConfig(
        blocks=meta["block_num"], growth=meta["gc"], expansion=meta["Gau_channel_scale"]
    )


def test_forward_matches_reference(reference_forward, reference_vectors) -> None:
    y, z = reference_forward
    assert y.shape == (2, 3, 64, 96) and z.shape == (2, 3, 64, 96)
    assert relative_error(torch.cat((y, z), dim=1), reference_vectors["forward"]) < 1e-4


@torch.no_grad()
def test_reverse_matches_reference(reference_net, reference_vectors) -> None:
    x_hat = reference_net.inverse(reference_vectors["lq"], reference_vectors["z"])
    assert relative_error(x_hat, reference_vectors["reverse"]) < 1e-4


@torch.no_grad()
def test_roundtrip_matches_reference(reference_net, reference_forward, reference_vectors) -> None:
    x_hat = reference_net.inverse(*reference_forward)
    assert (x_hat - reference_vectors["roundtrip"]).abs().max() < 1e-5


def test_default_parameter_count() -> None:
    # The original also stores 2 x 96 fixed Haar filter values (2,488,298 entries in its file).
    assert sum(p.numel() for p in INNEnhancer().parameters()) == 2_488_106


def test_export_reproduces_original_layout(reference_net, original_state) -> None:
    exported = to_original_state_dict(reference_net)
    assert exported.keys() == original_state.keys()
    for key, value in original_state.items():
        assert torch.equal(exported[key], value), key


@torch.no_grad()
def test_module_prefix_is_stripped(reference_net, original_state, reference_vectors) -> None:
    wrapped = {f"module.{key}": value for key, value in original_state.items()}
    net = from_original_checkpoint(wrapped)
    x = reference_vectors["x"][:1, :, :16, :16]
    for a, b in zip(net(x), reference_net(x), strict=True):
        assert torch.equal(a, b)


def test_convert_original_checkpoint(tmp_path, original_checkpoint, reference_net) -> None:
    target = tmp_path / "enhancer.safetensors"
    config = convert_original_checkpoint(original_checkpoint, target)
    assert config == EnhancerConfig()
    converted = load_enhancer(target).state_dict()
    expected = reference_net.state_dict()
    assert converted.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(converted[key], value), key


def test_infer_config_k2_from_export() -> None:
    config = EnhancerConfig(blocks=3, growth=8, gaussian_growth=12, expansion=2)
    exported = to_original_state_dict(INNEnhancer(config))
    assert "operations_gaussian.0.conv3.conv_weights" in exported
    assert exported["operations_gaussian.1.haar_weights"].shape == (36, 1, 2, 2)
    assert exported["operations_gaussian.2.F.conv5.weight"].shape == (9, 27 + 4 * 8, 3, 3)
    assert infer_original_config(exported) == config
    assert from_original_checkpoint(exported).config == config


def _drop_block_4(state: dict[str, torch.Tensor]) -> None:
    for key in [k for k in state if k.startswith("operations_gaussian.4.")]:
        del state[key]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("operations_gaussian.5.G.conv3.weight"), "missing"),
        (lambda s: s.pop("guassianize.h_mean_s.conv1.weight"), "lacks"),
        (lambda s: s.pop("operations_gaussian.0.conv1.conv_weights"), "channel-expansion"),
        (lambda s: s.pop("operations_gaussian.10.haar_weights"), "haar_weights"),
        (lambda s: s.pop("operations_gaussian.4.F.conv1.weight"), "missing operations_gaussian.4"),
        (_drop_block_4, "coupling blocks"),
        (lambda s: s.update({"operations_gaussian.3.H.conv2.bias": torch.zeros(7)}), "shape"),
        (
            lambda s: s.update({"operations_gaussian.1.haar_weights": torch.ones(24, 1, 2, 2)}),
            "Haar",
        ),
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), "unexpected extra.weight"),
        (lambda s: s.update({"operations_gaussian.2.F.conv1.bias": [0.0]}), "not a tensor"),
    ],
)
def test_malformed_state_dict_is_refused(original_state, edit, message) -> None:
    state = dict(original_state)
    edit(state)
    with pytest.raises(WeightsError, match=message):
        from_original_checkpoint(state)


def test_unsupported_expansion_is_refused(original_state) -> None:
    state = dict(original_state)
    for i in (3, 4, 5):
        state[f"operations_gaussian.0.conv{i}.conv_weights"] = torch.eye(3)
    with pytest.raises(WeightsError, match="expansion"):
        infer_original_config(state)


def test_original_loader_refuses_arbitrary_pickles(tmp_path) -> None:
    path = tmp_path / "evil_G.pth"
    torch.save({"net": Path("not-a-tensor")}, path)
    with pytest.raises(WeightsError, match="never unpickles arbitrary objects"):
        from_original_checkpoint(path)
    with pytest.raises(WeightsError, match="not found"):
        from_original_checkpoint(tmp_path / "absent_G.pth")
    garbage = tmp_path / "garbage_G.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 8)
    with pytest.raises(WeightsError, match="cannot read"):
        from_original_checkpoint(garbage)
    ours = tmp_path / "ours.safetensors"
    save_enhancer(INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)), ours)
    with pytest.raises(WeightsError, match=r"innrsic\.enhancer\.load_enhancer"):
        from_original_checkpoint(ours)
