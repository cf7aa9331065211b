"""The shipped enhancers do their job on real images they were not trained on.

A regression guard on the weights themselves, not the acceptance measurement (that is the
model cards': 294 UC-M test images and 209 DOTA crops with confidence intervals): on 6 UC-M
test-split images per model, coded with the model's own codec spec, the enhanced image at the
default temperature has a clearly lower LPIPS-squeeze than the decoded one and loses less than
1 dB PSNR on average (the 0.4 bpp model loses 0.72 dB on these 6, 0.38 dB on all 294; broken
or mismatched weights lose 5-20 dB).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from innrsic.codecs import make_codec
from innrsic.data import ucmerced_split
from innrsic.enhancer import load_enhancer
from innrsic.enhancer.apply import enhance_image
from innrsic.metrics import psnr
from innrsic.metrics.perceptual import lpips_distance
from innrsic.pretrained import installed_models
from innrsic.raster.image import read_image
from innrsic.rsic.coding import compress_image, decompress_container

IMAGES = 6


@pytest.mark.slow
@pytest.mark.parametrize("model", installed_models(), ids=lambda m: m.name)
def test_enhancer_improves_lpips_without_losing_psnr(model, shared: Path) -> None:
    weights = shared / "weights"
    refs = ucmerced_split(shared / "data", "test")[:: 294 // IMAGES][:IMAGES]
    net = load_enhancer(model.weights).eval()
    codec = make_codec(model.codec)
    lpips_gain, psnr_change = [], []
    for ref in refs:
        image = read_image(ref.path)
        decoded = decompress_container(compress_image(image, codec), codec)
        enhanced = enhance_image(decoded, net, model.default_temperature, seed=0)
        lpips_gain.append(
            lpips_distance(image, decoded, weights) - lpips_distance(image, enhanced, weights)
        )
        psnr_change.append(psnr(image, enhanced) - psnr(image, decoded))
    assert statistics.fmean(lpips_gain) > 0.01, lpips_gain
    assert statistics.fmean(psnr_change) > -1.0, psnr_change
