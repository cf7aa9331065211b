"""The demo preset on a folder of images: the runner's rows, the report and the demo's
sections."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from innrsic.evaluation.demo import DemoEnhancers, run_demo
from innrsic.evaluation.demo_enhanced import (
    ENHANCERS_DIR,
    TEMPERATURES,
    model_table,
    run_enhancer_section,
)
from innrsic.evaluation.paired import comparisons
from innrsic.evaluation.summary import compute_stats, group_rows
from innrsic.pretrained import installed_models

CONTROLS = ["control:noise", "control:unsharp"]


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


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
    out.mkdir()
    stale = {"validation": "old", "codecs": {"jpeg2000:bpp=0.1": {"error": "stale"}}}
    (out / "controls.json").write_text(json.dumps(stale))  # the demo before issue 31's
    rows = run_demo(data, out, rates=(0.3, 0.6), codecs=("jpeg2000", "heif"), workers=2,
                    enhancers=DemoEnhancers(data_root, 2))
    assert len(rows) == 2 * 2 * 2
    table = _csv(out / "rows.csv")
    assert len(table) == 8
    for row in table:
        assert row["status"] == "ok" and row["enhancer"] == ""
        assert float(row["payload_bpp"]) <= float(row["codec"].split("bpp=")[1])
        assert 20 < float(row["psnr"]) < 50 and 0 < float(row["lpips_squeeze"]) < 1
    assert len(_csv(out / "summary.csv")) == 4
    page = (out / "index.html").read_text()
    assert 'src="rate_distortion.png"' in page and "crops/0/ground_truth.png" in page
    assert (out / "rate_distortion.png").stat().st_size > 10_000
    assert len(list((out / "crops" / "0").rglob("*.png"))) == 1 + 4
    models = installed_models()
    assert models, "the package ships enhancers; the demo must use them"
    assert len(list((out / "cache" / "bitstreams").rglob("*.rsic"))) == 8
    folder = out / ENHANCERS_DIR
    assert len(list((folder / "cache" / "bitstreams").rglob("*.rsic"))) == 2 * len(models)
    enhanced = _csv(folder / "rows.csv")
    assert len(enhanced) == 2 * len(models) * (1 + len(CONTROLS) + len(TEMPERATURES))
    for row in enhanced:
        assert row["status"] == "ok"
        assert 0 < float(row["lpips_squeeze"]) < 1 and float(row["niqe"]) > 0
        if row["enhancer"] in CONTROLS:
            assert float(row["strength"]) > 0 and row["temperature"] == ""
        elif row["enhancer"]:
            assert float(row["temperature"]) in TEMPERATURES
            assert row["seed"] == ("" if float(row["temperature"]) == 0 else "0")
    names = {row["enhancer_name"] for row in enhanced} - {"", "decoded+noise",
                                                           "decoded+unsharp"}
    assert names == {m.weights.stem for m in models}
    for model in models:
        assert (out / f"pd-{model.name}.png").stat().st_size > 10_000
        assert f'src="pd-{model.name}.png"' in page
        assert len(list((out / "crops" / model.name).glob("*.png"))) == 8
    tuning = json.loads((folder / "controls.json").read_text())
    assert set(tuning["codecs"]) == {m.codec for m in models}
    assert "ucmerced-train" in tuning["validation"]
    summary = json.loads((folder / "summary.json").read_text())
    assert len(summary["comparisons"]) == len(models)
    for comparison in summary["comparisons"]:
        assert comparison["best_control"] in CONTROLS
        assert len(comparison["enhanced"]) == len(TEMPERATURES)
    assert (folder / "index.html").is_file()
    assert not (out / "controls.json").exists() and "Controls: strengths tuned" not in page
    assert page.index("the temperature knob against tuned controls") < page.index(
        "Classical codecs") < page.index("Rate-distortion")
    assert "every perceptual claim" in page and "ΔLPIPS-sq vs best control" in page


@pytest.mark.slow
def test_enhancer_section_without_lpips_skips_the_controls(
    tmp_path: Path, ucm_test_paths, data_root: Path
) -> None:
    model = installed_models()[0]
    sections = run_enhancer_section(ucm_test_paths[:1], tmp_path, [model],
                                    tmp_path / "no-weights", data_root)
    rows = _csv(tmp_path / ENHANCERS_DIR / "rows.csv")
    assert [r["temperature"] for r in rows] == ["", *(f"{t}" for t in TEMPERATURES)]
    assert "lpips_squeeze" not in rows[0]  # no column: never computed
    page = "".join(sections)
    assert "Controls: none: LPIPS-squeeze, which tunes them, is unavailable" in page
    assert "no tuned control to make a perceptual claim against" in page
    assert not (tmp_path / ENHANCERS_DIR / "controls.json").exists()
    assert (tmp_path / f"pd-{model.name}.png").exists()


def test_model_table_pairs_against_decoded_and_the_best_control() -> None:
    """The table reads the runner's rows: the best control is the one of lower mean LPIPS,
    the differences are paired per image."""
    # enhancer id: (PSNR, LPIPS, temperature, seed, strength) of image 0
    conditions = {"": (30.0, 0.30, None, None, None),
                  "control:noise": (29.0, 0.20, None, None, 4.0),
                  "control:unsharp": (29.5, 0.25, None, None, 0.5),
                  "abc": (29.8, 0.15, 1.0, 0, None)}
    rows = [
        {"image": f"i{i}", "codec": "jpeg2000:bpp=0.1", "family": "jpeg2000",
         "rate": "bpp=0.1", "enhancer": enhancer, "temperature": temperature, "seed": seed,
         "enhancer_name": {"": "", "abc": "model"}.get(enhancer, enhancer),
         "control": enhancer.split(":")[1] if ":" in enhancer else None,
         "strength": strength, "status": "ok",
         "psnr": psnr + 0.1 * i, "lpips_squeeze": lpips + 0.01 * i, "niqe": 5.0}
        for i in range(3)
        for enhancer, (psnr, lpips, temperature, seed, strength) in conditions.items()
    ]
    combos = group_rows(rows)
    compute_stats(combos, ["psnr", "lpips_squeeze", "niqe"])
    (comparison,) = comparisons(combos)
    assert comparison.best_control is not None
    assert comparison.best_control.enhancer == "control:noise"
    table = model_table(comparison)
    assert "decoded + noise (σ 4 levels) (best control)" in table
    assert "-0.20 [-0.20, -0.20]" in table  # PSNR: enhanced - decoded, the same every image
    assert "-0.050 [-0.050, -0.050] (better)" in table  # LPIPS: enhanced - best control
    assert table.count("reference") == 2
