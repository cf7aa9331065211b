"""GeoTIFF in and out: georeferencing, nodata exactness, 16-bit and multispectral policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine
from rasterio.windows import Window as GdalWindow

from innrsic.codecs import make_codec
from innrsic.errors import RasterFormatError
from innrsic.raster.image import read_image
from innrsic.raster.tiling import Window
from innrsic.rsic.coding import compress_file, decompress_file
from innrsic.rsic.container import ContainerReader, unpack_tile_record

CRS = "EPSG:32633"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0)


def write_geotiff(path: Path, bands: np.ndarray, nodata=None, descriptions=None) -> Path:
    count, height, width = bands.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=bands.dtype.name,
        crs=CRS,
        transform=TRANSFORM,
        nodata=nodata,
        tiled=True,
        blockxsize=128,
        blockysize=128,
        compress="deflate",
    ) as dataset:
        dataset.write(bands)
        for band, text in enumerate(descriptions or [], start=1):
            dataset.set_band_description(band, text)
    return path


@pytest.fixture(scope="module")
def scene(shared: Path) -> np.ndarray:
    """A 320x448 crop of a real DOTA scene with a black (all-zero) border region."""
    image = read_image(shared / "data" / "dota" / "P0003.png")[:320, :448].copy()
    rows, cols = np.mgrid[:320, :448]
    image[cols + rows < 140] = 0  # a black corner, as in rotated DOTA scenes
    image[:, 320:][rows[:, 320:] < 128] = 0  # and one whole 128 px tile of nodata
    return image


def nodata_of(bands: np.ndarray, value) -> np.ndarray:
    return np.all(bands == value, axis=0)


def test_geotiff_round_trip_keeps_georeferencing_and_nodata(scene, tmp_path: Path) -> None:
    source = write_geotiff(
        tmp_path / "in.tif", scene.transpose(2, 0, 1), nodata=0, descriptions=["r", "g", "b"]
    )
    result = compress_file(source, tmp_path / "a.rsic", make_codec("jpeg:quality=40"), tile=128)
    assert result.tiles == 12
    with ContainerReader(tmp_path / "a.rsic") as reader:
        assert reader.metadata["nodata"] == 0
        assert reader.metadata["geo"]["transform"] == list(TRANSFORM)[:6]
        records = [unpack_tile_record(reader.read_tile(i)) for i in range(12)]
    assert [r.coded for r in records].count(False) == 1  # the all-nodata tile is not coded
    assert sum(len(r.mask) for r in records) < 500  # the masks are compact

    decompress_file(tmp_path / "a.rsic", tmp_path / "out.tif")
    with rasterio.open(source) as src, rasterio.open(tmp_path / "out.tif") as out:
        assert out.transform == src.transform
        assert out.crs == src.crs
        assert out.nodata == src.nodata == 0
        assert out.descriptions == ("r", "g", "b")
        assert (out.count, out.dtypes[0], out.width, out.height) == (3, "uint8", 448, 320)
        original, decoded = src.read(), out.read()
    assert np.array_equal(nodata_of(decoded, 0), nodata_of(original, 0))  # exact both ways
    valid = ~nodata_of(original, 0)
    assert np.abs(decoded.astype(int) - original)[:, valid].mean() < 8


def test_region_of_a_geotiff_is_georeferenced_at_its_corner(scene, tmp_path: Path) -> None:
    source = write_geotiff(tmp_path / "in.tif", scene.transpose(2, 0, 1), nodata=0)
    compress_file(source, tmp_path / "a.rsic", make_codec("jpeg:quality=40"), tile=128)
    region = Window(100, 60, 250, 200)
    decompress_file(tmp_path / "a.rsic", tmp_path / "full.tif")
    result = decompress_file(tmp_path / "a.rsic", tmp_path / "part.tif", region=region)
    assert result.tiles_decoded == 9
    with rasterio.open(source) as src, rasterio.open(tmp_path / "part.tif") as part:
        gdal_window = GdalWindow(100, 60, 250, 200)
        assert part.transform == src.transform @ Affine.translation(100, 60)
        assert part.crs == src.crs
        with rasterio.open(tmp_path / "full.tif") as full:
            assert np.array_equal(part.read(), full.read(window=gdal_window))


def test_png_nodata_zero_is_restored_exactly(shared: Path, tmp_path: Path) -> None:
    source = shared / "data" / "dota" / "P0075.png"  # 451x839, black borders
    original = read_image(source)
    black = np.all(original == 0, axis=2)
    assert 0.05 < black.mean() < 0.2
    codec = make_codec("jpeg:quality=30")
    compress_file(source, tmp_path / "a.rsic", codec, tile=256, nodata=0)
    compress_file(source, tmp_path / "plain.rsic", codec, tile=256)
    decompress_file(tmp_path / "a.rsic", tmp_path / "a.png")
    decompress_file(tmp_path / "plain.rsic", tmp_path / "plain.png")
    decoded, plain = read_image(tmp_path / "a.png"), read_image(tmp_path / "plain.png")
    assert np.array_equal(np.all(decoded == 0, axis=2), black)
    assert not np.array_equal(np.all(plain == 0, axis=2), black)  # without --nodata: lossy


@pytest.fixture(scope="module")
def sixteen_bit(scene) -> np.ndarray:
    """12-bit-range samples in uint16, from the real crop (nodata = 0 where it is black)."""
    noise = np.random.default_rng(0).integers(0, 16, scene.shape)
    values = (scene.astype(np.uint16) * 16 + noise).astype(np.uint16)
    values[np.all(scene == 0, axis=2)] = 0
    return values.transpose(2, 0, 1)


def test_16_bit_without_a_mapping_is_refused(sixteen_bit, tmp_path: Path) -> None:
    source = write_geotiff(tmp_path / "in16.tif", sixteen_bit)
    with pytest.raises(RasterFormatError, match=r"uint16.*--scale"):
        compress_file(source, tmp_path / "a.rsic", make_codec("jpeg"))
    assert not (tmp_path / "a.rsic").exists()


@pytest.mark.parametrize("scale", ["auto", (0.0, 4095.0)])
def test_16_bit_with_scaling_restores_the_range(sixteen_bit, tmp_path: Path, scale) -> None:
    source = write_geotiff(tmp_path / "in16.tif", sixteen_bit, nodata=0)
    codec = make_codec("jpeg:quality=95")
    compress_file(source, tmp_path / "a.rsic", codec, tile=128, scale=scale)
    with ContainerReader(tmp_path / "a.rsic") as reader:
        low, high = reader.metadata["samples"]["scale"]
        assert reader.metadata["samples"]["dtype"] == "uint16"
    assert low <= 16 and 4000 <= high <= 4095
    decompress_file(tmp_path / "a.rsic", tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.dtypes == ("uint16",) * 3 and out.nodata == 0
        decoded = out.read().astype(int)
    original = sixteen_bit.astype(int)
    assert np.array_equal(nodata_of(decoded, 0), nodata_of(original, 0))
    valid = ~nodata_of(original, 0)
    step = (high - low) / 255  # one 8-bit level in source units
    error = np.abs(decoded - original)[:, valid]
    assert error.mean() < 2.5 * step
    assert decoded.max() > 3000  # the range came back, not 8-bit values
    with pytest.raises(RasterFormatError, match=r"\.tif"):
        decompress_file(tmp_path / "a.rsic", tmp_path / "out.png")


def test_multispectral_needs_a_band_choice(sixteen_bit, tmp_path: Path) -> None:
    nir = (sixteen_bit[:1] // 2 + 100).astype(np.uint16)
    bands = np.concatenate([sixteen_bit[::-1], nir])  # stored B, G, R, NIR
    source = write_geotiff(tmp_path / "ms.tif", bands, descriptions=["blue", "green", "red", "nir"])
    codec = make_codec("jpeg:quality=90")
    with pytest.raises(RasterFormatError, match=r"4 bands.*--bands"):
        compress_file(source, tmp_path / "a.rsic", codec, scale="auto")
    with pytest.raises(RasterFormatError, match="one or three"):
        compress_file(source, tmp_path / "a.rsic", codec, bands=(1, 2), scale="auto")
    compress_file(source, tmp_path / "a.rsic", codec, bands=(3, 2, 1), scale=(0, 4095))
    decompress_file(tmp_path / "a.rsic", tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.descriptions == ("red", "green", "blue") and out.count == 3
        decoded = out.read().astype(int)
    assert np.abs(decoded - sixteen_bit.astype(int)).mean() < 2.5 * 4095 / 255


def test_single_band_comes_back_as_one_band(scene, tmp_path: Path) -> None:
    grey = scene[..., 1][None]
    source = write_geotiff(tmp_path / "grey.tif", grey)
    compress_file(source, tmp_path / "a.rsic", make_codec("jpeg:quality=80"))
    decompress_file(tmp_path / "a.rsic", tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as out:
        assert out.count == 1
        assert np.abs(out.read().astype(int) - grey).mean() < 4


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_no_valid_pixel_is_masked_as_nodata_after_decoding_or_enhancing(
    shared: Path, tmp_path: Path
) -> None:
    from innrsic.enhancer import EnhancerConfig, INNEnhancer
    from innrsic.enhancer.apply import enhance_file
    from innrsic.enhancer.settings import EnhanceSettings

    png = shared / "data" / "dota" / "P0075.png"  # black borders, dark shadows
    scene = read_image(png)
    source = write_geotiff(tmp_path / "in.tif", scene.transpose(2, 0, 1), nodata=0)
    codec = make_codec("jpeg2000:bpp=0.3")
    compress_file(source, tmp_path / "a.rsic", codec)
    compress_file(png, tmp_path / "plain.rsic", codec)  # no nodata value: raw decoded samples
    decompress_file(tmp_path / "plain.rsic", tmp_path / "plain.tif")
    with rasterio.open(tmp_path / "plain.tif") as plain:
        valid = ~nodata_of(scene.transpose(2, 0, 1), 0)
        assert ((plain.read() == 0) & valid).sum() > 100  # the codec does write such zeros
    decompress_file(tmp_path / "a.rsic", tmp_path / "out.tif")
    enhance_file(tmp_path / "out.tif", tmp_path / "enhanced.tif",
                 INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)),
                 EnhanceSettings(0.0))
    for name in ("out.tif", "enhanced.tif"):
        with rasterio.open(tmp_path / name) as out:
            assert out.nodata == 0
            masks = out.read_masks()
        assert (masks[:, valid] == 255).all(), name
        assert (masks[:, ~valid] == 0).all(), name
