"""A georeferenced DOTA crop with nodata, its `.rsic` (JPEG 2000, 128 px tiles) and decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from innrsic.codecs import make_codec
from innrsic.raster.image import read_image
from innrsic.rsic.coding import compress_file, decompress_file
from innrsic.rsic.container import ContainerReader

CRS = "EPSG:32633"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0)
CODEC = "jpeg2000:bpp=0.4"
TILE = 128


def write_geotiff(path: Path, image: np.ndarray, nodata: float | None = 0) -> Path:
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
        crs=CRS,
        transform=TRANSFORM,
        nodata=nodata,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    ) as dataset:
        dataset.write(image.transpose(2, 0, 1))
    return path


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
    """Paths: ``tif`` (the source GeoTIFF), ``rsic`` (it compressed), ``decoded`` (the .rsic
    decoded whole to a GeoTIFF, as ``innrsic decompress`` writes it)."""
    folder = tmp_path_factory.mktemp("scene")
    tif = write_geotiff(folder / "scene.tif", crop)
    rsic = folder / "scene.rsic"
    compress_file(tif, rsic, make_codec(CODEC), tile=TILE)
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
