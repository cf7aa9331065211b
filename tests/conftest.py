"""Fixtures shared by the whole suite: where `../shared` is, and real images from it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from innrsic.imageio import read_image


def shared_root() -> Path:
    """`$INNRSIC_SHARED`, else the `shared` folder beside the repository root."""
    override = os.environ.get("INNRSIC_SHARED")
    return Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_root()
    assert (root / "data").is_dir(), f"shared data missing at {root} (set INNRSIC_SHARED)"
    return root


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
