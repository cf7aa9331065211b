"""Fixtures shared by the whole suite: where `../shared` is, and real images from it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from innrsic.raster.image import read_image


def shared_root() -> Path:
    """`$INNRSIC_SHARED`, else the `shared` folder beside the repository root."""
    override = os.environ.get("INNRSIC_SHARED")
    return Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared"


def existing(path: Path) -> Path:
    assert path.exists(), f"test data missing: {path} (set INNRSIC_SHARED to the shared folder)"
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return existing(shared_root())


@pytest.fixture(scope="session")
def data_root(shared: Path) -> Path:
    return existing(shared / "data" / "ucmerced").parent


@pytest.fixture(scope="session")
def weights_dir(shared: Path) -> Path:
    """The LPIPS-squeeze backbone and other offline weights."""
    return existing(shared / "weights" / "squeeze.backbone.pth").parent


@pytest.fixture(scope="session")
def reference_dir(shared: Path) -> Path:
    """Checkpoints in the authors' layout and the outputs their code computes."""
    return existing(shared / "reference")


@pytest.fixture(scope="session")
def existing_path():
    """`existing` for test modules: asserts a path under the shared folder is there."""
    return existing


@pytest.fixture(scope="session")
def ucm_test_paths(shared: Path) -> list[Path]:
    """Three UC-M test-split images (indices 46-59) of different classes."""
    names = ["airplane/airplane50", "denseresidential/denseresidential47", "river/river52"]
    return [shared / "data" / "ucmerced" / f"{name}.png" for name in names]


@pytest.fixture(scope="session")
def ucm_image(ucm_test_paths: list[Path]) -> np.ndarray:
    return read_image(ucm_test_paths[0])


@pytest.fixture(scope="session")
def cli() -> list[str]:
    """The command prefix that runs the installed CLI in a subprocess."""
    return [sys.executable, "-m", "innrsic"]
