"""Unreadable images, unreachable rates, undefined MS-SSIM and single-point curves, on small
synthetic images (fast)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import main
from innrsic.data.splits import folder_images
from innrsic.evaluation import EvaluationSettings, run_evaluation
from innrsic.raster.image import write_image


@pytest.fixture()
def small_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 64, dtype=np.float64)[None, :, None]
    image = np.clip(ramp + rng.normal(0, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    write_image(folder / "good.png", image)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return folder


def test_failures_unreachable_rates_and_undefined_metrics_are_rows_not_crashes(
    small_folder: Path, tmp_path: Path, no_hub_weights: Path
) -> None:
    out = tmp_path / "out"
    settings = EvaluationSettings(codecs=("jpeg2000:bpp=2", "heif:bpp=0.05"))
    result = run_evaluation(folder_images(small_folder), out, settings, progress=False)
    assert result.rows_computed == 4 and len(result.failures) == 2 and not result.ok
    with open(out / "rows.csv", newline="") as handle:
        rows = {(r["image"], r["codec"]): r for r in csv.DictReader(handle)}
    good = rows[("good", "jpeg2000:bpp=2.0")]
    assert good["status"] == "ok" and good["ms_ssim"] == ""
    assert "ms_ssim undefined: MS-SSIM needs both sides >= 161 px" in good["notes"]
    assert rows[("good", "heif:bpp=0.05")]["status"].startswith("unreachable: target of")
    assert rows[("broken", "jpeg2000:bpp=2.0")]["status"].startswith("failed: ")

    summary = json.loads((out / "summary.json").read_text())
    heif = next(c for c in summary["combinations"] if c["codec"] == "heif:bpp=0.05")
    assert (heif["n"], heif["unreachable"], heif["failed"]) == (0, 1, 1)
    assert summary["metrics"]["lpips_squeeze"].startswith("computed with ")  # shipped backbone
    bd = {c["curve"]: c for c in summary["bd"]["curves"]}
    assert bd["heif"]["bd_rate_psnr"] == {
        "value": None, "reason": "n/a: anchor curve has 1 point(s); at least 2 are needed"
    }
    page = (out / "index.html").read_text()
    assert "Rows not OK (3)" in page and "unreachable: target of" in page

    # Failed rows are tried again on the next run; unreachable and OK rows are not.
    again = run_evaluation(folder_images(small_folder), out, settings, progress=False)
    assert (again.rows_computed, again.rows_reused, again.bitstreams_encoded) == (2, 2, 0)


def test_cli_exit_status_is_1_when_an_image_fails(
    small_folder: Path, tmp_path: Path, no_hub_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evaluate", "--data", str(small_folder), "--codec", "jpeg2000:bpp=2",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 1
    assert "failed: broken jpeg2000:bpp=2.0:" in capsys.readouterr().out


def test_refuses_an_output_folder_made_from_other_files(
    small_folder: Path, tmp_path: Path, no_hub_weights: Path
) -> None:
    out = tmp_path / "out"
    settings = EvaluationSettings(codecs=("jpeg2000:bpp=2",))
    run_evaluation(folder_images(small_folder)[1:], out, settings, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "good.png").write_bytes((small_folder / "good.png").read_bytes())
    with pytest.raises(Exception, match="holds results for image 'good' from"):
        run_evaluation(folder_images(other), out, settings, progress=False)
