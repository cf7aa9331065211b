"""The demo preset on a folder of images: rows, tables and the report."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from innrsic.evaluation.demo import run_demo
from innrsic.pretrained import installed_models


@pytest.mark.slow
def test_demo_on_a_folder_writes_report(tmp_path: Path, ucm_test_paths) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for path in ucm_test_paths[:2]:
        shutil.copy(path, data / path.name)
    out = tmp_path / "out"
    rows = run_demo(data, out, rates=(0.3, 0.6), codecs=("jpeg2000", "heif"), workers=2)
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
    with open(out / "enhanced.csv") as handle:
        enhanced = list(csv.DictReader(handle))
    assert sorted({r["model"] for r in enhanced}) == [m.name for m in models]
    assert len(enhanced) == 2 * len(models)
    for row in enhanced:
        assert row["status"] == "ok"
        assert 15 < float(row["psnr_enhanced"]) < 50
    assert "Shipped enhancers: decoded vs enhanced" in page
    assert len(list((out / "crops").rglob("*-enhanced.png"))) == 2 * len(models)
