"""scripts/gpu_check.sh in its CPU dry run (``DEVICE=cpu TINY=1``): the same code as on a GPU,
on small crops, writing its summary and passing its checks (the CPU against itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


@pytest.mark.slow
def test_gpu_check_dry_run_on_the_cpu(tmp_path: Path, shared: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEVICE": "cpu", "TINY": "1", "PY": sys.executable,
           "DATA": str(shared / "data"), "REFERENCE": str(shared / "reference")}
    done = subprocess.run([str(SCRIPT), str(tmp_path / "out")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["failures"] == [] and summary["device"] == "cpu" and summary["tiny"]
    assert summary["p0168"]["t0_max_levels"] == 0 and summary["p0168"]["t1_max_levels"] == 0
    assert summary["synthetic"]["mpix_s"] > 0
    assert summary["elic"]["identical"] and summary["elic"]["file_decode_same"]
    assert "| P0168 256x256 T=0, cpu vs cpu | max 0 levels" in (
        tmp_path / "out" / "summary.md").read_text()
    assert "torch" in (tmp_path / "out" / "environment.txt").read_text()
