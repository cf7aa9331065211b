"""`innrsic enhance` and `decompress --enhance` in a subprocess: the same pixels either way,
seeds and temperature, bad weights."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from innrsic.cli import main
from innrsic.codecs import make_codec
from innrsic.enhancer import EnhancerConfig, session
from innrsic.enhancer.apply import enhance_array
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.enhancer.weights_file import load_enhancer
from innrsic.raster.geotiff import open_source, restore_samples
from innrsic.raster.image import read_image
from innrsic.raster.tiling import Window
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


# --- 16-bit and multi-band scenes (issue 32, item 2) -----------------------------------------

U16_DESCRIPTIONS = ("blue", "green", "red", "nir")
U16_CRS = "EPSG:32633"
U16_TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0)


def _u16_geotiff(path: Path, count: int) -> Path:
    """A 200x300 uint16 scene of `count` bands in UTM 33N, nodata 0 in a 40x50 corner."""
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[:200, :300]
    base = 1000.0 + 8 * cols + 5 * rows
    data = np.stack([base + 200 * b + rng.normal(0, 40, base.shape) for b in range(count)])
    data = np.clip(data, 1, None).astype(np.uint16)
    data[:, :40, :50] = 0
    with rasterio.open(path, "w", driver="GTiff", width=300, height=200, count=count,
                       dtype="uint16", crs=U16_CRS, transform=U16_TRANSFORM,
                       nodata=0) as dataset:
        dataset.write(data)
        dataset.descriptions = U16_DESCRIPTIONS[:count]
    return path


@pytest.fixture(scope="module")
def u16(tmp_path_factory) -> dict[str, Path]:
    """A 3-band and a 4-band uint16 GeoTIFF, and the 3-band one compressed with --scale auto
    through the CLI, as the issue's user did."""
    folder = tmp_path_factory.mktemp("u16")
    paths = {"rgb": _u16_geotiff(folder / "u16.tif", 3),
             "four": _u16_geotiff(folder / "u16_4.tif", 4), "stream": folder / "u16.rsic"}
    assert _main("compress", paths["rgb"], "-o", paths["stream"], "--codec", "jpeg2000:bpp=0.2",
                 "--scale", "auto") == 0
    return paths


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as dataset:
        return dataset.read(), {"dtypes": dataset.dtypes, "nodata": dataset.nodata,
                                "crs": dataset.crs, "transform": dataset.transform,
                                "descriptions": dataset.descriptions}


FAST = ("--tile", "64", "--overlap", "8", "--threads", "1")


def test_decompress_enhance_of_a_scaled_scene_writes_the_source_type(tmp_path, u16, weights):
    stream = u16["stream"]
    assert _main("decompress", stream, "-o", tmp_path / "plain.tif") == 0
    assert _main("decompress", stream, "-o", tmp_path / "enh.tif", "--enhance", weights,
                 *FAST) == 0
    source, _ = _read(u16["rgb"])
    plain, plain_profile = _read(tmp_path / "plain.tif")
    enhanced, profile = _read(tmp_path / "enh.tif")
    assert profile == plain_profile  # uint16, nodata 0, CRS, transform and band names
    assert profile["dtypes"] == ("uint16",) * 3 and profile["nodata"] == 0
    nodata = (source == 0).all(axis=0)
    assert np.array_equal((enhanced == 0).all(axis=0), nodata)
    valid = enhanced[:, ~nodata]
    low, high = source[:, ~nodata].min(), source[:, ~nodata].max()
    assert low <= valid.min() and valid.max() <= high and (valid > 0).all()
    assert not np.array_equal(enhanced, plain)
    # the stored mapping both ways: what `enhance --scale LOW,HIGH` makes of the plain decode
    assert _main("enhance", tmp_path / "plain.tif", "-o", tmp_path / "again.tif", "--weights",
                 weights, "--scale", f"{low},{high}", *FAST) == 0
    assert np.array_equal(_read(tmp_path / "again.tif")[0], enhanced)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.tif", "enh.tif", "plain.tif"]


def test_a_region_of_a_scaled_scene_enhanced_is_the_whole_scenes_window(tmp_path, u16, weights):
    options = ("--enhance", weights, "--seed", "3", *FAST)
    assert _main("decompress", u16["stream"], "-o", tmp_path / "whole.tif", *options) == 0
    assert _main("decompress", u16["stream"], "-o", tmp_path / "part.tif", "--region",
                 "70,30,150,120", *options) == 0
    part, profile = _read(tmp_path / "part.tif")
    whole, whole_profile = _read(tmp_path / "whole.tif")
    assert np.array_equal(part, whole[:, 30:150, 70:220])
    assert profile["dtypes"] == ("uint16",) * 3
    assert profile["transform"] == whole_profile["transform"] @ Affine.translation(70, 30)


def test_enhance_a_four_band_16_bit_scene_with_bands_and_scale(tmp_path, u16, weights):
    target = tmp_path / "rgb.tif"
    assert _main("enhance", u16["four"], "-o", target, "--weights", weights, "--bands", "3,2,1",
                 "--scale", "auto", *FAST) == 0
    source, source_profile = _read(u16["four"])
    enhanced, profile = _read(target)
    assert profile["dtypes"] == ("uint16",) * 3 and profile["nodata"] == 0
    assert profile["descriptions"] == ("red", "green", "blue")
    assert (profile["crs"], profile["transform"]) == (source_profile["crs"],
                                                      source_profile["transform"])
    nodata = (source == 0).all(axis=0)
    assert np.array_equal((enhanced == 0).all(axis=0), nodata)
    # the 8-bit RGB view of bands 3,2,1 enhanced, mapped back to their range in uint16
    net = load_enhancer(weights)
    with open_source(u16["four"], (3, 2, 1), "auto") as raster:
        view, mask = raster.read(Window(0, 0, 300, 200))
        metadata = raster.metadata
    expected = enhance_array(view, net, EnhanceSettings(tile=64, overlap=8).resolve(net))
    assert np.array_equal(enhanced, restore_samples(expected, mask, metadata))
    low, high = metadata.mapping.scale
    assert (low, high) == (source[:3, ~nodata].min(), source[:3, ~nodata].max())


@pytest.mark.parametrize(
    ("command", "options", "says"),
    [
        ("enhance", ["--scale", "auto"], "has 4 bands; choose three (RGB order) or one with "
         "--bands"),
        ("enhance", ["--bands", "3,2,1"], "samples are uint16"),
        ("enhance", ["--bands", "3,2,5", "--scale", "auto"], "no band 5"),
        ("enhance", ["--bands", "3,2", "--scale", "auto"], "select one or three bands"),
        ("enhance", ["--bands", "3,2,1", "--scale", "9,9"], "must be finite with min < max"),
        ("enhance", ["--bands", "3,2,1", "--scale", "auto", "-o", "out.png"], "write a .tif"),
        ("enhance-png", ["--bands", "3,2,1"], "apply to TIFF/GeoTIFF inputs"),
        ("decompress", ["-o", "out.png"], "write a .tif"),
    ],
)
def test_bad_sample_mappings_are_refused_before_the_model_loads(
    tmp_path, u16, crops, capsys, monkeypatch, command, options, says
):
    monkeypatch.setattr(session, "load_enhancer", _no_load)
    source = {"enhance": u16["four"], "enhance-png": crops[0], "decompress": u16["stream"]}
    model = "--enhance" if command == "decompress" else "--weights"
    if "-o" in options:
        options[options.index("-o") + 1] = str(tmp_path / options[options.index("-o") + 1])
    else:
        options = ["-o", str(tmp_path / "out.tif"), *options]
    code = _main(command.split("-")[0], source[command], *options, model,
                 "enhancer-jpeg2000-bpp0.2")
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert says in line and "tmpdir" not in line
    assert list(tmp_path.iterdir()) == []


def test_enhance_help_says_what_bands_and_scale_write(capsys):
    assert _main("enhance", "--help") == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "only those bands are written, in that order and the source's sample type" in help_text
    assert "back to that range in the source's sample type" in help_text


def test_decompress_enhance_auto_picks_the_model_covering_the_stream(tmp_path, crops, capsys):
    stream = tmp_path / "j.rsic"
    compress_file(crops[0], stream, "jpeg2000:bpp=0.3")
    assert _main("decompress", stream, "-o", tmp_path / "auto.png", "--enhance", "auto",
                 "--temperature", "0") == 0
    assert _main("decompress", stream, "-o", tmp_path / "named.png", "--enhance",
                 "enhancer-jpeg2000-bpp0.4", "--temperature", "0") == 0  # covers 0.28-0.9 bpp
    assert np.array_equal(read_image(tmp_path / "auto.png"), read_image(tmp_path / "named.png"))


def test_enhance_auto_refuses_what_no_model_covers_before_any_work(
    tmp_path, crops, stream, capsys, monkeypatch
):
    monkeypatch.setattr(session, "load_enhancer", _no_load)
    assert _main("decompress", stream, "-o", tmp_path / "y.png", "--enhance", "auto") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "no shipped enhancer covers jpeg:quality=30 at" in line
    assert "enhancer-jpeg2000-bpp0.2 (jpeg2000 0.14-0.28 bpp)" in line
    assert _main("enhance", crops[0], "-o", tmp_path / "y.png") == 2
    assert "--weights auto needs --codec SPEC" in capsys.readouterr().err
    assert _main("enhance", crops[0], "-o", tmp_path / "y.png", "--codec", "webp:bpp=0.3") == 2
    assert "no shipped enhancer covers webp:bpp=0.3" in capsys.readouterr().err
    assert _main("enhance", crops[0], "-o", tmp_path / "y.png", "--codec", "nope:x=1") == 2
    assert "--codec" in capsys.readouterr().err
    assert not (tmp_path / "y.png").exists()


def test_enhance_codec_picks_the_model_and_warns_about_another(tmp_path, crops, caplog):
    args = ["--temperature", "0"]
    assert _main("enhance", crops[0], "-o", tmp_path / "a.png", "--codec", "JP2:bpp=0.1",
                 *args) == 0
    assert _main("enhance", crops[0], "-o", tmp_path / "n.png", "--weights",
                 "enhancer-jpeg2000-bpp0.1", *args) == 0
    assert np.array_equal(read_image(tmp_path / "a.png"), read_image(tmp_path / "n.png"))
    with caplog.at_level(logging.WARNING):
        assert _main("enhance", crops[0], "-o", tmp_path / "w.png", "--weights",
                     "enhancer-jpeg2000-bpp0.1", "--codec", "jpeg2000:bpp=0.4", *args) == 0
    assert "trained behind jpeg2000:bpp=0.1; this stream is jpeg2000:bpp=0.4" in caplog.text
