"""Tiled enhancement: no seams, no dependence on the tile size, files in and out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import Affine
from torch import nn

from innrsic.codecs import make_codec
from innrsic.enhancer import EnhancerConfig, INNEnhancer, load_enhancer, save_enhancer
from innrsic.enhancer.apply import (
    decompress_enhanced,
    enhance_array,
    enhance_file,
    enhance_image,
    latent_noise,
)
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.raster.image import read_image, write_image
from innrsic.raster.tiling import BlendGrid, TilingError, Window, seam_ratio
from innrsic.rsic.coding import compress_file


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiles are small ops; on 2 busy cores, 2 threads spend most time waiting on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def net() -> INNEnhancer:
    """The small random enhancer, made to behave like a trained one where tiling is concerned.

    A fresh `INNEnhancer` has zero output convs (every coupling is the identity), so its
    output at a pixel depends on that pixel alone and tiling could never show. Here every conv
    is random (Xavier, gain 0.3), so the output depends on a neighbourhood of tens of pixels,
    and the colour matrices are set so the output stays close to the input plus texture
    (``x = y + (mu(y) + z * sigma(y)) / 10`` before the couplings).
    """
    torch.manual_seed(0)
    model = INNEnhancer(EnhancerConfig(blocks=2, growth=8, gaussian_growth=8)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight, gain=0.3)
                nn.init.zeros_(module.bias)
        model.expansion.matrices.copy_(torch.stack([torch.eye(3), 10 * torch.eye(3)]))
    return model


@pytest.fixture(scope="module")
def crop(shared: Path) -> np.ndarray:
    return read_image(shared / "data" / "dota" / "P0168.png")[256:768, 512:1280].copy()


@pytest.fixture(scope="module")
def whole(net, crop) -> np.ndarray:
    return enhance_image(crop, net, seed=3, tile=0)


def test_latent_depends_only_on_seed_and_position() -> None:
    big = latent_noise(Window(0, 0, 200, 150), 3, seed=7)
    assert np.array_equal(latent_noise(Window(37, 61, 100, 70), 3, seed=7), big[:, 61:131, 37:137])
    assert not np.array_equal(latent_noise(Window(0, 0, 200, 150), 3, seed=8), big)
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02


def test_tiled_enhancement_has_no_seams(net, crop, whole) -> None:
    height, width = crop.shape[:2]
    for tile, overlap in [(128, 16), (192, 32)]:
        out = enhance_image(crop, net, seed=3, tile=tile, overlap=overlap)
        xs, ys = BlendGrid(width, height, tile, overlap).seams()
        assert abs(seam_ratio(out, xs, ys) - 1) < 0.05
        assert abs(seam_ratio(out, xs, ys) - seam_ratio(whole, xs, ys)) < 0.01
    # The check can fail: the same tiles without overlap show their edges.
    naive = enhance_image(crop, net, seed=3, tile=128, overlap=0)
    assert abs(seam_ratio(naive, *BlendGrid(width, height, 128, 0).seams()) - 1) > 0.05


@pytest.mark.slow
def test_result_does_not_depend_on_the_tile_size(net, crop, whole) -> None:
    for tile, overlap in [(128, 16), (256, 32)]:
        diff = np.abs(
            enhance_image(crop, net, seed=3, tile=tile, overlap=overlap) - whole.astype(int)
        )
        assert diff.mean() < 0.05 and diff.max() <= 3
    naive = np.abs(enhance_image(crop, net, seed=3, tile=128, overlap=0) - whole.astype(int))
    assert naive.mean() > 0.3
    assert not np.array_equal(enhance_image(crop, net, seed=4, tile=0), whole)


def test_bad_settings_are_refused(net, crop) -> None:
    with pytest.raises(TilingError, match="twice the overlap"):
        enhance_image(crop, net, tile=64, overlap=48)
    with pytest.raises(TilingError, match="even"):
        enhance_image(crop, net, tile=128, overlap=15)


def test_enhance_geotiff_region_with_nodata(net, crop, whole, tmp_path: Path) -> None:
    image = crop.copy()
    image[:100, :150] = 0  # nodata corner
    transform = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4100000.0)
    source = tmp_path / "in.tif"
    with rasterio.open(
        source,
        "w",
        driver="GTiff",
        width=768,
        height=512,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=transform,
        nodata=0,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as dataset:
        dataset.write(image.transpose(2, 0, 1))
    settings = EnhanceSettings(seed=3, tile=128, overlap=16)
    result = enhance_file(source, tmp_path / "full.tif", net, settings)
    assert (result.width, result.height, result.tiles) == (768, 512, 24)
    region = Window(51, 33, 400, 300)
    enhance_file(source, tmp_path / "part.tif", net, settings, region=region)
    with rasterio.open(tmp_path / "full.tif") as full, rasterio.open(tmp_path / "part.tif") as part:
        assert full.transform == transform and full.nodata == 0 and full.crs.to_epsg() == 32633
        assert part.transform == transform @ Affine.translation(51, 33)
        enhanced, piece = full.read().transpose(1, 2, 0), part.read().transpose(1, 2, 0)
    black = np.all(image == 0, axis=2)
    assert np.array_equal(np.all(enhanced == 0, axis=2), black)  # nodata exact, both ways
    valid = ~black
    assert np.abs(enhanced.astype(int) - whole)[valid].mean() < 3
    # the region runs the whole image's tiles around it: its pixels are the whole image's
    assert np.array_equal(piece, enhanced[region.slices])


def test_decompress_enhanced_warns_once_about_codec_and_temperature(tmp_path: Path, caplog):
    weights = tmp_path / "w.safetensors"
    save_enhancer(INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)), weights,
                  default_temperature=0.0, codec="jpeg2000:bpp=0.2")
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", image)
    compress_file(tmp_path / "a.png", tmp_path / "a.rsic", make_codec("webp:quality=20"))
    net = load_enhancer(weights).eval()
    settings = EnhanceSettings(1.0, tile=0)
    with caplog.at_level("WARNING"):
        decompress_enhanced(tmp_path / "a.rsic", tmp_path / "e.png", net, settings)
    assert caplog.text.count("was trained behind jpeg2000:bpp=0.2; this stream is webp") == 1
    assert caplog.text.count("records temperature 0 as its own; 1 is the realism end") == 1
    resolved = settings.resolve(net)
    caplog.clear()
    with caplog.at_level("WARNING"):  # resolved settings: their warnings were given
        decompress_enhanced(tmp_path / "a.rsic", tmp_path / "f.png", net, resolved)
    assert not caplog.records
    assert read_image(tmp_path / "e.png").shape == (48, 64, 3)


def test_enhance_image_warns_about_another_temperature_enhance_array_does_not(caplog) -> None:
    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)).eval()
    net.default_temperature = 0.0
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    with caplog.at_level("WARNING"):
        warned = enhance_image(image, net, 1.0, tile=0)
    assert caplog.text.count("records temperature 0 as its own; 1 is the realism end") == 1
    caplog.clear()
    with caplog.at_level("WARNING"):
        quiet = enhance_array(image, net, EnhanceSettings(1.0, tile=0))
    assert not caplog.records
    assert np.array_equal(warned, quiet)


@pytest.fixture(scope="module")
def tiled_stream(crop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """320x448 of the crop coded in 128 px tiles."""
    folder = tmp_path_factory.mktemp("stream")
    write_image(folder / "scene.png", crop[:320, :448])
    compress_file(folder / "scene.png", folder / "scene.rsic", make_codec("jpeg2000:bpp=0.4"),
                  tile=128)
    return folder / "scene.rsic"


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (64, 8), (96, 16), (128, 32)])
def test_a_decompressed_region_is_the_whole_scenes_window(
    net, tiled_stream: Path, tmp_path: Path, tile: int, overlap: int
) -> None:
    # the region's latent, tile grid and context are the whole scene's, for any tiling
    settings = EnhanceSettings(1.0, seed=3, tile=tile, overlap=overlap)
    decompress_enhanced(tiled_stream, tmp_path / "whole.png", net, settings)
    region = Window(131, 41, 190, 170)  # an odd corner
    decompress_enhanced(tiled_stream, tmp_path / "part.png", net, settings, region=region)
    whole, part = read_image(tmp_path / "whole.png"), read_image(tmp_path / "part.png")
    assert np.array_equal(part, whole[region.slices])


def _no_decoded_file(*_args, **_kwargs):
    raise AssertionError("decompress --enhance wrote a decoded file")


def test_decompress_enhanced_writes_no_decoded_file_and_never_holds_the_scene(
    net, tiled_stream: Path, tmp_path: Path, tiles_read: list[int], monkeypatch
) -> None:
    """In memory through the xarray engine's reader: the output is the one file written, and
    each container tile is decoded once and dropped once the enhancer's tiles passed it."""
    from innrsic.raster import geotiff
    from innrsic.rsic import coding, reader

    monkeypatch.setattr(coding, "decompress_file", _no_decoded_file)  # the old path
    opened: list[Path] = []
    open_sink = geotiff.GeoTiffSink.__init__

    def recording(self, path, *args, **kwargs) -> None:
        opened.append(Path(path))
        open_sink(self, path, *args, **kwargs)

    monkeypatch.setattr(geotiff.GeoTiffSink, "__init__", recording)
    held: list[int] = []
    read = reader.RsicSource.read

    def watching(self, window: Window):
        result = read(self, window)
        held.append(len(self._tiles))
        return result

    monkeypatch.setattr(reader.RsicSource, "read", watching)
    target = tmp_path / "out" / "enhanced.tif"
    tiles_read.clear()
    decompress_enhanced(tiled_stream, target, net, EnhanceSettings(1.0, seed=3, tile=64,
                                                                   overlap=8))
    assert [p.name for p in target.parent.iterdir()] == ["enhanced.tif"]
    assert len(opened) == 1 and opened[0].parent == target.parent  # the output's own temp
    assert sorted(tiles_read) == list(range(12))  # 4 x 3 tiles of 128 px, each decoded once
    assert max(held) <= 2 * 4  # two rows of them at most (the enhancer reads 80 px rows)
