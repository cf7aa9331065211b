"""Fixtures for the enhancer tests: shared reference data, real images, random networks, and
one intra-op thread for the fast-engine tests."""

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
    """The reference checkpoint's network (random weights in the authors' layout), in eval mode;
    read-only."""
    return from_original_checkpoint(original_checkpoint).eval()


@pytest.fixture(scope="session")
def airplane(data_root: Path, existing_path) -> torch.Tensor:
    """UC Merced airplane50 (test split) as a (1, 3, 256, 256) float32 tensor in [0, 1]."""
    path = existing_path(data_root / "ucmerced" / "airplane" / "airplane50.png")
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.0


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


@pytest.fixture(scope="session")
def random_net() -> Callable[..., INNEnhancer]:
    """Factory: a network whose every conv, the last ones included, has non-zero weights.

    A fresh `INNEnhancer` has zero output convs (identity couplings, constant Gaussianisation),
    which would hide most of the network from an equality test. Here the output convs get the
    hidden convs' initialisation (Xavier-normal x 0.1) and every parameter a small perturbation,
    so the outputs stay of image magnitude.
    """

    def build(config: EnhancerConfig, seed: int = 0) -> INNEnhancer:
        torch.manual_seed(seed)
        net = INNEnhancer(config)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in net.modules():
                if isinstance(module, torch.nn.Conv2d) and not module.weight.any():
                    torch.nn.init.xavier_normal_(module.weight, generator=generator)
                    module.weight.mul_(0.1)
            for p in net.parameters():
                p.add_(0.01 * torch.randn(p.shape, generator=generator))
        return net.eval()

    return build


@pytest.fixture(scope="module")
def one_intra_op_thread():
    """One intra-op thread in the test process (restored afterwards); the fast-engine modules
    use it for all their tests (``pytestmark``).

    On a small, busy CPU the many tiny operations of these small test images spend most of
    their time in thread barriers. Results do not depend on the thread count (oneDNN's
    convolutions here do not split their reductions across threads); `FastEnhancer` worker
    threads are still exercised where a test asks for ``workers=2``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
