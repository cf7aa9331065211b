"""`innrsic compress`, `decompress` and `info` in a subprocess: rate targets, corrupt files and
folders, text and JSON info, bad codecs and `--help`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import main
from innrsic.raster.image import read_image
from innrsic.rsic.container import read_container_file


def test_compress_jpeg2000_target_then_decompress(run_cli, tmp_path: Path, ucm_test_paths) -> None:
    source = ucm_test_paths[0]
    result = run_cli("compress", source, "-o", tmp_path / "a.rsic", "--codec", "jpeg2000:bpp=0.2")
    assert result.returncode == 0, result.stderr
    container = read_container_file(tmp_path / "a.rsic")
    header_bytes = (tmp_path / "a.rsic").stat().st_size - container.payload_size
    assert container.payload_size * 8 / (256 * 256) <= 0.2
    assert header_bytes < 90  # 26 of them: the reconstruction checksum (innrsic.rsic.coding)
    assert "bpp" in result.stdout

    result = run_cli("decompress", tmp_path / "a.rsic", "-o", tmp_path / "a.png")
    assert result.returncode == 0, result.stderr
    decoded = read_image(tmp_path / "a.png")
    assert decoded.shape == (256, 256, 3)
    original = read_image(source)
    assert np.mean(np.abs(decoded.astype(int) - original)) < 20


def test_corrupted_file_is_refused_without_output(run_cli, tmp_path: Path, ucm_test_paths) -> None:
    assert (
        run_cli(
            "compress",
            ucm_test_paths[0],
            "-o",
            tmp_path / "a.rsic",
            "--codec",
            "jpeg:quality=30",
        ).returncode
        == 0
    )
    data = bytearray((tmp_path / "a.rsic").read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "bad.rsic").write_bytes(bytes(data))
    result = run_cli("decompress", tmp_path / "bad.rsic", "-o", tmp_path / "bad.png")
    assert result.returncode != 0
    assert "checksum" in result.stderr
    assert not (tmp_path / "bad.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.rsic", "bad.rsic"]


def test_directory_with_one_corrupt_image(run_cli, tmp_path: Path, ucm_test_paths) -> None:
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    shutil.copy(ucm_test_paths[0], images / "one.png")
    shutil.copy(ucm_test_paths[1], images / "sub" / "two.png")
    (images / "broken.png").write_bytes(ucm_test_paths[2].read_bytes()[:500])
    out = tmp_path / "streams"
    result = run_cli("compress", images, "-o", out, "--codec", "webp:quality=40")
    assert result.returncode == 1
    assert "broken.png" in result.stderr
    assert "compressed 2 of 3" in result.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.rsic")) == [
        "one.rsic",
        "sub/two.rsic",
    ]
    assert not list(out.rglob("*.tmp"))

    decoded = tmp_path / "decoded"
    result = run_cli("decompress", out, "-o", decoded)
    assert result.returncode == 0, result.stderr
    assert read_image(decoded / "sub" / "two.png").shape == (256, 256, 3)

    again = run_cli("decompress", out, "-o", decoded)
    assert again.returncode == 1
    assert "--force" in again.stderr


def test_info_text_and_json(run_cli, tmp_path: Path, ucm_test_paths) -> None:
    run_cli("compress", ucm_test_paths[0], "-o", tmp_path / "a.rsic", "--codec", "heif:quality=30")
    text = run_cli("info", tmp_path / "a.rsic")
    assert text.returncode == 0
    assert "heif:quality=30" in text.stdout
    fields = json.loads(run_cli("info", tmp_path / "a.rsic", "--json").stdout)
    assert fields["width"] == 256 and fields["height"] == 256
    assert fields["file_bytes"] == (tmp_path / "a.rsic").stat().st_size
    assert fields["checksums"] == "ok"


def test_bad_codec_and_help(run_cli, tmp_path: Path, ucm_test_paths) -> None:
    result = run_cli("compress", ucm_test_paths[0], "-o", tmp_path / "x.rsic", "--codec", "bmp")
    assert result.returncode == 2
    assert "valid codecs" in result.stderr
    assert not (tmp_path / "x.rsic").exists()
    for command in ([], ["compress"], ["decompress"], ["info"], ["demo"]):
        help_text = run_cli(*command, "--help").stdout
        assert "examples:" in help_text


def test_info_on_garbage_fails_clearly(run_cli, tmp_path: Path) -> None:
    (tmp_path / "x.rsic").write_bytes(b"GIF89a" + bytes(40))
    result = run_cli("info", tmp_path / "x.rsic")
    assert result.returncode == 2
    assert "magic" in result.stderr


def test_info_on_a_missing_file_or_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, what in ((tmp_path / "missing.rsic", "no such file"), (tmp_path, "is a directory")):
        assert main(["info", str(path)]) == 2
        message = f"innrsic info: error: {path}: {what} (info reads one .rsic file)"
        assert capsys.readouterr().err.strip() == message
