"""`innrsic enhance` and `decompress --enhance` in a subprocess: the same pixels either way,
seeds and temperature, bad weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from innrsic.enhancer import EnhancerConfig
from innrsic.raster.image import read_image


@pytest.fixture(scope="module")
def weights(randomised_enhancer) -> Path:
    """A small enhancer with every layer randomised, so its output depends on z."""
    return randomised_enhancer(EnhancerConfig(blocks=2, growth=8, gaussian_growth=8))


@pytest.mark.slow
def test_decompress_enhance_equals_enhance_of_decoded(run_cli, tmp_path, ucm_test_paths, weights):
    source = ucm_test_paths[0]
    assert run_cli("compress", source, "-o", tmp_path / "a.rsic", "--codec", "jpeg:quality=20")
    common = ["--threads", "1", "--seed", "5"]
    one = run_cli(
        "decompress",
        tmp_path / "a.rsic",
        "-o",
        tmp_path / "e1.png",
        "--enhance",
        weights,
        *common,
    )
    assert one.returncode == 0, one.stderr
    assert run_cli("decompress", tmp_path / "a.rsic", "-o", tmp_path / "d.png").returncode == 0
    two = run_cli(
        "enhance", tmp_path / "d.png", "-o", tmp_path / "e2.png", "--weights", weights, *common
    )
    assert two.returncode == 0, two.stderr
    enhanced = read_image(tmp_path / "e1.png")
    assert np.array_equal(enhanced, read_image(tmp_path / "e2.png"))
    assert not np.array_equal(enhanced, read_image(tmp_path / "d.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.rsic", "d.png", "e1.png", "e2.png"]


@pytest.mark.slow
def test_seed_and_temperature(run_cli, tmp_path, ucm_test_paths, weights):
    def enhanced(name: str, *options: str) -> np.ndarray:
        result = run_cli(
            "enhance",
            ucm_test_paths[1],
            "-o",
            tmp_path / name,
            "--weights",
            weights,
            "--threads",
            "1",
            *options,
        )
        assert result.returncode == 0, result.stderr
        return read_image(tmp_path / name)

    first = enhanced("a.png", "--seed", "1")
    assert np.array_equal(first, enhanced("b.png", "--seed", "1"))
    assert not np.array_equal(first, enhanced("c.png", "--seed", "2"))
    cold = enhanced("d.png", "--seed", "1", "--temperature", "0")
    assert np.array_equal(cold, enhanced("e.png", "--seed", "2", "--temperature", "0"))


def test_bad_weights_refused_without_output(run_cli, tmp_path, ucm_test_paths):
    (tmp_path / "fake.safetensors").write_bytes(b"\x80\x04not a weights file")
    result = run_cli(
        "enhance",
        ucm_test_paths[0],
        "-o",
        tmp_path / "out.png",
        "--weights",
        tmp_path / "fake.safetensors",
    )
    assert result.returncode == 2
    assert "safetensors" in result.stderr
    assert not (tmp_path / "out.png").exists()
