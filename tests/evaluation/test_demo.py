"""The demo preset on a folder of images: rows, tables and the report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from innrsic.evaluation.controls import ControlEntry
from innrsic.evaluation.demo import run_demo
from innrsic.evaluation.demo_enhanced import (
    TEMPERATURES,
    Condition,
    best_control,
    run_enhancer_section,
    summarise_model,
)
from innrsic.pretrained import installed_models

SWEEP = [f"T={t:g}" for t in TEMPERATURES]
CONTROLS = ["decoded+noise", "decoded+unsharp"]


@pytest.mark.slow
def test_demo_on_a_folder_writes_report(
    tmp_path: Path, ucm_test_paths, data_root: Path, no_hub_weights: Path
) -> None:
    """No weights folder and no $INNRSIC_WEIGHTS_DIR: LPIPS-squeeze and the controls come
    from the backbone shipped with innrsic (issue 32 item 16)."""
    data = tmp_path / "data"
    data.mkdir()
    for path in ucm_test_paths[:2]:
        shutil.copy(path, data / path.name)
    out = tmp_path / "out"
    rows = run_demo(data, out, rates=(0.3, 0.6), codecs=("jpeg2000", "heif"), workers=2,
                    control_root=data_root, control_images=2)
    assert len(rows) == 2 * 2 * 2
    with open(out / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 8
    for row in table:
        assert row["status"] == "ok"
        assert float(row["payload_bpp"]) <= float(row["target_bpp"])
        assert 20 < float(row["psnr"]) < 50
    with open(out / "summary.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    page = (out / "index.html").read_text()
    assert 'src="rd.png"' in page and "crops/original.png" in page
    assert (out / "rd.png").stat().st_size > 10_000
    assert len(list((out / "crops").glob("*.png"))) == 1 + 4
    models = installed_models()
    assert models, "the package ships enhancers; the demo must use them"
    assert len(list((out / "bitstreams").rglob("*.rsic"))) == 8 + 2 * len(models)
    with open(out / "enhancers.csv") as handle:
        enhanced = list(csv.DictReader(handle))
    assert sorted({r["model"] for r in enhanced}) == [m.name for m in models]
    assert len(enhanced) == 2 * len(models) * (1 + len(CONTROLS) + len(SWEEP))
    for row in enhanced:
        assert row["status"] == "ok"
        assert 0 < float(row["lpips_squeeze"]) < 1 and float(row["niqe"]) > 0
        if row["condition"] in SWEEP:
            assert float(row["temperature"]) in TEMPERATURES and row["seed"] == "0"
        elif row["condition"] in CONTROLS:
            assert float(row["strength"]) > 0 and row["temperature"] == ""
    for model in models:
        conditions = [r["condition"] for r in enhanced if r["model"] == model.name]
        assert sorted(set(conditions)) == sorted(["decoded", *CONTROLS, *SWEEP])
        assert (out / f"pd-{model.name}.png").stat().st_size > 10_000
        assert f'src="pd-{model.name}.png"' in page
        assert len(list((out / "crops" / model.name).glob("*.png"))) == 8
    tuning = json.loads((out / "controls.json").read_text())
    assert set(tuning["codecs"]) == {m.codec for m in models}
    assert "ucmerced-train" in tuning["validation"]
    with open(out / "enhancers_summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == len(models) * (1 + len(CONTROLS) + len(SWEEP))
    assert all(r["psnr_vs_decoded_ci95"] and r["lpips_vs_best_control_ci95"] for r in summary)
    record = json.loads((out / "enhancers_summary.json").read_text())
    assert [m["model"] for m in record["models"]] == [m.name for m in models]
    assert page.index("the temperature knob against tuned controls") < page.index(
        "Classical codecs")
    assert "every perceptual claim" in page


@pytest.mark.slow
def test_enhancer_section_without_lpips_skips_the_controls(
    tmp_path: Path, ucm_test_paths, data_root: Path
) -> None:
    model = installed_models()[0]
    rows, sections = run_enhancer_section(ucm_test_paths[:1], tmp_path, [model],
                                          tmp_path / "no-weights", data_root)
    assert [r["condition"] for r in rows] == ["decoded", *SWEEP]
    page = "".join(sections)
    assert "Controls: none: LPIPS-squeeze, which tunes them, is unavailable" in page
    assert "no tuned control to make a perceptual claim against" in page
    assert not (tmp_path / "controls.json").exists()
    assert (tmp_path / f"pd-{model.name}.png").exists()


def test_summary_pairs_against_decoded_and_the_best_control() -> None:
    noise, unsharp = ControlEntry("noise", 4.0), ControlEntry("unsharp", 0.5)
    conditions = [Condition("decoded"), Condition(noise.name, control=noise),
                  Condition(unsharp.name, control=unsharp), Condition("T=1", temperature=1.0)]
    values = {"decoded": (30.0, 0.30), noise.name: (29.0, 0.20), unsharp.name: (29.5, 0.25),
              "T=1": (29.8, 0.15)}
    rows = [
        {"model": "m", "image": f"i{i}", "condition": label, "status": "ok",
         "psnr": psnr + 0.1 * i, "lpips_squeeze": lpips + 0.01 * i, "niqe": 5.0}
        for i in range(3) for label, (psnr, lpips) in values.items()
    ]
    best = best_control(rows, conditions)
    assert best == noise.name
    summary = {e["condition"]: e for e in summarise_model(rows, conditions, best)}
    enhanced = summary["T=1"]
    assert enhanced["psnr_vs_decoded"]["mean"] == pytest.approx(-0.2)
    assert enhanced["lpips_vs_best_control"]["mean"] == pytest.approx(-0.05)
    assert enhanced["lpips_vs_best_control"]["verdict"] == "better"
    assert summary["decoded"]["temperature"] is None and enhanced["seed"] == 0
