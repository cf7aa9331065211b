"""scripts/split_pairs.py: a validation set held out of a pairs directory by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from innrsic.data.manifest import (
    PairEntry,
    PairsManifest,
    read_pairs_manifest,
    write_pairs_manifest,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "split_pairs.py"


def _pairs(directory: Path, names: list[str]) -> None:
    entries = []
    for name in names:
        for kind in ("gt", "decoded"):
            (directory / kind).mkdir(parents=True, exist_ok=True)
            (directory / kind / f"{name}.png").write_bytes(f"{kind}-{name}".encode())
        entries.append(PairEntry(name, f"src/{name}.tif", None, f"gt/{name}.png",
                                 f"decoded/{name}.png", 8, 8, 10, 0.5))
    write_pairs_manifest(directory, PairsManifest("jpeg2000:bpp=0.4", entries))


def _run(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, check=False)


def test_split_holds_out_the_suffixes_with_their_files(tmp_path: Path) -> None:
    _pairs(tmp_path / "all", ["farm03", "farm04", "farm25", "port03", "port10"])
    result = _run(tmp_path / "all", "--holdout-suffix", "03", "25",
                  "--out", tmp_path / "rest", "--held-out", tmp_path / "val")
    assert result.returncode == 0, result.stderr
    held = read_pairs_manifest(tmp_path / "val")
    rest = read_pairs_manifest(tmp_path / "rest")
    assert [e.name for e in held.entries] == ["farm03", "farm25", "port03"]
    assert [e.name for e in rest.entries] == ["farm04", "port10"]
    assert held.codec == rest.codec == "jpeg2000:bpp=0.4"
    assert (tmp_path / "val" / "decoded" / "port03.png").read_bytes() == b"decoded-port03"
    assert not (tmp_path / "rest" / "gt" / "farm03.png").exists()


def test_split_refuses_an_existing_target_or_an_empty_side(tmp_path: Path) -> None:
    _pairs(tmp_path / "all", ["farm03", "farm04"])
    (tmp_path / "rest").mkdir()
    result = _run(tmp_path / "all", "--holdout-suffix", "03",
                  "--out", tmp_path / "rest", "--held-out", tmp_path / "val")
    assert result.returncode == 2 and "exists" in result.stderr
    result = _run(tmp_path / "all", "--holdout-suffix", "99",
                  "--out", tmp_path / "rest2", "--held-out", tmp_path / "val")
    assert result.returncode == 2 and "select 0 of 2" in result.stderr
    assert not (tmp_path / "val").exists() and not (tmp_path / "rest2").exists()
