"""LPIPS with the offline SqueezeNet backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from innrsic.data import ucmerced_split
from innrsic.errors import WeightsError
from innrsic.metrics.perceptual import lpips_distance, lpips_model, lpips_tensor
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


def test_lpips_missing_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(WeightsError, match=str(tmp_path / "squeeze.backbone.pth")):
        lpips_distance(image, image, tmp_path)
    monkeypatch.delenv("INNRSIC_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError, match="INNRSIC_WEIGHTS_DIR"):
        lpips_distance(image, image)
    monkeypatch.setenv("INNRSIC_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="does not exist"):
        lpips_distance(image, image)
