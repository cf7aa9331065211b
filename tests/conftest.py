"""Fixtures shared by the whole suite: where `../shared` is, real images from it, the CLI in a
subprocess (`run_cli`), torch threads, and a georeferenced scene with its `.rsic`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine

from innrsic.codecs import make_codec
from innrsic.enhancer import EnhancerConfig, INNEnhancer, save_enhancer
from innrsic.raster.image import read_image, write_image
from innrsic.rsic.coding import compress_file, decompress_file
from innrsic.rsic.container import ContainerReader


def shared_root() -> Path:
    """`$INNRSIC_SHARED`, else the `shared` folder beside the repository root."""
    override = os.environ.get("INNRSIC_SHARED")
    return Path(override) if override else Path(__file__).resolve().parents[1].parent / "shared"


def existing(path: Path) -> Path:
    assert path.exists(), f"test data missing: {path} (set INNRSIC_SHARED to the shared folder)"
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return existing(shared_root())


@pytest.fixture(scope="session")
def data_root(shared: Path) -> Path:
    return existing(shared / "data" / "ucmerced").parent


@pytest.fixture(scope="session")
def weights_dir(shared: Path) -> Path:
    """The LPIPS-squeeze backbone and other offline weights."""
    return existing(shared / "weights" / "squeeze.backbone.pth").parent


@pytest.fixture(scope="session")
def reference_dir(shared: Path) -> Path:
    """Checkpoints in the authors' layout and the outputs their code computes."""
    return existing(shared / "reference")


@pytest.fixture(scope="session")
def existing_path():
    """`existing` for test modules: asserts a path under the shared folder is there."""
    return existing


@pytest.fixture(scope="session")
def ucm_test_paths(shared: Path) -> list[Path]:
    """Three UC-M test-split images (indices 46-59) of different classes."""
    names = ["airplane/airplane50", "denseresidential/denseresidential47", "river/river52"]
    return [shared / "data" / "ucmerced" / f"{name}.png" for name in names]


@pytest.fixture(scope="session")
def ucm_image(ucm_test_paths: list[Path]) -> np.ndarray:
    return read_image(ucm_test_paths[0])


@pytest.fixture(scope="session")
def randomised_enhancer(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[EnhancerConfig], Path]:
    """Weights of an `INNEnhancer` of a config with every weight randomised (seed 0), so its
    output depends on z; one file per call."""

    def make(config: EnhancerConfig) -> Path:
        torch.manual_seed(0)
        net = INNEnhancer(config)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.add_(0.02 * torch.randn_like(parameter))
        path = tmp_path_factory.mktemp("enhancer") / "enhancer.safetensors"
        save_enhancer(net, path)
        return path

    return make


@pytest.fixture(scope="session")
def cli() -> list[str]:
    """The command prefix that runs the installed CLI in a subprocess."""
    return [sys.executable, "-m", "innrsic"]


def threads_environment(threads: int) -> dict[str, str]:
    """The environment for a subprocess that should use `threads` threads wherever it can
    (OpenMP threads that sleep rather than spin when idle: this machine is shared)."""
    count = str(threads)
    return {
        **os.environ,
        "OMP_NUM_THREADS": count,
        "OPJ_NUM_THREADS": count,
        "OMP_WAIT_POLICY": "PASSIVE",
    }


@pytest.fixture(scope="session")
def thread_env() -> Callable[[int], dict[str, str]]:
    """`threads_environment` for test modules: threads -> a subprocess's environment."""
    return threads_environment


@pytest.fixture(scope="session")
def run_cli(cli: list[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the CLI in a subprocess and waits: ``run_cli("info", path, "--json")``.

    Arguments are passed as ``str(arg)``; stdout and stderr are captured as text and the run
    may take 300 s. ``threads=N`` runs it in `threads_environment(N)`; other keywords (``cwd``,
    ``env``, ``timeout``, ``check``) go to `subprocess.run` and replace these defaults.
    """

    def run(
        *args: str | Path, threads: int | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        options: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 300}
        if threads is not None:
            options["env"] = threads_environment(threads)
        options.update(kwargs)
        return subprocess.run([*cli, *map(str, args)], **options)

    return run


@pytest.fixture
def restore_threads() -> Iterator[None]:
    """Puts torch's thread count back after a test that sets it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def crops(ucm_test_paths: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """128x128 crops of the UC-M test images, as PNG files (small, so the test is quick)."""
    folder = tmp_path_factory.mktemp("crops")
    paths = [folder / path.name for path in ucm_test_paths]
    for source, target in zip(ucm_test_paths, paths, strict=True):
        write_image(target, read_image(source)[64:192, 64:192])
    return paths


# --- a georeferenced scene (the `.rsic` reader, COG output, the xarray engine) ---------------

SCENE_CRS = "EPSG:32633"
SCENE_TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0)
SCENE_CODEC = "jpeg2000:bpp=0.4"
SCENE_TILE = 128


def write_scene_geotiff(path: Path, image: np.ndarray, nodata: float | None = 0) -> Path:
    """An HxWx3 uint8 image as a tiled GeoTIFF in UTM 33N at 0.5 m."""
    height, width = image.shape[:2]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs=SCENE_CRS,
        transform=SCENE_TRANSFORM,
        nodata=nodata,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    ) as dataset:
        dataset.write(image.transpose(2, 0, 1))
    return path


@pytest.fixture(scope="session")
def scene_geotiff() -> Callable[..., Path]:
    """`write_scene_geotiff` for test modules: (path, image, nodata=0) -> path."""
    return write_scene_geotiff


@pytest.fixture(scope="session")
def crop(shared: Path) -> np.ndarray:
    """320x448 of DOTA P0168 with a black corner and one black 128 px tile, as nodata."""
    image = read_image(shared / "data" / "dota" / "P0168.png")[:320, :448].copy()
    rows, cols = np.mgrid[:320, :448]
    image[cols + rows < 140] = 0
    image[:128, 384:] = 0
    return image


@pytest.fixture(scope="session")
def scene(crop: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths: ``tif`` (the source GeoTIFF of `crop`), ``rsic`` (it compressed, JPEG 2000 in
    128 px tiles), ``decoded`` (the .rsic decoded whole to a GeoTIFF, as ``innrsic
    decompress`` writes it)."""
    folder = tmp_path_factory.mktemp("scene")
    tif = write_scene_geotiff(folder / "scene.tif", crop)
    rsic = folder / "scene.rsic"
    compress_file(tif, rsic, make_codec(SCENE_CODEC), tile=SCENE_TILE)
    decoded = folder / "decoded.tif"
    decompress_file(rsic, decoded)
    return {"tif": tif, "rsic": rsic, "decoded": decoded}


@pytest.fixture
def tiles_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The indices of the container tiles read (each read tile is decoded) from now on."""
    seen: list[int] = []
    read_tile = ContainerReader.read_tile

    def counting(self: ContainerReader, index: int) -> bytes:
        seen.append(index)
        return read_tile(self, index)

    monkeypatch.setattr(ContainerReader, "read_tile", counting)
    return seen


@pytest.fixture(scope="session")
def other_temperature() -> Callable[[float], float]:
    """A temperature that is not a model's default: the realism end (1), or the fidelity end
    (0) for a model whose default is 1."""
    return lambda default: 0.0 if default == 1.0 else 1.0


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless Chromium the page tests drive (Debian's package; `make browser` installs it)."""
    found = shutil.which("chromium") or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if found is None:
        pytest.fail("headless Chromium is needed to check the HTML pages and was not found: "
                    "install it with `apt-get install chromium` (or `make browser`)")
    return found
