"""Fixtures for the enhancer tests: shared reference data, real images, random networks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from innrsic.enhancer import EnhancerConfig, INNEnhancer, from_original_checkpoint


@pytest.fixture(scope="session")
def original_checkpoint(reference_dir: Path, existing_path) -> Path:
    return existing_path(reference_dir / "inn_rsic_original_G.pth")


@pytest.fixture(scope="session")
def reference_vectors(reference_dir: Path, existing_path) -> dict:
    path = existing_path(reference_dir / "inn_rsic_vectors.pt")
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def read_ucmerced(data_root: Path, existing_path) -> Callable[[str], torch.Tensor]:
    """Reader: UC Merced ``<class>NN`` -> (1, 3, H, W) float32 tensor in [0, 1]."""

    def read(name: str) -> torch.Tensor:
        category = name.rstrip("0123456789")
        path = existing_path(data_root / "ucmerced" / category / f"{name}.png")
        with Image.open(path) as image:
            array = np.array(image.convert("RGB"))
        return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.0

    return read


@pytest.fixture(scope="session")
def reference_net(original_checkpoint: Path) -> INNEnhancer:
    """The reference checkpoint's network (random weights in the original layout); read-only."""
    return from_original_checkpoint(original_checkpoint)


@pytest.fixture(scope="session")
def small_k2() -> EnhancerConfig:
    """A small k=2 network, fast enough for round trips on the CPU."""
    return EnhancerConfig(blocks=2, growth=8, gaussian_growth=8, expansion=2, clamp=0.5)


@pytest.fixture(scope="session")
def randomized() -> Callable[..., INNEnhancer]:
    """Factory: a network perturbed away from the identity a fresh one starts as."""

    def build(config: EnhancerConfig, seed: int = 0) -> INNEnhancer:
        net = INNEnhancer(config)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
        return net

    return build
