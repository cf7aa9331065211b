"""Controls in an evaluation (decoded + noise, decoded + unsharp, tuned on validation images),
NIQE and band-energy columns, best control and paired differences; refusals of bad tuning
sets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from innrsic.cli import main
from innrsic.data.splits import ImageRef, resolve_split
from innrsic.errors import ConfigError
from innrsic.evaluation import EvaluationSettings, run_evaluation
from innrsic.evaluation.controls import NOISE_SEED, ControlSettings, subsample
from innrsic.evaluation.grid import image_seed
from innrsic.evaluation.paired import paired_ci, verdict
from innrsic.evaluation.store import make_key
from innrsic.metrics.controls import add_gaussian_noise
from innrsic.metrics.spectrum import BAND_COLUMNS
from innrsic.metrics.stats import mean_ci
from innrsic.pretrained import resolve_enhancer
from innrsic.raster.image import read_image, write_image

CODEC = "jpeg2000:bpp=0.1"
NOISE = (1.0, 3.0)
UNSHARP = (0.25, 1.0)
METRICS = ("psnr", "lpips_squeeze", "niqe", "band_err_16_4")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def validation(data_root: Path) -> ControlSettings:
    refs = subsample(resolve_split("ucmerced-train", data_root), 2)
    return ControlSettings(tuple(refs), "2 ucmerced-train images", NOISE, UNSHARP)


@pytest.fixture(scope="module")
def run(tmp_path_factory, grid_refs, validation, weights_dir):
    out = tmp_path_factory.mktemp("controls") / "out"
    settings = EvaluationSettings(
        codecs=(CODEC,), enhancers=(resolve_enhancer("enhancer-jpeg2000-bpp0.1")[0],),
        temperatures=(0.0,), weights_dir=weights_dir, controls=validation,
    )
    result = run_evaluation(grid_refs[:2], out, settings, progress=False)
    return out, settings, result


@pytest.mark.slow
def test_control_rows_are_tuned_on_the_validation_images(run, grid_refs, validation) -> None:
    out, settings, result = run
    assert result.ok and result.report_written and result.rows_computed == 2 * 4
    tuning = json.loads((out / "controls.json").read_text())
    record = tuning["codecs"][CODEC]
    assert tuning["setup"]["images"][0][0] == validation.images[0].name and record["n"] == 2
    rows = {(r["image"], r["enhancer"]): r for r in _read_csv(out / "rows.csv")}
    assert len(rows) == 8
    for kind, grid in (("noise", NOISE), ("unsharp", UNSHARP)):
        table = record[kind]["table"]
        assert [t["strength"] for t in table] == list(grid)
        chosen = min(table, key=lambda t: t["mean"])["strength"]
        assert record[kind]["strength"] == chosen
        for ref in grid_refs[:2]:
            row = rows[(ref.name, f"control:{kind}")]
            assert (row["control"], float(row["strength"]), row["status"]) == (kind, chosen, "ok")
            assert row["temperature"] == row["seed"] == ""
    # the noise control is decoded + the documented noise draw
    ref = grid_refs[0]
    noisy = rows[(ref.name, "control:noise")]
    decoded = read_image(out / rows[(ref.name, "")]["image_file"])
    expected = add_gaussian_noise(decoded, record["noise"]["strength"],
                                  image_seed(NOISE_SEED, ref.name))
    np.testing.assert_array_equal(read_image(out / noisy["image_file"]), expected)
    for row in rows.values():  # the new columns, on every row
        assert 0 < float(row["niqe"]) < 100 and float(row["band_err_16_4"]) >= 0
        assert all(float(row[c]) > 0 for c in BAND_COLUMNS.values())

    again = run_evaluation(grid_refs[:2], out, settings, progress=False)  # no retuning
    assert (again.rows_computed, again.rows_reused) == (0, 8)
    assert json.loads((out / "controls.json").read_text()) == tuning


@pytest.mark.slow
def test_summary_has_best_control_and_paired_differences(run) -> None:
    out, _, _ = run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["controls"]["codecs"][CODEC]["noise"]["table"]
    (comparison,) = summary["comparisons"]
    means = {c["enhancer"]: c["metrics"]["lpips_squeeze"]["mean"]
             for c in summary["combinations"]}
    best = min(("control:noise", "control:unsharp"), key=means.get)
    assert comparison["best_control"] == best
    (enhanced,) = comparison["enhanced"]
    rows = _read_csv(out / "rows.csv")
    for reference, field in (("", "vs_decoded"), (best, "vs_best_control")):
        for metric in METRICS:
            diff = enhanced[field][metric]
            per_image = {
                r["image"]: float(r[metric]) for r in rows if r["enhancer"] == enhanced["enhancer"]
            }
            base = {r["image"]: float(r[metric]) for r in rows if r["enhancer"] == reference}
            expected = mean_ci(per_image[i] - base[i] for i in per_image)
            assert diff["mean"] == pytest.approx(expected.mean)
            assert diff["ci_low"] == pytest.approx(expected.low)
            assert diff["verdict"] in ("better", "worse", "no clear difference")
    page = (out / "index.html").read_text()
    assert "Perceptual claims, against the best control" in page
    assert 'src="perception_distortion.png"' in page
    assert (out / "perception_distortion.png").is_file()
    assert "decoded + noise (σ" in page and "Controls: strengths tuned on" in page


def test_tuning_on_evaluated_or_holdout_images_is_refused(
    tmp_path: Path, grid_refs: list[ImageRef], weights_dir: Path, data_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    settings = EvaluationSettings(codecs=(CODEC,), weights_dir=weights_dir,
                                  controls=ControlSettings((grid_refs[1],), "test images"))
    with pytest.raises(ConfigError, match=r"tuned on 1 evaluated image\(s\) \(denseresidential"):
        run_evaluation(grid_refs, out, settings, progress=False)
    assert not out.exists()

    common = ["evaluate", "--data", "ucmerced-test", "--data-root", str(data_root), "--limit",
              "2", "--codec", CODEC, "--weights-dir", str(weights_dir), "--controls",
              "--no-progress", "--out", str(out)]
    assert main([*common, "--control-data", "ucmerced-test"]) == 2
    assert "the controls would be tuned on 1 evaluated image(s)" in capsys.readouterr().err
    holdout = tmp_path / "ucmerced-holdout"  # a stand-in: the real holdout is never read
    write_image(holdout / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert main([*common, "--control-data", str(holdout)]) == 2
    assert "is in the reserved holdout" in capsys.readouterr().err
    assert main([*common, "--control-data", "ucmerced-holdout"]) == 2
    assert "reserved" in capsys.readouterr().err
    assert not out.exists()


def test_control_keys_subsample_and_verdicts() -> None:
    assert make_key("a", "c", "control:noise", 1.0, 3) == ("a", "c", "control:noise", None, None)
    refs = [ImageRef(Path(f"{i}.png"), str(i)) for i in range(10)]
    assert [r.name for r in subsample(refs, 3)] == ["0", "3", "6"]
    assert subsample(refs, 20) == refs
    lower = paired_ci({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 2.0, "b": 3.1, "c": 3.9, "d": 0.0})
    assert lower.n == 3 and lower.mean == pytest.approx(-1.0)
    assert verdict(lower, -1) == "better" and verdict(lower, 1) == "worse"
    assert verdict(mean_ci([-1.0, 1.0]), 1) == "no clear difference"
    assert verdict(mean_ci([1.0]), 1) == "n/a"
