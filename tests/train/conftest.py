"""Fixtures for the training-side tests: the LPIPS weights in the environment, tiny real pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from innrsic.data import ucmerced_split
from innrsic.data.pairs import generate_pairs

CODEC = "jpeg2000:bpp=0.1"


@pytest.fixture
def weights_env(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INNRSIC_WEIGHTS_DIR", str(weights_dir))
    return weights_dir


@pytest.fixture(scope="session")
def tiny_pairs(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real UC-M pairs (JPEG 2000 at 0.1 bpp): 6 train images of different classes, 2 test."""
    out = tmp_path_factory.mktemp("pairs")
    train = ucmerced_split(data_root, "train")[::161][:6]
    test = ucmerced_split(data_root, "test")[::147][:2]
    dirs = {"train": out / "train", "val": out / "val"}
    for key, refs in (("train", train), ("val", test)):
        result = generate_pairs(CODEC, refs, dirs[key], progress=False)
        assert result.ok and result.generated == len(refs)
    return dirs
