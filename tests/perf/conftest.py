"""Fixtures for the performance tests: the reference checkpoint, a real image, random networks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from innrsic.enhancer import EnhancerConfig, INNEnhancer, from_original_checkpoint


@pytest.fixture(scope="session")
def reference_net(reference_dir: Path, existing_path) -> INNEnhancer:
    """The reference checkpoint (random weights in the authors' layout); read-only."""
    path = existing_path(reference_dir / "inn_rsic_original_G.pth")
    return from_original_checkpoint(path).eval()


@pytest.fixture(scope="session")
def airplane(data_root: Path, existing_path) -> torch.Tensor:
    """UC Merced airplane50 (test split) as a (1, 3, 256, 256) float32 tensor in [0, 1]."""
    path = existing_path(data_root / "ucmerced" / "airplane" / "airplane50.png")
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.0


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


@pytest.fixture(autouse=True, scope="module")
def one_intra_op_thread():
    """One intra-op thread in the test process (restored afterwards).

    On a small, busy CPU the many tiny operations of these small test images spend most of
    their time in thread barriers. Results do not depend on the thread count (oneDNN's
    convolutions here do not split their reductions across threads); `FastEnhancer` worker
    threads are still exercised where a test asks for ``workers=2``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
