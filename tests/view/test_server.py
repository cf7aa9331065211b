"""`innrsic view`'s HTTP side against a running server: the region endpoint equals `innrsic
decompress --region`, refusals come at once, 40 concurrent requests all succeed, a damaged
file gives errors and the server serves on."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from innrsic.view.scenes import MAX_REGION_PIXELS

from .conftest import MODEL, Viewer, png_pixels

REGION = (37, 45, 200, 150)


def query(region: tuple[int, ...], **more: object) -> str:
    fields = dict(zip("xywh", region, strict=True)) | more
    return "&".join(f"{key}={value}" for key, value in fields.items())


def cli_region(run_cli, source: Path, target: Path, *options: str) -> np.ndarray:
    done = run_cli("decompress", source, "-o", target, "--region", ",".join(map(str, REGION)),
                   *options, threads=2)
    assert done.returncode == 0, done.stderr
    return png_pixels(target.read_bytes())


def assert_close(served: np.ndarray, written: np.ndarray) -> None:
    assert served.shape == written.shape
    assert np.abs(served.astype(int) - written.astype(int)).max() <= 1


def test_page_files_and_models(viewer: Viewer) -> None:
    status, body, _ = viewer.get("")
    assert status == 200 and b"leaflet.js" in body
    status, body, _ = viewer.get("static/leaflet/leaflet.js")
    assert status == 200 and b"Leaflet 1.9.4" in body
    files = {item["name"]: item for item in json.loads(viewer.get("api/files")[1])}
    assert set(files) == {"scene.rsic", "damaged.rsic"}
    scene = files["scene.rsic"]
    assert (scene["width"], scene["height"], scene["codec"]) == (448, 320, "jpeg2000:bpp=0.4")
    assert scene["bpp"] > 0 and scene["file_bytes"] > 0 and "error" not in scene
    assert "checksum" in files["damaged.rsic"]["error"]
    models = json.loads(viewer.get("api/models")[1])
    assert models[0] == "auto" and MODEL in models


def test_region_equals_the_cli(viewer: Viewer, run_cli, tmp_path: Path) -> None:
    status, body, _ = viewer.get(f"api/region?file=scene.rsic&{query(REGION)}")
    assert status == 200
    written = cli_region(run_cli, viewer.files["scene.rsic"], tmp_path / "cli.png")
    assert_close(png_pixels(body), written)


@pytest.mark.slow
def test_enhanced_region_equals_the_cli(viewer: Viewer, run_cli, tmp_path: Path) -> None:
    settings = {"temperature": 1, "seed": 3}
    status, body, _ = viewer.get(
        f"api/region?file=scene.rsic&{query(REGION, enhance=MODEL, **settings)}")
    assert status == 200, body
    written = cli_region(run_cli, viewer.files["scene.rsic"], tmp_path / "cli.png",
                         "--enhance", MODEL, "--temperature", "1", "--seed", "3")
    assert_close(png_pixels(body), written)
    status, auto, _ = viewer.get(
        f"api/region?file=scene.rsic&{query(REGION, enhance='auto', **settings)}")
    assert status == 200 and np.array_equal(png_pixels(auto), png_pixels(body))
    plain = cli_region(run_cli, viewer.files["scene.rsic"], tmp_path / "plain.png")
    assert np.abs(plain.astype(int) - written.astype(int)).mean() > 1  # it did enhance


REFUSED = [
    ("api/region?file=../../etc/passwd&x=0&y=0&w=8&h=8", 404),
    ("api/region?file=%2Fetc%2Fpasswd&x=0&y=0&w=8&h=8", 404),
    ("api/region?file=SCENE_PATH&x=0&y=0&w=8&h=8", 404),
    ("api/region?file=other.rsic&x=0&y=0&w=8&h=8", 404),
    ("api/region?x=0&y=0&w=8&h=8", 404),
    ("api/tile/..%2F..%2Fetc%2Fpasswd/0/0/0.png", 404),
    ("api/tile/scene.rsic/0/0/0.png?enhance=%2Fetc%2Fpasswd", 404),
    ("static/..%2F..%2Fscenes.py", 404),
    (f"api/region?file=scene.rsic&x=0&y=0&w={MAX_REGION_PIXELS}&h={MAX_REGION_PIXELS}", 413),
    ("api/region?file=scene.rsic&x=0&y=0&w=449&h=8", 400),
    ("api/region?file=scene.rsic&x=0&y=0&w=0&h=8", 400),
    ("api/region?file=scene.rsic&x=a&y=0&w=8&h=8", 400),
    ("api/region?file=scene.rsic&x=0&y=0&w=8&h=8&temperature=1", 400),
    ("api/region?file=scene.rsic&x=0&y=0&w=8&h=8&enhance=auto&temperature=-1", 400),
    ("api/tile/scene.rsic/2/0/0.png", 404),  # past the native level (1)
    ("api/tile/scene.rsic/1/9/0.png", 404),  # off the scene
]


@pytest.mark.parametrize(("path", "status"), REFUSED)
def test_refused_at_once(viewer: Viewer, path: str, status: int) -> None:
    path = path.replace("SCENE_PATH", str(viewer.files["scene.rsic"]).replace("/", "%2F"))
    got, body, seconds = viewer.get(path)
    assert got == status, body
    assert seconds < 2
    if path.startswith("api/"):
        assert "error" in json.loads(body)


@pytest.mark.slow
def test_40_concurrent_requests(viewer: Viewer) -> None:
    paths = [f"api/region?file=scene.rsic&{query((8 * i, 4 * i, 96, 64))}" for i in range(20)]
    paths += [f"api/tile/scene.rsic/{tile}.png" for tile in ["0/0/0", "1/0/0", "1/1/0", "1/0/1",
                                                             "1/1/1"] * 2]
    paths += [f"api/tile/scene.rsic/1/{i % 2}/{i % 2}.png?enhance=auto&temperature=0.{i}"
              for i in range(10)]
    start = time.perf_counter()
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(viewer.get, paths))
    seconds = time.perf_counter() - start
    failed = [(path, status) for path, (status, _, _) in zip(paths, answers, strict=True)
              if status != 200]
    assert not failed
    print(f"40 concurrent requests: {seconds:.1f} s, server peak RSS "
          f"{viewer.peak_rss_mib():.0f} MiB")


def test_damaged_file_errors_and_the_server_serves_on(viewer: Viewer) -> None:
    status, body, _ = viewer.get("api/region?file=damaged.rsic&x=400&y=280&w=40&h=30")
    assert status == 500 and "checksum" in json.loads(body)["error"]
    status, body, _ = viewer.get("api/tile/damaged.rsic/1/1/1.png")
    assert status == 500 and "error" in json.loads(body)
    status, _, _ = viewer.get("api/tile/damaged.rsic/1/0/0.png")  # its intact tiles
    assert status == 200
    status, _, _ = viewer.get(f"api/region?file=scene.rsic&{query(REGION)}")
    assert status == 200 and viewer.process.poll() is None
