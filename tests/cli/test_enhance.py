"""`innrsic enhance` and `decompress --enhance` in a subprocess: the same pixels either way,
seeds and temperature, bad weights."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import main
from innrsic.codecs import make_codec
from innrsic.enhancer import EnhancerConfig, session
from innrsic.raster.image import read_image
from innrsic.rsic.coding import compress_file


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


@pytest.mark.slow
def test_decompress_region_enhanced_is_the_whole_scenes_window(
    run_cli, tmp_path, ucm_test_paths, weights
):
    stream = tmp_path / "a.rsic"
    assert run_cli("compress", ucm_test_paths[0], "-o", stream, "--codec",
                   "jpeg2000:bpp=0.2").returncode == 0
    options = ["--enhance", weights, "--temperature", "1", "--seed", "3", "--tile", "64",
               "--overlap", "8", "--threads", "1"]
    whole = run_cli("decompress", stream, "-o", tmp_path / "whole.png", *options)
    assert whole.returncode == 0, whole.stderr
    part = run_cli("decompress", stream, "-o", tmp_path / "part.png", "--region", "71,50,150,120",
                   *options)
    assert part.returncode == 0, part.stderr
    expected = read_image(tmp_path / "whole.png")[50:170, 71:221]
    assert np.array_equal(read_image(tmp_path / "part.png"), expected)


@pytest.fixture
def stream(tmp_path, crops) -> Path:
    path = tmp_path / "x.rsic"
    compress_file(crops[0], path, make_codec("jpeg:quality=30"))
    return path


def _no_load(*_args, **_kwargs):
    raise AssertionError("a model was loaded before the options were checked")


def _main(*args: str | Path) -> int:
    try:
        return main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse refuses a bad value itself
        return int(exit_.code or 0)


def test_enhancer_options_without_enhance_are_refused(tmp_path, stream, capsys):
    code = _main("decompress", stream, "-o", tmp_path / "y.png", "--temperature", "0.5",
                 "--seed", "3", "--tile", "64", "--precision", "bfloat16")
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "innrsic decompress: error: --temperature, --seed, --tile, --precision only apply "
        "with --enhance MODEL; add it or leave them out"
    ]
    assert not (tmp_path / "y.png").exists()


@pytest.mark.parametrize("command", ["enhance", "decompress"])
def test_tiling_is_checked_before_the_model_loads(
    tmp_path, crops, stream, capsys, monkeypatch, command
):
    monkeypatch.setattr(session, "load_enhancer", _no_load)
    source, model = (crops[0], "--weights") if command == "enhance" else (stream, "--enhance")
    code = _main(command, source, "-o", tmp_path / "y.png", model, "enhancer-jpeg2000-bpp0.2",
                 "--tile", "16")
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "tile 16 must be" in line and "twice the overlap (32); e.g. --tile 64" in line
    assert not (tmp_path / "y.png").exists()


def test_costly_tiling_is_warned_about_once_and_the_help_says_the_rule(
    tmp_path, crops, weights, capsys, caplog
):
    with caplog.at_level(logging.WARNING):
        code = _main("enhance", crops[0], "-o", tmp_path / "y.png", "--weights", weights,
                     "--tile", "16", "--overlap", "8", "--threads", "1")
    assert code == 0
    assert caplog.text.count("tile 16 with overlap 8 runs the network on 4.0x the image's "
                             "pixels") == 1
    capsys.readouterr()
    assert _main("enhance", "--help") == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "else even, >= 16 and >= twice --overlap (default: 512)" in help_text
