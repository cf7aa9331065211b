"""`run_evaluation`'s enhanced images are what `innrsic enhance` writes: one sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from innrsic.errors import ConfigError
from innrsic.evaluation import EvaluationSettings, run_evaluation
from innrsic.evaluation.runner import LATENT
from innrsic.evaluation.store import read_rows
from innrsic.raster.image import read_image


@pytest.mark.slow
def test_evaluate_writes_what_enhance_writes_for_the_same_seed_and_temperature(
    run_cli, tmp_path: Path, grid_refs, tiny_enhancer: Path
) -> None:
    out = tmp_path / "out"
    settings = EvaluationSettings(codecs=("jpeg2000:bpp=0.6",), enhancers=(tiny_enhancer,),
                                  temperatures=(1.0,), seed=3)
    run_evaluation(grid_refs[:2], out, settings, progress=False, build_report=False)
    rows = read_rows(out).rows.values()
    for index, ref in enumerate(grid_refs[:2]):
        mine = [row for row in rows if row["image"] == ref.name]
        decoded = next(row for row in mine if not row["enhancer"])
        enhanced = next(row for row in mine if row["enhancer"])
        assert enhanced["seed"] == 3 and "image_seed" not in enhanced
        # every image is enhanced with evaluate's own --seed
        result = run_cli("enhance", out / decoded["image_file"], "-o", tmp_path / f"{index}.png",
                         "--weights", tiny_enhancer, "--seed", "3", "--temperature", "1",
                         "--threads", "1")
        assert result.returncode == 0, result.stderr
        expected = read_image(out / enhanced["image_file"])
        assert np.array_equal(read_image(tmp_path / f"{index}.png"), expected)
        assert not np.array_equal(expected, read_image(out / decoded["image_file"]))
    # a folder of an earlier sampler is refused before any work, not mixed with new rows
    grid_file = out / "grid.json"
    grid = json.loads(grid_file.read_text())
    assert grid["latent"] == LATENT
    grid["latent"] = "position-keyed 2026-12-07"  # per-image derived seeds
    grid_file.write_text(json.dumps(grid))
    with pytest.raises(ConfigError, match="earlier latent sampler"):
        run_evaluation(grid_refs[:1], out, settings, progress=False, build_report=False)
