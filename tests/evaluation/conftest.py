"""Fixtures for the evaluation tests: the shared folder, real UC-M test images, a tiny enhancer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from innrsic.data.splits import ImageRef, resolve_split
from innrsic.enhancer import EnhancerConfig, INNEnhancer, save_enhancer

GRID_IMAGES = ("airplane/airplane50", "denseresidential/denseresidential47", "river/river52")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread, as `innrsic evaluate` uses: on a busy 2-core machine more threads spin
    instead of working (LPIPS went from 0.15 s to 3-6 s per image with two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def grid_refs(data_root: Path) -> list[ImageRef]:
    """Three UC-M test-split images of different classes."""
    refs = {ref.name: ref for ref in resolve_split("ucmerced-test", data_root)}
    return [refs[name] for name in GRID_IMAGES]


@pytest.fixture(scope="session")
def tiny_enhancer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised one-block enhancer saved as safetensors."""
    torch.manual_seed(1234)
    net = INNEnhancer(EnhancerConfig(blocks=1, growth=8, gaussian_growth=8))
    path = tmp_path_factory.mktemp("enhancer") / "tiny.safetensors"
    save_enhancer(net, path)
    return path


@pytest.fixture()
def no_hub_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache and no $INNRSIC_WEIGHTS_DIR, so probes find only what a test
    puts in place."""
    hub_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(hub_home))
    monkeypatch.delenv("INNRSIC_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return hub_home / "hub" / "checkpoints"
