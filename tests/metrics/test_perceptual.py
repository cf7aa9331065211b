"""LPIPS with the offline SqueezeNet backbone."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from innrsic.data import ucmerced_split
from innrsic.errors import WeightsError
from innrsic.metrics import perceptual
from innrsic.metrics.perceptual import (
    SHIPPED_SQUEEZE,
    SHIPPED_SQUEEZE_SHA256,
    lpips_distance,
    lpips_model,
    lpips_tensor,
    squeeze_backbone_file,
    squeeze_features_state_dict,
)
from innrsic.raster.image import read_image


def test_lpips_identical_zero_blurred_positive(data_root: Path, weights_dir: Path) -> None:
    image = read_image(ucmerced_split(data_root, "test")[0].path)
    blurred = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(2)))
    assert lpips_distance(image, image, weights_dir) == pytest.approx(0.0, abs=1e-7)
    slight = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(0.6)))
    d_slight = lpips_distance(image, slight, weights_dir / "squeeze.backbone.pth")
    d_blur = lpips_distance(image, blurred, weights_dir)
    assert 0.0 < d_slight < d_blur < 1.0
    # batch API agrees with the per-image one
    batch = torch.from_numpy(np.stack([image, image])).permute(0, 3, 1, 2).float() / 255
    other = torch.from_numpy(np.stack([image, blurred])).permute(0, 3, 1, 2).float() / 255
    values = lpips_tensor(batch, other, weights_dir)
    assert values.shape == (2,) and values[0] == pytest.approx(0.0, abs=1e-7)
    assert float(values[1]) == pytest.approx(d_blur, rel=1e-5)
    assert lpips_model(weights_dir) is lpips_model(weights_dir)  # cached


def test_lpips_uses_the_backbone_file(weights_dir: Path) -> None:
    model = lpips_model(weights_dir)
    state = torch.load(weights_dir / "squeeze.backbone.pth", map_location="cpu", weights_only=True)
    assert torch.equal(getattr(model.net.slice1, "0").weight, state["0.weight"])
    assert torch.equal(getattr(model.net.slice7, "12").expand3x3.bias, state["12.expand3x3.bias"])


def test_shipped_backbone_is_the_documented_file(weights_dir: Path) -> None:
    """Issue 32 item 16: the SqueezeNet features ship with the package, byte for byte the
    file whose provenance `data/NOTICE` and the shared weights README give."""
    assert SHIPPED_SQUEEZE.is_file()
    digest = hashlib.sha256(SHIPPED_SQUEEZE.read_bytes()).hexdigest()
    assert digest == SHIPPED_SQUEEZE_SHA256 == (
        "435cedb387e95bc8291893f61a3a64f0345b8c23a05139aceef43947efb3d52d"
    )
    assert SHIPPED_SQUEEZE.read_bytes() == (weights_dir / "squeeze.backbone.pth").read_bytes()
    notice = (SHIPPED_SQUEEZE.parent / "NOTICE").read_text()
    assert SHIPPED_SQUEEZE_SHA256 in notice and "BSD 3-Clause License" in notice
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"metrics/data/*.pth"' in pyproject  # package data: installed by pip


def test_lpips_without_weights_uses_the_shipped_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INNRSIC_WEIGHTS_DIR", raising=False)
    assert squeeze_backbone_file() == SHIPPED_SQUEEZE
    assert squeeze_backbone_file(tmp_path) == SHIPPED_SQUEEZE  # a folder for other backbones
    monkeypatch.setenv("INNRSIC_WEIGHTS_DIR", str(tmp_path))
    assert squeeze_backbone_file() == SHIPPED_SQUEEZE
    image = np.zeros((64, 64, 3), np.uint8)
    assert lpips_distance(image, image) == pytest.approx(0.0, abs=1e-7)


def test_lpips_weights_path_that_does_not_exist(tmp_path: Path) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(WeightsError, match=f"{tmp_path / 'nowhere.pth'}: no such file"):
        lpips_distance(image, image, tmp_path / "nowhere.pth")


def test_damaged_shipped_backbone_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = tmp_path / "squeeze.backbone.pth"
    damaged.write_bytes(SHIPPED_SQUEEZE.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(perceptual, "SHIPPED_SQUEEZE", damaged)
    perceptual._check_shipped.cache_clear()
    monkeypatch.delenv("INNRSIC_WEIGHTS_DIR", raising=False)
    try:
        with pytest.raises(WeightsError, match=r"SHA-256 .* expected .*reinstall"):
            squeeze_features_state_dict()
    finally:
        perceptual._check_shipped.cache_clear()


@pytest.mark.slow
def test_evaluate_has_lpips_and_controls_without_a_weights_folder(
    tmp_path: Path, data_root: Path, run_cli
) -> None:
    """Issue 32 item 16, as the user ran it: `evaluate` with no --weights-dir and no
    $INNRSIC_WEIGHTS_DIR measures LPIPS-squeeze and tunes the controls."""
    env = {k: v for k, v in os.environ.items() if k != "INNRSIC_WEIGHTS_DIR"}
    env["TORCH_HOME"] = str(tmp_path / "torch-home")
    out = tmp_path / "eval"
    done = run_cli("evaluate", "--data", "ucmerced-test", "--data-root", data_root, "--limit",
                   "1", "--codec", "jpeg2000:bpp=0.2", "--enhancer", "enhancer-jpeg2000-bpp0.2",
                   "--temperature", "0", "--control-images", "2", "--no-progress", "--out",
                   out, env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["lpips_squeeze"].startswith("computed with ")
    assert str(SHIPPED_SQUEEZE) in summary["metrics"]["lpips_squeeze"]
    assert "unavailable" in summary["metrics"]["lpips_alex"]
    with (out / "rows.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["enhancer"] for row in rows][1:3] == ["control:noise", "control:unsharp"]
    assert all(0 < float(row["lpips_squeeze"]) < 1 for row in rows)
