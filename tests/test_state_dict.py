"""Weights-only state dicts: tensors come back; pickled objects, garbage and non-dicts are
refused with WeightsError."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from innrsic.errors import WeightsError
from innrsic.state_dict import load_state_dict


def test_a_state_dict_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "net.pth"
    torch.save({"conv.weight": torch.ones(2, 3)}, path)
    state = load_state_dict(path, "test weights")
    assert list(state) == ["conv.weight"] and torch.equal(state["conv.weight"], torch.ones(2, 3))


def test_pickles_garbage_and_non_dicts_are_refused(tmp_path: Path) -> None:
    evil, garbage, listed = tmp_path / "evil.pth", tmp_path / "garbage.pth", tmp_path / "list.pth"
    torch.save({"net": Path("not-a-tensor")}, evil)
    garbage.write_bytes(b"not a checkpoint at all" * 8)
    torch.save([torch.ones(1)], listed)
    for path in (evil, garbage):
        with pytest.raises(WeightsError, match=r"cannot read test weights .* never unpickles"):
            load_state_dict(path, "test weights")
    with pytest.raises(WeightsError, match="is a list, not a state dict"):
        load_state_dict(listed, "test weights")
