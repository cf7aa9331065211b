"""The benchmark scripts run end to end in their --quick mode and write their tables."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script: str, shared: Path, out: Path, *args: str) -> list[dict[str, str]]:
    env = {**os.environ, "INNRSIC_SHARED": str(shared)}
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    meta = json.loads(out.with_suffix(".json").read_text())["meta"]
    assert meta["machine"]["peak_fp32"]["gflops"] > 0
    assert "uptime" in meta["machine"]
    assert rows and not any(row.get("error") for row in rows), rows
    return rows


@pytest.mark.slow
def test_enhancer_benchmark_quick(shared: Path, tmp_path: Path) -> None:
    rows = run("enhancer.py", shared, tmp_path / "enhancer.csv", "--variants", "reference,fast")
    cases = {(r["size"], r["direction"], r["variant"]) for r in rows}
    assert cases == {
        (size, direction, variant)
        for size in ("64", "128")
        for direction in ("inverse", "forward")
        for variant in ("reference", "fast")
    }
    for row in rows:
        assert float(row["mpix_s"]) > 0 and float(row["gflop_s"]) > 0
        if row["size"] == "64":  # side by side in one process: exact and compared
            assert float(row["max_abs_diff_vs_reference"]) <= 1e-5
            assert float(row["speedup_vs_reference"]) > 0
            image_psnr = row["psnr_image_vs_reference_db"]  # enhanced images: inverse only
            assert (image_psnr != "") == (row["direction"] == "inverse")
        else:  # tiled, one subprocess per variant: time and peak memory
            expected = (
                "tiled 64px+16 innrsic.enhancer.apply"
                if row["direction"] == "inverse"
                else ("tiled 64px x2 batched")
            )
            assert row["mode"] == expected
            assert float(row["peak_rss_mib"]) > 0


@pytest.mark.slow
def test_codecs_benchmark_quick(shared: Path, reference_dir: Path, tmp_path: Path) -> None:
    elic = reference_dir / "elic_original_checkpoint.pth.tar.xz"
    specs = f"jpeg:quality=75;jpeg2000:ratio=48;elic:weights={elic}"
    rows = run("codecs.py", shared, tmp_path / "codecs.csv", "--codecs", specs)
    assert [r["codec"] for r in rows] == ["jpeg:quality=75", "jpeg2000:ratio=48", "elic"]
    for row in rows:
        assert float(row["encode_mpix_s"]) > 0 and float(row["decode_mpix_s"]) > 0
        assert float(row["bpp"]) > 0 and float(row["peak_rss_mib"]) > 0
        assert math.isfinite(float(row["psnr_db"]))


@pytest.mark.slow
def test_training_benchmark_quick(shared: Path, tmp_path: Path) -> None:
    (row,) = run("training.py", shared, tmp_path / "training.csv")
    assert row["config"] == "configs/enhancer/quick.yaml"
    assert float(row["steps_s"]) > 0 and int(row["steps"]) == 3
    assert float(row["peak_rss_mib"]) > 0


@pytest.mark.slow
def test_scene_benchmark_quick(shared: Path, tmp_path: Path) -> None:
    """Decompress vs decompress + enhance, product vs reference path, in one run: every case
    timed, and the product path's 8-bit output equal to the reference path's."""
    rows = run("scene_enhance.py", shared, tmp_path / "scene.csv",
               "--models", "enhancer-jpeg2000-bpp0.2")
    assert [r["case"] for r in rows] == ["decompress", "product", "product-1thread", "reference"]
    for row in rows:
        assert float(row["seconds_median"]) > 0 and float(row["peak_rss_mib"]) > 0
        if row["case"] != "decompress":
            assert row["same_as_reference"] == "True"
            assert float(row["gflops_s"]) > 0 and float(row["x_decompress"]) > 1
