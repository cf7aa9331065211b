"""The ``innrsic`` xarray engine: rioxarray's layout, lazy tile decoding, the enhanced view."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401 (the .rio accessor)
import xarray as xr

from innrsic.api import load_enhancer
from innrsic.enhancer.apply import enhance_file
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.raster.tiling import Window
from innrsic.rsic.coding import decompress_file

MODEL = "enhancer-jpeg2000-bpp0.4"
# rioxarray 0.19 multiplies Affines with `*`, which affine 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")


def test_engine_is_registered() -> None:
    assert "innrsic" in xr.backends.list_engines()
    assert xr.backends.list_engines()["innrsic"].guess_can_open("scene.rsic")


def test_georeferencing_survives_into_rioxarray(scene) -> None:
    with xr.open_dataset(scene["rsic"], engine="innrsic", chunks={}) as ds:
        with rasterio.open(scene["tif"]) as source:
            assert ds.rio.crs == source.crs
            assert ds.rio.transform() == source.transform
            assert ds.band_data.rio.encoded_nodata == source.nodata == 0
        assert ds.band_data.dims == ("band", "y", "x")
        assert ds.band_data.encoding["grid_mapping"] == "spatial_ref"
        assert ds.spatial_ref.attrs["crs_wkt"] == ds.spatial_ref.attrs["spatial_ref"]


def test_layout_matches_rioxarrays_engine_on_the_decoded_geotiff(scene) -> None:
    ours = xr.open_dataset(scene["rsic"], engine="innrsic", chunks={})
    theirs = xr.open_dataset(scene["decoded"], engine="rasterio", chunks={})
    with ours, theirs:
        assert ours.band_data.dtype == theirs.band_data.dtype == np.float32
        for name in ("band", "x", "y"):
            assert np.array_equal(ours[name].values, theirs[name].values), name
        for key in ("crs_wkt", "GeoTransform", "grid_mapping_name", "false_easting"):
            assert ours.spatial_ref.attrs[key] == theirs.spatial_ref.attrs[key], key
        assert ours.band_data.encoding["_FillValue"] == theirs.band_data.encoding["_FillValue"]
        xr.testing.assert_identical(ours.band_data.load(), theirs.band_data.load())


def test_window_equals_decompress_region_and_decodes_only_its_tiles(
    scene, tiles_read: list[int], tmp_path: Path
) -> None:
    region = Window(130, 10, 200, 150)  # tile columns 1-2, rows 0-1
    decompress_file(scene["rsic"], tmp_path / "part.tif", region=region)
    with rasterio.open(tmp_path / "part.tif") as part:
        expected = part.read()
    tiles_read.clear()
    with xr.open_dataset(scene["rsic"], engine="innrsic", chunks={}, mask_and_scale=False) as ds:
        assert tiles_read == []  # opening decodes nothing
        assert ds.band_data.chunks == ((3,), (128, 128, 64), (128, 128, 128, 64))
        window = ds.band_data.isel(x=slice(130, 330), y=slice(10, 160))
        assert np.array_equal(window.values, expected)
        assert sorted(tiles_read) == [1, 2, 5, 6]
        # the same window selected by coordinates: pixel centres from the geotransform
        x, y = ds.x.values, ds.y.values
        by_label = ds.band_data.sel(x=slice(x[130], x[329]), y=slice(y[10], y[159]))
        assert np.array_equal(by_label.values, expected)


def test_masked_values_and_other_selections(scene) -> None:
    with rasterio.open(scene["decoded"]) as decoded:
        full = decoded.read()
    with xr.open_dataset(scene["rsic"], engine="innrsic") as ds:  # no dask: lazy numpy
        band = ds.band_data
        assert band.encoding["dtype"] == np.uint8 and band.encoding["_FillValue"] == 0
        values = band.values
        assert np.array_equal(np.isnan(values), full == 0)
        assert np.array_equal(np.nan_to_num(values).astype(np.uint8), full)
        assert np.array_equal(band[1, 5, 7:300:3].values, values[1, 5, 7:300:3], equal_nan=True)
        assert np.array_equal(band[::-1, ::-2, -1].values, values[::-1, ::-2, -1], equal_nan=True)
        assert band[:, 10:10, :].shape == (3, 0, 448)


def test_dask_computes_the_whole_scene_tile_by_tile(scene, tiles_read: list[int]) -> None:
    with rasterio.open(scene["decoded"]) as decoded:
        full = decoded.read()
    ds = xr.open_dataset(scene["rsic"], engine="innrsic", chunks={}, mask_and_scale=False)
    with ds, dask.config.set(scheduler="threads", num_workers=2):
        values = ds.band_data.values
    assert np.array_equal(values, full)
    assert sorted(tiles_read) == list(range(12))  # each tile decoded once


def test_enhanced_window_equals_the_window_of_the_enhanced_scene(
    scene, tiles_read: list[int], tmp_path: Path
) -> None:
    settings = {"temperature": 0.5, "seed": 3, "tile": 96, "overlap": 16}
    net = load_enhancer(MODEL)
    enhance_file(scene["decoded"], tmp_path / "enhanced.tif", net, EnhanceSettings(**settings))
    with rasterio.open(tmp_path / "enhanced.tif") as enhanced:
        expected = enhanced.read()
    options = {
        "enhance": MODEL,
        "temperature": settings["temperature"],
        "seed": settings["seed"],
        "enhance_tile": settings["tile"],
        "enhance_overlap": settings["overlap"],
        "mask_and_scale": False,
    }
    with xr.open_dataset(scene["rsic"], engine="innrsic", chunks={}, **options) as ds:
        for x0, x1, y0, y1 in [(130, 250, 10, 100), (300, 448, 200, 320), (37, 61, 250, 319)]:
            tiles_read.clear()
            window = ds.band_data.isel(x=slice(x0, x1), y=slice(y0, y1)).values
            assert np.array_equal(window, expected[:, y0:y1, x0:x1]), (x0, x1, y0, y1)
            assert len(set(tiles_read)) < 12  # the area around the window, not the scene
        assert ds.rio.crs is not None and ds.band_data.dtype == np.uint8


def test_enhanced_view_refuses_bad_settings(scene) -> None:
    from innrsic.errors import TilingError

    with pytest.raises(TilingError, match="even"):
        xr.open_dataset(scene["rsic"], engine="innrsic", enhance=MODEL, enhance_overlap=15)


def test_the_readme_xarray_example_runs(scene, tmp_path: Path, monkeypatch) -> None:
    import shutil

    import innrsic

    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text(encoding="utf-8").split("### xarray, rioxarray", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copy(scene["rsic"], tmp_path / "scene.rsic")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(readme), "exec"), namespace)
    assert namespace["patch"].shape[0] == 3 and namespace["ds"].rio.crs is not None
    with innrsic.open("scene.rsic") as reader:
        assert reader.width == namespace["ds"].sizes["x"]


def test_enhanced_window_equals_decompress_region_and_warns_once(
    scene, tmp_path: Path, caplog
) -> None:
    import logging

    from innrsic.enhancer.apply import decompress_enhanced

    net = load_enhancer(MODEL)
    region = Window(131, 41, 90, 70)
    settings = EnhanceSettings(0.0, seed=3, tile=64, overlap=8, model=MODEL)
    decompress_enhanced(scene["rsic"], tmp_path / "part.tif", net, settings, region=region)
    with rasterio.open(tmp_path / "part.tif") as part:
        expected = part.read()
    caplog.clear()
    options = {"enhance": MODEL, "temperature": 0.0, "seed": 3, "enhance_tile": 64,
               "enhance_overlap": 8, "mask_and_scale": False}
    with caplog.at_level(logging.WARNING), xr.open_dataset(
        scene["rsic"], engine="innrsic", **options
    ) as ds:
        window = ds.band_data.isel(x=slice(131, 221), y=slice(41, 111)).values
        corner = ds.band_data.isel(x=slice(0, 40), y=slice(0, 40)).values  # no warning
    assert np.array_equal(window, expected) and corner.shape == (3, 40, 40)
    default = net.default_temperature
    warning = f"runs at temperature {default:g} by default; 0 is the fidelity end"
    assert caplog.text.count(warning) == 1 and len(caplog.records) == 1


def test_enhanced_view_of_a_scaled_scene_is_what_decompress_enhance_writes(
    scene, tmp_path: Path
) -> None:
    from innrsic.enhancer.apply import decompress_enhanced
    from innrsic.rsic.coding import compress_file

    with rasterio.open(scene["tif"]) as source:
        profile, samples = source.profile, source.read().astype(np.uint16) * 40 + 9
    samples[:, (samples == 9).all(axis=0)] = 0  # nodata stays nodata
    with rasterio.open(tmp_path / "u16.tif", "w", **(profile | {"dtype": "uint16"})) as target:
        target.write(samples)
    compress_file(tmp_path / "u16.tif", tmp_path / "u16.rsic", "jpeg2000:bpp=0.4", tile=128,
                  scale="auto")
    region = Window(131, 41, 90, 70)
    settings = EnhanceSettings(0.0, seed=3, tile=64, overlap=8, model=MODEL)
    decompress_enhanced(tmp_path / "u16.rsic", tmp_path / "part.tif", load_enhancer(MODEL),
                        settings, region=region)
    with rasterio.open(tmp_path / "part.tif") as part:
        expected = part.read()
    options = {"enhance": MODEL, "temperature": 0.0, "seed": 3, "enhance_tile": 64,
               "enhance_overlap": 8, "mask_and_scale": False}
    with xr.open_dataset(tmp_path / "u16.rsic", engine="innrsic", **options) as ds:
        window = ds.band_data.isel(x=slice(131, 221), y=slice(41, 111)).values
    assert window.dtype == np.uint16 and np.array_equal(window, expected)
