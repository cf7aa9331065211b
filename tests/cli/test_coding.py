"""`innrsic compress`, `decompress` and `info` in a subprocess: rate targets, corrupt files and
folders, text and JSON info, bad codecs and `--help`."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import main
from innrsic.raster.image import read_image
from innrsic.rsic.container import read_container


def test_compress_jpeg2000_target_then_decompress(run_cli, tmp_path: Path, ucm_test_paths) -> None:
    source = ucm_test_paths[0]
    result = run_cli("compress", source, "-o", tmp_path / "a.rsic", "--codec", "jpeg2000:bpp=0.2")
    assert result.returncode == 0, result.stderr
    container = read_container((tmp_path / "a.rsic").read_bytes())
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
    assert again.returncode == 2  # issue 32, item 12: one line up front, not one per file
    assert again.stderr.count("\n") == 1 and "2 of 2 outputs exist" in again.stderr
    assert "--force" in again.stderr and "--skip-existing" in again.stderr


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


def test_info_on_a_missing_file_or_an_empty_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, what in ((tmp_path / "missing.rsic", "no such file or directory"),
                       (tmp_path, "no .rsic files found in it or its subfolders")):
        assert main(["info", str(path)]) == 2
        assert capsys.readouterr().err.strip() == f"innrsic info: error: {path}: {what}"


@pytest.fixture(scope="module")
def small_images(ucm_test_paths, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of three 128x128 UC-M crops."""
    from innrsic.raster.image import write_image

    folder = tmp_path_factory.mktemp("small")
    for number, path in enumerate(ucm_test_paths):
        write_image(folder / f"{number}.png", read_image(path)[:128, :128])
    return folder


def test_compress_batch_prints_its_rates(small_images: Path, tmp_path: Path, capsys) -> None:
    """Issue 32, item 3: a batch's rate summary, a table on -v, JSON on --json."""
    out = tmp_path / "out"
    assert main(["compress", str(small_images), "-o", str(out), "--codec", "jpeg2000:bpp=0.3",
                 "--workers", "1"]) == 0
    printed = capsys.readouterr()
    assert "compressed 3 of 3 file(s)" in printed.err
    summary = printed.out.strip()
    assert summary.startswith("rates of 3 file(s): payload mean ") and "min " in summary
    assert summary.endswith("0 over the 0.3 bpp target"), summary

    assert main(["-v", "compress", str(small_images), "-o", str(out), "--codec",
                 "jpeg2000:bpp=0.3", "--workers", "1", "--force"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["file", "width", "height", "tiles", "file_bytes", "bpp",
                                "payload_bpp", "knob"]
    assert [line.split()[0] for line in lines[1:4]] == [str(out / f"{n}.rsic") for n in range(3)]
    assert lines[4].startswith("rates of 3 file(s)")

    assert main(["compress", str(small_images), "-o", str(out), "--codec", "jpeg2000:bpp=0.3",
                 "--workers", "1", "--force", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    payload = [row["payload_bpp"] for row in report["files"]]
    assert report["summary"]["payload_bpp_max"] == max(payload) <= 0.3
    assert report["summary"]["over_target"] == 0 and report["failed"] == []
    for row in report["files"]:
        assert row["payload_bytes"] == read_container(Path(row["file"]).read_bytes()).payload_size


def test_info_over_files_and_folders(small_images: Path, tmp_path: Path, capsys) -> None:
    """Issue 32, item 3: `info a.rsic b.rsic`, `info FOLDER` (text, --json, --csv)."""
    out = tmp_path / "out"
    assert main(["compress", str(small_images), "-o", str(out), "--codec", "jpeg:quality=50",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    files = [str(out / f"{n}.rsic") for n in range(3)]
    assert main(["info", files[0], files[1]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["file", "codec", "width"] and len(lines) == 3
    assert lines[2].split()[:2] == [files[1], "jpeg:quality=50"]

    assert main(["info", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["file"] for row in rows] == files and rows[0]["checksums"] == "ok"

    (out / "junk.rsic").write_bytes(b"not a container")
    assert main(["info", str(out), "--csv"]) == 1
    printed = capsys.readouterr()
    table = list(csv.DictReader(io.StringIO(printed.out)))
    assert [row["file"] for row in table] == files
    assert float(table[0]["payload_bpp"]) == rows[0]["payload_bpp"]
    assert printed.err.count("\n") == 1 and "junk.rsic" in printed.err

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["info", files[0], str(empty)]) == 2
    assert "no .rsic files found" in capsys.readouterr().err


def test_info_text_reads_as_words(small_images: Path, tmp_path: Path, capsys) -> None:
    """Issue 32, item 13: aligned key: value lines, no dict repr, tiles and checksums worded."""
    stream = tmp_path / "a.rsic"
    assert main(["compress", str(small_images / "0.png"), "-o", str(stream), "--codec",
                 "jpeg:quality=50"]) == 0
    capsys.readouterr()
    assert main(["info", str(stream)]) == 0
    lines = capsys.readouterr().out.splitlines()
    keys = [line.split(":")[0] for line in lines]
    assert keys[:4] == ["file", "format version", "codec", "size"]
    assert len({line.index(line.split(":", 1)[1].strip()) for line in lines}) == 1  # aligned
    text = "\n".join(lines)
    assert "{" not in text and "recon_crc32" not in text and "True" not in text
    assert "tiles:          1 (the whole image)" in text
    assert "crc32 of each of the 1 decoded tile(s)" in text
