"""The command line as a new user meets it: repeated options, early one-line errors, outputs
that contradict the format, --skip-existing across codecs, closed pipes, -v, --help."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import build_parser, main
from innrsic.enhancer.temperature import grid_enhancers
from innrsic.pretrained import installed_models
from innrsic.raster.image import read_image

SHIPPED = "enhancer-jpeg2000-bpp0.2"


def test_list_options_accumulate_and_single_options_refuse_a_repeat(capsys) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["evaluate", "--out", "o", "--codec", "jpeg2000:bpp=0.1", "--codec", "jpeg2000:bpp=0.3",
         "heif:bpp=0.3", "--enhancer", "a", "--enhancer", "b", "--temperature", "0",
         "--temperature", "0.5"]
    )
    assert args.codec == ["jpeg2000:bpp=0.1", "jpeg2000:bpp=0.3", "heif:bpp=0.3"]
    assert (args.enhancer, args.temperature) == (["a", "b"], [0.0, 0.5])
    assert parser.parse_args(["evaluate", "--out", "o"]).temperature is None
    assert not hasattr(args, "_options_given")
    for argv in (
        ["compress", "in.png", "-o", "a.rsic", "--codec", "jpeg", "--codec", "avif"],
        ["enhance", "in.png", "-o", "e.png", "--weights", "w", "--temperature", "0",
         "--temperature", "1"],
        ["decompress", "a.rsic", "-o", "a.png", "-o", "b.png"],
        ["train", "enhancer", "--config", "a.yaml", "--config", "b.yaml"],
    ):
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(argv)
        assert stop.value.code == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "given twice" in error and "one value" in error


@pytest.mark.parametrize(
    "argv, message",
    [
        # the parser reads a number; the settings apply the one range rule (check_temperature)
        (["enhance", "{img}", "-o", "e.png", "--weights", SHIPPED, "--temperature", "warm"],
         "'warm' is not a temperature (a number)"),
        (["enhance", "{img}", "-o", "e.png", "--weights", SHIPPED, "--temperature", "-1"],
         "temperature must be a finite number >= 0"),
        (["enhance", "{img}", "-o", "e.png", "--weights", SHIPPED, "--temperature", "nan"],
         "temperature must be a finite number >= 0"),
        (["enhance", "{img}", "-o", "e.png", "--weights", SHIPPED, "--tile", "37"], "tile 37"),
        (["enhance", "{img}", "-o", "e.bmp", "--weights", SHIPPED], "must end in"),
        (["enhance", "missing.png", "-o", "e.png", "--weights", SHIPPED], "no such file"),
        (["decompress", "{dir}", "-o", "dec.png"], "must be a directory too"),
        (["decompress", "{dir}", "-o", "dec.png", "--enhance", SHIPPED], "must be a directory"),
        (["decompress", "{rsic}", "-o", "out.bmp"], "must end in"),
        (["compress", "{img}", "-o", "x.png", "--codec", "jpeg"], "writes .rsic files"),
        (["compress", "{img}", "-o", "a.rsic", "--codec", "jpeg", "--tile", "37"], "tile size"),
        (["evaluate", "--out", "o", "--temperature", "inf"],
         "temperature must be a finite number >= 0"),
    ],
)
def test_bad_input_fails_with_one_line_and_exit_2_before_work(
    run_cli, tmp_path: Path, ucm_test_paths, argv, message
) -> None:
    streams = tmp_path / "streams"
    streams.mkdir()
    (tmp_path / "a.rsic").write_bytes(b"not read")
    places = {"img": ucm_test_paths[0], "dir": streams, "rsic": tmp_path / "a.rsic"}
    result = run_cli(*(a.format(**places) for a in argv), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Error:" not in result.stderr  # no exception type names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.rsic", "streams"]


def test_skip_existing_refuses_outputs_of_another_codec(run_cli, tmp_path: Path, ucm_test_paths):
    images = tmp_path / "images"
    images.mkdir()
    for path in ucm_test_paths[:2]:
        shutil.copy(path, images / path.name)
    out = tmp_path / "out"
    assert run_cli("compress", images, "-o", out, "--codec", "webp:quality=30").returncode == 0
    before = {p: p.read_bytes() for p in out.iterdir()}
    other = run_cli("compress", images, "-o", out, "--codec", "jpeg:quality=50",
                    "--skip-existing")
    assert other.returncode == 2
    assert "not made with jpeg:quality=50" in other.stderr and "webp:quality=30" in other.stderr
    assert {p: p.read_bytes() for p in out.iterdir()} == before
    same = run_cli("compress", images, "-o", out, "--codec", "webp:quality=30",
                   "--skip-existing")
    assert same.returncode == 0 and "skipped 2" in same.stderr
    assert "compress:" not in same.stderr  # no progress bar off a terminal


@pytest.mark.slow
def test_shipped_model_by_path_runs_at_its_default_and_warns_about_others(
    run_cli, tmp_path: Path, ucm_test_paths, other_temperature
) -> None:
    stream = tmp_path / "a.rsic"
    assert run_cli("compress", ucm_test_paths[0], "-o", stream, "--codec",
                   "jpeg2000:bpp=0.2").returncode == 0
    assert run_cli("decompress", stream, "-o", tmp_path / "d.png").returncode == 0
    models = json.loads(run_cli("models", "--json").stdout)
    path = next(m["weights"] for m in models if m["name"] == SHIPPED)
    default = next(m["default_temperature"] for m in models if m["name"] == SHIPPED)
    outputs = {}
    for label, weights in (("name", SHIPPED), ("path", path)):
        result = run_cli("enhance", tmp_path / "d.png", "-o", tmp_path / f"{label}.png",
                         "--weights", weights, "--threads", "1")
        assert result.returncode == 0 and f"T={float(default)}" in result.stdout, result.stderr
        assert "WARNING" not in result.stderr
        outputs[label] = read_image(tmp_path / f"{label}.png")
    assert np.array_equal(outputs["name"], outputs["path"])
    original = read_image(ucm_test_paths[0]).astype(float)
    assert np.mean((outputs["path"] - original) ** 2) < 2 * np.mean(
        (read_image(tmp_path / "d.png") - original) ** 2
    )  # a restoration, not noise

    other = tmp_path / "webp.rsic"
    assert run_cli("compress", ucm_test_paths[0], "-o", other, "--codec",
                   "webp:quality=20").returncode == 0
    elsewhere = other_temperature(default)
    result = run_cli("decompress", other, "-o", tmp_path / "w.png", "--enhance", SHIPPED,
                     "--threads", "1", "--temperature", str(elsewhere))
    assert result.returncode == 0, result.stderr
    warning = f"runs at temperature {default:g} by default; {elsewhere:g} is the"
    assert result.stderr.count(warning) == 1
    mismatch = "trained behind jpeg2000:bpp=0.2; this stream is webp:quality=20"
    assert result.stderr.count(mismatch) == 1


def test_evaluate_runs_enhancers_at_their_own_default(caplog, other_temperature) -> None:
    model = next(m for m in installed_models() if m.name == SHIPPED)
    paths, temperatures = grid_enhancers([SHIPPED, str(model.weights)], None)
    default = model.default_temperature
    assert paths == (model.weights, model.weights) and temperatures == (default,)
    assert not caplog.records
    elsewhere = other_temperature(default)
    assert grid_enhancers([SHIPPED], [default, elsewhere])[1] == (default, elsewhere)
    assert f"runs at temperature {default:g} by default; {elsewhere:g} is the" in caplog.text


def test_closed_pipes_end_quietly(cli, run_cli, tmp_path: Path, ucm_test_paths) -> None:
    stream = tmp_path / "a.rsic"
    assert run_cli("compress", ucm_test_paths[0], "-o", stream, "--codec", "jpeg").returncode == 0
    for argv in (["info", str(stream), "--json"], ["models", "--json"]):
        # the reader is gone before the command prints, as `| head` is after its lines
        process = subprocess.Popen([*cli, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        process.stdout.close()
        error = process.stderr.read()
        assert process.wait(timeout=300) == 141, error
        assert error == ""


def test_verbose_after_the_command_and_no_pillow_debug(run_cli, tmp_path: Path, ucm_test_paths):
    for argv in (["-v", "compress"], ["compress", "-v"]):
        result = run_cli(*argv, ucm_test_paths[0], "-o", tmp_path / f"{len(argv[0])}.rsic",
                         "--codec", "jpeg")
        assert result.returncode == 0, result.stderr
        assert "PIL" not in result.stderr and "STREAM" not in result.stderr


def test_help_shows_defaults() -> None:
    enhance = build_parser()._subparsers._group_actions[0].choices["enhance"]
    text = " ".join(enhance.format_help().split())
    assert "(default: 512)" in text and "(default: 32)" in text and "(default: 0)" in text


# --- issue 32 (round 3): --format vs -o, empty folders, option typos -------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decompress", "{rsic}", "-o", "ab7.png", "--format", "tif"],
         "-o ab7.png: --format tif writes .tif, .tiff files"),
        (["decompress", "{rsic}", "-o", "ab8.png", "--format", "cog"],
         "-o ab8.png: --format cog writes .tif, .tiff files"),
        (["enhance", "{img}", "-o", "e.tif", "--format", "jpg", "--weights", SHIPPED],
         "-o e.tif: --format jpg writes .jpg, .jpeg files"),
        (["decompress", "{empty}", "-o", "out"], "{empty}: no input files found"),
        (["compress", "{empty}", "-o", "out", "--codec", "jpeg"], "{empty}: no input files found"),
        (["enhance", "{empty}", "-o", "out", "--weights", SHIPPED],
         "{empty}: no input files found"),
        (["compress", "{img}", "-o", "x.rsic", "--codc", "jpeg"],
         "innrsic compress: error: unrecognized option --codc (did you mean --codec?) (see "
         "innrsic compress --help)"),
        (["decompress", "{rsic}", "-o", "x.png", "--frce"],
         "unrecognized option --frce (did you mean --force?) (see innrsic decompress --help)"),
        (["info", "{rsic}", "--jsn"], "(see innrsic info --help)"),
        (["decompress", "{rsic}", "-o", "x.tif", "--region", "-5,0,10,10"],
         "argument --region: region '-5,0,10,10' is not x,y,w,h (four non-negative integers)"),
    ],
)
def test_format_folders_and_typos_fail_with_one_line(
    tmp_path: Path, ucm_test_paths, capsys, argv, message
) -> None:
    """Issue 32, items 5, 7 and 12: one line on stderr, exit 2, nothing written."""
    (tmp_path / "a.rsic").write_bytes(b"not read")
    (tmp_path / "empty").mkdir()
    places = {"img": ucm_test_paths[0], "empty": tmp_path / "empty", "rsic": tmp_path / "a.rsic"}
    with contextlib.chdir(tmp_path), pytest.raises(SystemExit) as stop:
        sys.exit(main([a.format(**places) for a in argv]))
    assert stop.value.code == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.count("\n") == 1
    assert message.format(**places) in printed.err, printed.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.rsic", "empty"]


def test_format_agreeing_with_the_output_name(tmp_path: Path, ucm_test_paths, capsys) -> None:
    """Issue 32, item 5: --format that agrees with -o FILE, or -o FILE alone, writes it."""
    stream = tmp_path / "a.rsic"
    assert main(["compress", str(ucm_test_paths[0]), "-o", str(stream), "--codec", "jpeg"]) == 0
    for name, image_format in (("a.tif", "tif"), ("b.TIFF", "cog"), ("c.jpg", None)):
        extra = ["--format", image_format] if image_format else []
        assert main(["decompress", str(stream), "-o", str(tmp_path / name), *extra]) == 0
        assert read_image(tmp_path / name).shape == (256, 256, 3)
    folder = tmp_path / "decoded"
    assert main(["decompress", str(tmp_path), "-o", str(folder), "--format", "jpg"]) == 0
    assert [p.name for p in folder.iterdir()] == ["a.jpg"]
    capsys.readouterr()
