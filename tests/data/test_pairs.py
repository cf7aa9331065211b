"""Pair generation (INN-RSIC step I) on real UC-M images: files, manifest, resume, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import main as cli_main
from innrsic.codecs import make_codec
from innrsic.data import ucmerced_split
from innrsic.data.manifest import read_pairs_manifest
from innrsic.data.pairs import generate_pairs
from innrsic.errors import ConfigError
from innrsic.raster.image import read_image

CODEC = "jpeg2000:bpp=0.1"


@pytest.fixture
def four_images(data_root: Path) -> list[Path]:
    return [ref.path for ref in ucmerced_split(data_root, "test")[::80][:4]]


def test_pairs_resume_and_a_corrupt_image(four_images: list[Path], tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    out = tmp_path / "pairs"

    result = generate_pairs(CODEC, [*four_images, corrupt], out, progress=False)
    assert (result.total, result.generated, result.skipped) == (5, 4, 0)
    assert [name for name, _ in result.failures] == ["broken"]
    assert "broken.png" in result.failures[0][1]

    manifest = read_pairs_manifest(out)
    assert manifest.codec == CODEC
    assert sorted(e.name for e in manifest.entries) == sorted(p.stem for p in four_images)
    for entry in manifest.entries:
        source = read_image(entry.source)
        gt, decoded = read_image(out / entry.gt), read_image(out / entry.decoded)
        assert np.array_equal(gt, source)
        assert decoded.shape == gt.shape and not np.array_equal(decoded, gt)
        assert 0.05 < entry.bpp <= 0.1
        assert entry.bpp == pytest.approx(8 * entry.payload_bytes / (entry.height * entry.width))
    csv_lines = (out / "manifest.csv").read_text().splitlines()
    assert csv_lines[0].startswith("name,gt,decoded,height,width,payload_bytes,bpp")
    assert len(csv_lines) == 5

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "decoded").rglob("*.png")}
    again = generate_pairs(CODEC, four_images, out, progress=False)
    assert (again.generated, again.skipped, again.failures) == (0, 4, [])
    assert {p: p.stat().st_mtime_ns for p in (out / "decoded").rglob("*.png")} == mtimes

    # a lost output file is regenerated, the rest stays cached
    lost = out / manifest.entries[0].decoded
    lost.unlink()
    third = generate_pairs(CODEC, four_images, out, progress=False)
    assert (third.generated, third.skipped) == (1, 3) and lost.is_file()


def test_pairs_refuse_to_mix_codecs(four_images: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    generate_pairs(CODEC, four_images[:1], out, progress=False)
    with pytest.raises(ConfigError, match="refusing to mix"):
        generate_pairs("jpeg2000:bpp=0.2", four_images[:1], out, progress=False)
    # an equivalent spelling of the same codec is the same codec
    same = generate_pairs("jp2:bpp=0.1", four_images[:1], out, progress=False)
    assert same.skipped == 1
    data = json.loads((out / "manifest.json").read_text())
    assert data["codec"] == make_codec(CODEC).spec and data["format"] == "innrsic-pairs"


def test_pairs_cli_exit_status(four_images: list[Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "good.png").write_bytes(four_images[0].read_bytes())
    code = cli_main(["pairs", "--codec", CODEC, "--data", str(folder), "--out",
                     str(tmp_path / "ok"), "--no-progress"])
    assert code == 0 and "1 generated" in capsys.readouterr().out
    (folder / "bad.png").write_bytes(b"not an image")
    code = cli_main(["pairs", "--codec", CODEC, "--data", str(folder), "--out",
                     str(tmp_path / "ok"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "1 already done, 1 failed" in out and "bad" in out
    code = cli_main(["pairs", "--codec", CODEC, "--data", "ucmerced-holdout", "--data-root",
                     str(tmp_path), "--out", str(tmp_path / "x")])
    assert code == 2 and "reserved" in capsys.readouterr().err
