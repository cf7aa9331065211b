"""`innrsic.raster.cog`: Cloud-Optimized GeoTIFFs, each one checked by rio-cogeo's validator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from innrsic.errors import RasterFormatError
from innrsic.raster.cog import geotiff_to_cog, write_cog, write_cog_tiles
from innrsic.raster.geotiff import Georeference, RasterMetadata, restore_samples
from innrsic.raster.image import read_image
from innrsic.raster.tiling import TileGrid
from innrsic.rsic.reader import open_rsic

WKT_CRS = "EPSG:32633"


def assert_valid_cog(path: Path) -> None:
    valid, errors, warnings = cog_validate(path, strict=True)
    assert valid and not errors and not warnings, (errors, warnings)


@pytest.fixture(scope="module")
def large(shared: Path) -> tuple[np.ndarray, np.ndarray, RasterMetadata]:
    """1100x1300 of DOTA P0168 with a black nodata corner, georeferenced: big enough for
    two 512 px overview levels."""
    from rasterio.crs import CRS

    image = read_image(shared / "data" / "dota" / "P0168.png")[:1100, :1300].copy()
    rows, cols = np.mgrid[:1100, :1300]
    mask = cols + rows < 400
    image[mask] = 0
    georeference = Georeference(
        CRS.from_string(WKT_CRS).to_wkt(), (0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0), ()
    )
    return image, mask, RasterMetadata(nodata=0.0, georeference=georeference)


def test_image_becomes_a_valid_lossless_cog(large, tmp_path: Path) -> None:
    image, mask, metadata = large
    path = tmp_path / "scene.tif"
    write_cog(path, image, mask, metadata)
    assert_valid_cog(path)
    with rasterio.open(path) as cog:
        assert cog.profile["compress"] == "deflate" and cog.block_shapes[0] == (512, 512)
        assert cog.overviews(1) == [2, 4]
        assert cog.crs.to_epsg() == 32633 and tuple(cog.transform)[:6] == (
            0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0
        )
        assert cog.nodata == 0
        samples = cog.read()
    assert np.array_equal(samples, restore_samples(image, mask, metadata))  # lossless
    assert np.array_equal(np.all(samples == 0, axis=0), mask)  # nodata exact, both ways
    assert list(tmp_path.iterdir()) == [path]  # no scratch left behind


def test_rsic_tiles_stream_into_a_cog_equal_to_the_decoded_geotiff(scene, tmp_path: Path) -> None:
    path = tmp_path / "decoded.cog.tif"
    with open_rsic(scene["rsic"]) as dataset:
        tiles = ((window, *dataset.decode(window)) for window in dataset.tiles)
        write_cog_tiles(path, tiles, dataset.width, dataset.height, dataset.metadata)
    assert_valid_cog(path)
    with rasterio.open(path) as cog, rasterio.open(scene["decoded"]) as decoded:
        assert (cog.crs, cog.transform, cog.nodata) == (decoded.crs, decoded.transform, 0)
        assert np.array_equal(cog.read(), decoded.read())


def test_lossy_compression_and_geotiff_conversion(scene, tmp_path: Path) -> None:
    geotiff_to_cog(scene["decoded"], tmp_path / "jpeg.tif", compress="jpeg", quality=90)
    geotiff_to_cog(scene["decoded"], tmp_path / "zstd.tif", compress="zstd", level=9)
    for name, compression in [("jpeg.tif", "jpeg"), ("zstd.tif", "zstd")]:
        assert_valid_cog(tmp_path / name)
        with rasterio.open(tmp_path / name) as cog:
            assert cog.profile["compress"] == compression


def test_failure_leaves_nothing_behind(large, tmp_path: Path) -> None:
    image, mask, metadata = large
    target = tmp_path / "out.tif"
    target.write_bytes(b"old")

    def tiles():
        window = next(iter(TileGrid(1300, 1100, 512, 512)))
        yield window, image[window.slices], mask[window.slices]
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError, match="decoder died"):
        write_cog_tiles(target, tiles(), 1300, 1100, metadata)
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_bad_settings_are_refused(large, tmp_path: Path) -> None:
    image, mask, _ = large
    with pytest.raises(RasterFormatError, match="choose one of"):
        write_cog(tmp_path / "a.tif", image, compress="png")
    with pytest.raises(RasterFormatError, match="quality"):
        write_cog(tmp_path / "a.tif", image, quality=80)
    with pytest.raises(RasterFormatError, match="needs a nodata value"):
        write_cog(tmp_path / "a.tif", image, mask)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_cogs_for_decompress_and_enhance(scene, tmp_path: Path) -> None:
    from innrsic.cli import main

    decoded, enhanced = tmp_path / "decoded.tif", tmp_path / "enhanced.tif"
    assert main(["decompress", str(scene["rsic"]), "-o", str(decoded), "--format", "cog"]) == 0
    assert main(["enhance", str(scene["decoded"]), "-o", str(enhanced), "--format", "cog",
                 "--weights", "enhancer-jpeg2000-bpp0.4"]) == 0
    for path in (decoded, enhanced):
        assert_valid_cog(path)
    with rasterio.open(decoded) as cog, rasterio.open(scene["decoded"]) as plain:
        assert np.array_equal(cog.read(), plain.read())
        assert (cog.crs, cog.transform, cog.nodata) == (plain.crs, plain.transform, plain.nodata)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoded.tif", "enhanced.tif"]
    assert main(["decompress", str(scene["rsic"]), "-o", str(tmp_path / "x.png"),
                 "--format", "cog"]) == 2
    assert not (tmp_path / "x.png").exists()
