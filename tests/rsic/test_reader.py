"""`innrsic.rsic.reader`: rasterio-like window reads of a `.rsic` scene."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window as GdalWindow

from innrsic.api import compress
from innrsic.errors import TilingError, TruncatedError
from innrsic.raster.geotiff import open_source
from innrsic.raster.tiling import Window
from innrsic.rsic.coding import decompress_file
from innrsic.rsic.reader import RsicSource, open_rsic


def test_describes_the_scene_as_rasterio_describes_its_source(scene) -> None:
    with open_rsic(scene["rsic"]) as dataset, rasterio.open(scene["tif"]) as source:
        assert (dataset.width, dataset.height, dataset.count) == (448, 320, 3)
        assert dataset.crs == source.crs and dataset.transform == source.transform
        assert dataset.nodata == source.nodata == 0
        assert dataset.tiles.tile_width == 128 and len(dataset.tiles) == 12
        profile = dataset.profile
        assert profile["driver"] == "RSIC" and profile["blockxsize"] == 128
        for key in ("dtype", "width", "height", "count", "crs", "transform", "nodata"):
            assert profile[key] == source.profile[key], key
        assert dataset.codec_spec == "jpeg2000:bpp=0.4"


def test_window_equals_decompress_region_and_reads_only_its_tiles(
    scene, tiles_read: list[int], tmp_path: Path
) -> None:
    region = Window(100, 60, 250, 140)  # tile columns 0-2, rows 0-1
    with open_rsic(scene["rsic"]) as dataset:
        tiles_read.clear()
        samples = dataset.read(region)
        assert sorted(tiles_read) == dataset.tiles.indices(region) == [0, 1, 2, 4, 5, 6]
        same = dataset.read(GdalWindow(100, 60, 250, 140))  # rasterio's windows too
    decompress_file(scene["rsic"], tmp_path / "part.tif", region=region)
    with rasterio.open(tmp_path / "part.tif") as part:
        expected = part.read()
    assert samples.shape == (3, 140, 250) and samples.dtype == np.uint8
    assert np.array_equal(samples, expected) and np.array_equal(same, expected)


def test_masked_read_hides_exactly_the_nodata_pixels(scene, crop) -> None:
    with open_rsic(scene["rsic"]) as dataset:
        masked = dataset.read(masked=True)
        rgb, mask = dataset.decode(Window(0, 0, 448, 320))
    black = np.all(crop == 0, axis=2)
    assert np.array_equal(mask, black)
    assert np.array_equal(np.ma.getmaskarray(masked), np.broadcast_to(black, masked.shape))
    assert rgb.shape == (320, 448, 3) and rgb.dtype == np.uint8


def test_plain_image_without_nodata_or_georeferencing(crop, tmp_path: Path) -> None:
    path = tmp_path / "plain.rsic"
    path.write_bytes(compress(crop[:96, :80], "jpeg:quality=80"))
    with open_rsic(path) as dataset:
        assert dataset.crs is None and dataset.nodata is None and dataset.transform.is_identity
        assert not dataset.profile["tiled"] and len(dataset.tiles) == 1
        rgb, mask = dataset.decode()
        assert mask is None
        part = dataset.read(Window(5, 7, 30, 20))
        assert np.array_equal(part, rgb[7:27, 5:35].transpose(2, 0, 1))


def test_pickles_as_its_path(scene) -> None:
    with open_rsic(scene["rsic"]) as dataset, pickle.loads(pickle.dumps(dataset)) as clone:
        window = Window(0, 0, 40, 30)
        assert np.array_equal(clone.read(window), dataset.read(window))


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (Window(400, 0, 100, 10), "reaches outside"),
        (GdalWindow(0.5, 0, 10, 10), "whole pixels"),
        ((0, 0, 10, 10), "is not a Window"),
    ],
)
def test_bad_windows_are_refused(scene, window, message: str) -> None:
    with open_rsic(scene["rsic"]) as dataset, pytest.raises(TilingError, match=message):
        dataset.read(window)


def test_source_reads_as_the_decoded_geotiff_decoding_each_tile_once(
    scene, tiles_read: list[int]
) -> None:
    # the enhancer's reads: 80 px tiles on a 64 px stride, in raster order
    windows = [Window(x, y, min(80, 448 - x), min(80, 320 - y))
               for y in range(0, 320, 64) for x in range(0, 448, 64)]
    with open_rsic(scene["rsic"]) as dataset, open_source(scene["decoded"]) as decoded:
        source = RsicSource(dataset)
        tiles_read.clear()
        for window in windows:
            rgb, mask = source.read(window)
            expected, expected_mask = decoded.read(window)
            assert np.array_equal(rgb, expected) and np.array_equal(mask, expected_mask)
            assert len(source._tiles) <= 2 * dataset.tiles.columns  # rows passed are dropped
    assert sorted(tiles_read) == list(range(12))


def test_check_refuses_what_decompress_refuses(scene, tmp_path: Path) -> None:
    data = scene["rsic"].read_bytes()
    cut = tmp_path / "cut.rsic"
    cut.write_bytes(data[: len(data) - 100])  # the last tile is cut
    with open_rsic(cut) as dataset:
        dataset.check(Window(0, 0, 100, 100))  # its tile is whole
        with pytest.raises(TruncatedError, match="tile 11 of 12 is missing"):
            dataset.check(Window(400, 300, 10, 10))
        with pytest.raises(TruncatedError):
            dataset.check()  # the whole scene: the file checksum too
