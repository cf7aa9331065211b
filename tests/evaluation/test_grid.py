"""End-to-end evaluation grids on real UC-M test images: tables, plots, HTML, caching, resuming,
sharding, hand checks, missing weights, and the report in headless Chromium."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from innrsic.cli import main
from innrsic.codecs import make_codec
from innrsic.data.splits import ImageRef
from innrsic.enhancer import load_enhancer
from innrsic.enhancer.apply import enhance_image
from innrsic.evaluation import EvaluationResult, EvaluationSettings, run_evaluation
from innrsic.evaluation.store import read_rows
from innrsic.metrics import bits_per_pixel, ms_ssim, psnr
from innrsic.metrics.perceptual import lpips_distance
from innrsic.raster.image import read_image
from innrsic.rsic.container import read_container

pytestmark = pytest.mark.slow

SPECS = ("jpeg2000:bpp=0.3", "jpeg2000:bpp=0.6", "heif:bpp=0.3", "heif:bpp=0.6")
SEED = 3


@dataclass
class Grid:
    out: Path
    settings: EvaluationSettings
    result: EvaluationResult
    refs: list[ImageRef]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def hermetic_hub(tmp_path_factory: pytest.TempPathFactory):
    """No torch hub cache and no $INNRSIC_WEIGHTS_DIR: only the weights a test passes count."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        patch.delenv("INNRSIC_WEIGHTS_DIR", raising=False)
        patch.delenv("XDG_CACHE_HOME", raising=False)
        yield


@pytest.fixture(scope="module")
def grid(hermetic_hub, tmp_path_factory, grid_refs, tiny_enhancer, weights_dir) -> Grid:
    out = tmp_path_factory.mktemp("grid") / "out"
    settings = EvaluationSettings(
        codecs=SPECS, enhancers=(tiny_enhancer,), temperatures=(0.0, 1.0), seed=SEED,
        weights_dir=weights_dir, data_label="3 UC-M test images",
    )
    result = run_evaluation(grid_refs, out, settings, progress=False)
    return Grid(out, settings, result, grid_refs)


def _copy(grid: Grid, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(grid.out, target)
    return target


def test_grid_writes_rows_summary_bd_plots_and_html(grid: Grid) -> None:
    result = grid.result
    assert (result.rows_computed, result.bitstreams_encoded, result.images_enhanced) == (36, 12, 24)
    assert result.ok and result.report_written and result.missing_rows == 0

    rows = read_csv(grid.out / "rows.csv")
    assert len(rows) == 3 * 4 * 3 and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        assert 0 < float(row["lpips_squeeze"]) < 1 and 0 < float(row["ms_ssim"]) <= 1
        if not row["enhancer"]:
            target = float(row["rate"].removeprefix("bpp="))
            assert 0.8 * target < float(row["payload_bpp"]) <= target
            assert 20 < float(row["psnr"]) < 45
    assert "lpips_alex" not in rows[0]

    summary = json.loads((grid.out / "summary.json").read_text())
    assert summary["metrics"]["lpips_squeeze"].startswith("computed with ")
    assert summary["metrics"]["lpips_alex"].startswith(
        "unavailable: alexnet-owt-7be5be79.pth not found in "
    )
    combos = summary["combinations"]
    assert len(combos) == 12 and all(c["n"] == 3 for c in combos)
    for combo in combos:
        for metric in ("payload_bpp", "psnr", "ms_ssim", "lpips_squeeze"):
            stat = combo["metrics"][metric]
            assert stat["n"] == 3 and stat["ci_low"] < stat["mean"] < stat["ci_high"]
        assert combo["metrics"]["lpips_vgg"].startswith("unavailable: vgg16-397923af.pth")
    first = combos[0]
    assert (first["codec"], first["enhancer"]) == ("jpeg2000:bpp=0.3", "")
    psnrs = [float(r["psnr"]) for r in rows if r["codec"] == first["codec"] and not r["enhancer"]]
    assert first["metrics"]["psnr"]["mean"] == pytest.approx(sum(psnrs) / 3)
    summary_csv = read_csv(grid.out / "summary.csv")
    assert len(summary_csv) == 12
    assert float(summary_csv[0]["psnr_mean"]) == pytest.approx(sum(psnrs) / 3)

    curves = {c["label"]: c["points"] for c in summary["curves"]}
    assert len(curves) == 6 and curves["jpeg2000"] == ["jpeg2000:bpp=0.3", "jpeg2000:bpp=0.6"]
    bd = {row["curve"]: row for row in read_csv(grid.out / "bd.csv")}
    assert len(bd) == 6 and {row["anchor"] for row in bd.values()} == {"jpeg2000"}
    assert float(bd["jpeg2000"]["bd_rate_psnr_percent"]) == 0.0
    assert bd["heif"]["fit_test"] == "pchip"
    assert -60 < float(bd["heif"]["bd_rate_psnr_percent"]) < 60
    assert -3 < float(bd["heif"]["bd_psnr"]) < 3
    enhanced = [row for label, row in bd.items() if " T=" in label]
    assert len(enhanced) == 4
    for row in enhanced:  # a random enhancer lands far below the anchor's PSNR range
        assert row["bd_rate_psnr_percent"].startswith("n/a: the curves do not overlap in quality")
        assert float(row["bd_psnr"]) < -10
    assert summary["bd"]["anchor"] == "jpeg2000"

    for name in ("rate_distortion.png", "rate_perception.png"):
        with Image.open(grid.out / name) as plot:
            assert plot.width > 500 and plot.height > 300
    page = (grid.out / "index.html").read_text()
    assert 'src="rate_distortion.png"' in page and 'src="rate_perception.png"' in page
    assert "unavailable: alexnet-owt-7be5be79.pth not found in" in page
    assert "Bjøntegaard deltas against jpeg2000" in page
    crops = re.findall(r'src="(crops/[^"]+)"', page)
    # 2 images x 4 specs x (ground truth, decoded, enhanced T=0, enhanced T=1)
    assert len(crops) == 2 * 4 * 4
    for src in crops:
        with Image.open(grid.out / src) as crop:
            assert crop.size == (128, 128)


def test_enhanced_rows_report_the_codec_rate(grid: Grid) -> None:
    rows = read_csv(grid.out / "rows.csv")
    decoded = {(r["image"], r["codec"]): r for r in rows if not r["enhancer"]}
    enhanced = [r for r in rows if r["enhancer"]]
    assert len(enhanced) == 24
    for row in enhanced:
        base = decoded[(row["image"], row["codec"])]
        for column in ("payload_bytes", "file_bytes", "payload_bpp", "file_bpp", "bitstream"):
            assert row[column] == base[column]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file()}


def test_rerun_computes_nothing(grid: Grid) -> None:
    before = {**_snapshot(grid.out / "cache"), **_snapshot(grid.out / "rows")}
    again = run_evaluation(grid.refs, grid.out, grid.settings, progress=False)
    assert (again.rows_computed, again.rows_updated, again.rows_reused) == (0, 0, 36)
    assert (again.bitstreams_encoded, again.images_decoded, again.images_enhanced) == (0, 0, 0)
    assert {**_snapshot(grid.out / "cache"), **_snapshot(grid.out / "rows")} == before


def test_added_codec_and_temperature_compute_only_the_new_combinations(
    grid: Grid, tmp_path: Path
) -> None:
    out = _copy(grid, tmp_path)
    old = read_rows(grid.out).rows
    more_codecs = replace(grid.settings, codecs=(*SPECS, "jpeg2000:bpp=0.45"))
    added = run_evaluation(grid.refs, out, more_codecs, progress=False)
    assert (added.rows_computed, added.rows_reused) == (3 * 3, 36)
    assert (added.bitstreams_encoded, added.images_enhanced) == (3, 6)
    merged = read_rows(out).rows
    assert all(merged[key] == row for key, row in old.items())
    warmer = run_evaluation(grid.refs, out, replace(more_codecs, codecs=(SPECS[0],),
                                                    temperatures=(0.0, 1.0, 0.5)), progress=False)
    assert (warmer.rows_computed, warmer.rows_reused, warmer.bitstreams_encoded) == (3, 9, 0)
    assert warmer.images_enhanced == 3 and warmer.images_decoded == 0
    bd = {row["curve"]: row for row in read_csv(out / "bd.csv")}
    assert len(bd) == 2 * 3 + 1 and "jpeg2000 + tiny (" in "".join(bd)
    assert any(label.endswith("T=0.5") for label in bd)
    summary = json.loads((out / "summary.json").read_text())
    jpeg2000 = next(c for c in summary["curves"] if c["label"] == "jpeg2000")
    assert jpeg2000["points"] == ["jpeg2000:bpp=0.3", "jpeg2000:bpp=0.45", "jpeg2000:bpp=0.6"]


def test_an_interrupted_run_resumes_from_its_rows_and_cache(grid: Grid, tmp_path: Path) -> None:
    out = _copy(grid, tmp_path)
    (row_file,) = (out / "rows").glob("*.jsonl")
    lines = row_file.read_text().splitlines(keepends=True)
    row_file.write_text("".join(lines[:20]) + lines[20][: len(lines[20]) // 2])  # killed mid-line
    resumed = run_evaluation(grid.refs, out, grid.settings, progress=False)
    assert (resumed.rows_computed, resumed.rows_reused) == (16, 20)
    assert (resumed.bitstreams_encoded, resumed.images_enhanced) == (0, 0)
    assert read_rows(out).rows == read_rows(grid.out).rows
    assert all(line.endswith("\n") for line in row_file.read_text().splitlines(keepends=True))


def test_hand_check_of_two_images(grid: Grid, weights_dir: Path, tiny_enhancer: Path) -> None:
    rows = read_rows(grid.out).rows
    net = load_enhancer(tiny_enhancer)
    for ref, codec in ((grid.refs[0], "heif:bpp=0.3"), (grid.refs[2], "jpeg2000:bpp=0.6")):
        gt = ref.load()
        height, width = gt.shape[:2]
        row = rows[(ref.name, codec, "", None, None)]
        container = read_container((grid.out / row["bitstream"]).read_bytes())
        assert container.codec_spec == codec
        assert row["payload_bytes"] == container.payload_size
        assert row["payload_bpp"] == 8 * container.payload_size / (height * width)
        file_size = (grid.out / row["bitstream"]).stat().st_size
        assert row["file_bpp"] == bits_per_pixel(file_size, height, width)
        decoded = read_image(grid.out / row["image_file"])
        np.testing.assert_array_equal(decoded, make_codec(codec).decode(container.payload))
        mse = np.mean((gt.astype(np.float64) - decoded) ** 2)
        assert row["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
        assert row["psnr"] == pytest.approx(psnr(gt, decoded), rel=1e-12)
        assert row["ms_ssim"] == pytest.approx(ms_ssim(gt, decoded), rel=1e-9)
        assert row["lpips_squeeze"] == pytest.approx(
            lpips_distance(gt, decoded, weights_dir), rel=1e-4
        )

        enhancer_id = next(k[2] for k in rows if k[2])
        sampled = rows[(ref.name, codec, enhancer_id, 1.0, SEED)]
        assert "image_seed" not in sampled
        enhanced = read_image(grid.out / sampled["image_file"])
        # the position-keyed latent of `innrsic enhance`, at the run's seed
        again = enhance_image(decoded, net, 1.0, SEED)
        assert np.array_equal(again, enhanced)
        assert sampled["psnr"] == pytest.approx(psnr(gt, enhanced), rel=1e-12)
        assert sampled["lpips_squeeze"] == pytest.approx(
            lpips_distance(gt, enhanced, weights_dir), rel=1e-4
        )
        assert sampled["payload_bpp"] == row["payload_bpp"]


def test_sharded_runs_merge_to_the_rows_of_an_unsharded_run(
    tmp_path: Path, data_root: Path, tiny_enhancer: Path, weights_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["evaluate", "--data", "ucmerced-test", "--data-root", str(data_root), "--limit",
              "3", "--codec", "jpeg2000:bpp=0.3", "--enhancer",
              str(tiny_enhancer), "--temperature", "1", "--seed", "5", "--weights-dir",
              str(weights_dir), "--control-images", "2", "--no-progress"]  # controls: default on
    full, sharded = tmp_path / "full", tmp_path / "sharded"
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main([*common, "--out", str(full)]) == 0
    assert main([*common, "--out", str(sharded), "--shard", "0/2"]) == 0
    assert "report not written: 4 rows of other shards missing" in capsys.readouterr().out
    assert not (sharded / "index.html").exists()
    monkeypatch.setenv("RANK", "1")  # as torchrun sets them
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main([*common, "--out", str(sharded)]) == 0
    assert (sharded / "index.html").exists()  # written by the shard that completed the grid
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    files = sorted(p.name for p in (sharded / "rows").glob("*.jsonl"))
    assert files == ["shard-0000-of-0002.jsonl", "shard-0001-of-0002.jsonl"]
    # per image: decoded, two controls, one enhanced
    assert [len(p.read_text().splitlines()) for p in sorted((sharded / "rows").glob("*"))] == [8, 4]
    (sharded / "index.html").unlink()
    assert main(["evaluate", "--out", str(sharded), "--report-only"]) == 0
    assert (sharded / "index.html").exists()
    assert_same_results(sharded, full, enhanced_images=3)


def assert_same_results(out: Path, expected: Path, enhanced_images: int) -> None:
    """`out` holds the rows, tables and enhanced images of `expected`."""
    assert read_rows(out).rows == read_rows(expected).rows
    for name in ("rows.csv", "summary.csv", "bd.csv", "controls.json"):
        assert (out / name).read_bytes() == (expected / name).read_bytes(), name
    enhanced = sorted((expected / "cache" / "enhanced").rglob("*.png"))
    assert len(enhanced) == enhanced_images
    for path in enhanced:
        twin = out / path.relative_to(expected)
        np.testing.assert_array_equal(read_image(path), read_image(twin))


def test_evaluate_on_a_cluster_gives_the_rows_of_a_serial_run(
    tmp_path: Path, data_root: Path, tiny_enhancer: Path, weights_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """`evaluate --scheduler` on a LocalCluster of two worker processes runs one shard per
    worker and writes the report here: the rows, tables and images of `--workers 1`."""
    from distributed import Client, LocalCluster

    common = ["evaluate", "--data", "ucmerced-test", "--data-root", str(data_root), "--limit",
              "3", "--codec", "jpeg2000:bpp=0.3", "--enhancer", str(tiny_enhancer),
              "--temperature", "1", "--seed", "5", "--weights-dir", str(weights_dir),
              "--control-images", "2", "--no-progress"]
    serial, clustered = tmp_path / "serial", tmp_path / "clustered"
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main([*common, "--out", str(serial), "--workers", "1"]) == 0
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        env={"OMP_NUM_THREADS": "1"},
    ) as cluster, Client(cluster):
        address = cluster.scheduler_address
        assert main([*common, "--out", str(clustered), "--scheduler", address]) == 0
    assert f"wrote {clustered / 'index.html'}" in capsys.readouterr().out
    files = sorted(p.name for p in (clustered / "rows").glob("*.jsonl"))
    assert files == ["shard-0000-of-0002.jsonl", "shard-0001-of-0002.jsonl"]
    assert_same_results(clustered, serial, enhanced_images=3)


def test_missing_weights_are_reported_then_filled_in(
    tmp_path: Path, grid_refs: list[ImageRef], no_hub_weights: Path, weights_dir: Path
) -> None:
    empty = tmp_path / "no-weights"  # a weights folder that does not exist
    out = tmp_path / "out"
    settings = EvaluationSettings(codecs=("jpeg2000:bpp=0.3",), weights_dir=empty)
    first = run_evaluation(grid_refs[:1], out, settings, progress=False)
    assert first.rows_computed == 1
    expected = ("unavailable: SqueezeNet 1.1 backbone weights "
                f"{empty}: no such file or folder")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["lpips_squeeze"] == expected
    assert summary["combinations"][0]["metrics"]["lpips_squeeze"] == expected
    assert summary["metrics"]["lpips_alex"] == (
        f"unavailable: alexnet-owt-7be5be79.pth not found in {empty}, {no_hub_weights}"
    )
    assert "lpips_squeeze" not in read_csv(out / "rows.csv")[0]
    assert html.escape(expected) in (out / "index.html").read_text()
    assert (out / "rate_perception.png").exists()  # NIQE and band error need no weights

    filled = run_evaluation(grid_refs[:1], out, EvaluationSettings(
        codecs=("jpeg2000:bpp=0.3",), weights_dir=weights_dir), progress=False)
    assert (filled.rows_computed, filled.rows_updated, filled.bitstreams_encoded) == (0, 1, 0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["lpips_squeeze"].startswith("computed with ")
    assert 0 < float(read_csv(out / "rows.csv")[0]["lpips_squeeze"]) < 1


def test_report_only_cli_anchor_and_errors(
    grid: Grid, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _copy(grid, tmp_path)
    assert main(["evaluate", "--out", str(out), "--report-only", "--anchor", "hevc:bpp=0.3"]) == 0
    bd = {row["curve"]: row for row in read_csv(out / "bd.csv")}
    assert {row["anchor"] for row in bd.values()} == {"heif"}
    assert float(bd["heif"]["bd_rate_psnr_percent"]) == 0.0
    # Same overlap, same fits: swapping anchor and test inverts the rate ratio exactly.
    heif_vs_jpeg2000 = float(read_csv(grid.out / "bd.csv")[3]["bd_rate_psnr_percent"])
    jpeg2000_vs_heif = float(bd["jpeg2000"]["bd_rate_psnr_percent"])
    assert (1 + heif_vs_jpeg2000 / 100) * (1 + jpeg2000_vs_heif / 100) == pytest.approx(1.0)
    capsys.readouterr()
    assert main(["evaluate", "--out", str(out), "--report-only", "--anchor", "webp"]) == 2
    assert "codec families present: jpeg2000, heif" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(tmp_path / "empty"), "--report-only"]) == 2
    assert "no result rows" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(out), "--codec", "jpeg"]) == 2
    assert "--data and --codec are required" in capsys.readouterr().err


# Tall enough for the claims and tables above the crops (the page grew with the controls).
SCREEN_HEIGHT = 8000


def _run_chromium(chromium: str, profile: Path, *args: str) -> str:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
               "--force-device-scale-factor=1", f"--window-size=1280,{SCREEN_HEIGHT}",
               "--virtual-time-budget=10000", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var found = [];
  for (var img of document.images) {
    var box = img.getBoundingClientRect();
    found.push({src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth,
                x: box.left + window.scrollX, y: box.top + window.scrollY,
                w: box.width, h: box.height});
  }
  var out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def test_report_renders_in_headless_chromium(grid: Grid, tmp_path: Path, chromium: str) -> None:
    page = (grid.out / "index.html").read_text()
    probe = grid.out / "image-check.html"  # beside index.html so relative links resolve
    probe.write_text(page.replace("</body>", IMAGE_CHECK + "</body>"))
    try:
        dom = _run_chromium(chromium, tmp_path / "profile1", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    match = re.search(r'<pre id="image-check">(.*?)</pre>', dom, re.S)
    assert match, "the check script did not run: " + dom[-500:]
    images = json.loads(html.unescape(match[1]))
    assert len(images) == 3 + 2 * 4 * 4  # perception-distortion, rate plots; crops
    broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"

    shot = tmp_path / "report.png"
    _run_chromium(chromium, tmp_path / "profile2", f"--screenshot={shot}",
                  (grid.out / "index.html").as_uri())
    with Image.open(shot) as screenshot:
        pixels = np.asarray(screenshot.convert("RGB")).astype(float)
    assert pixels.shape[:2] == (SCREEN_HEIGHT, 1280)
    plots = [i for i in images if i["src"].endswith(".png") and not i["src"].startswith("crops")]
    first_crop = next(i for i in images if i["src"].startswith("crops"))
    for item in [*plots, first_crop]:
        top, left = int(item["y"]), int(item["x"])
        region = pixels[top : top + int(item["h"]), left : left + int(item["w"])]
        assert region.size and top + item["h"] <= SCREEN_HEIGHT, (
            f"{item['src']} outside the screenshot"
        )
        not_white = np.mean(region.min(axis=2) < 200)
        assert region.std() > 10 and not_white > 0.01, f"{item['src']} renders blank"
