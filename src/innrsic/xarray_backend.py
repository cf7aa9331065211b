"""The ``innrsic`` xarray engine: ``xr.open_dataset("scene.rsic", engine="innrsic", chunks={})``.

The Dataset is laid out as rioxarray's own engine (``engine="rasterio"``) lays out a GeoTIFF:
variable ``band_data`` (band, y, x) of the samples `innrsic.rsic.reader.RsicDataset.read` gives;
``band`` 1..count; ``x``/``y`` the pixel centres from the geotransform (a rotated transform
gets none: rioxarray reads it from ``GeoTransform``); a ``spatial_ref`` coordinate with the
CF grid-mapping attributes, ``crs_wkt``, ``spatial_ref`` and ``GeoTransform``, named by
``encoding["grid_mapping"]``, so ``ds.rio.crs`` and ``ds.rio.transform()`` work. Nodata as
rioxarray: with ``mask_and_scale=True`` (the default) nodata pixels are NaN in float32 and the
value is ``encoding["_FillValue"]``; with False the samples keep their type and
``attrs["_FillValue"]`` holds it.

Lazy: nothing is decoded on opening. ``encoding["preferred_chunks"]`` is the container's tile
grid (all bands in a chunk, as a tile decodes all of them), so ``chunks={}`` gives one dask
chunk per tile, and any selection decodes only the tiles it touches. ``verify=False`` skips
the reconstruction checksum of the decoded tiles (`innrsic.rsic.reader`).

``enhance="enhancer-jpeg2000-bpp0.4"`` (a shipped model or a weights file), with
``temperature``, ``seed``, ``enhance_tile`` and ``enhance_overlap`` as ``innrsic enhance``
takes them, gives the enhanced scene instead: each window equals that window of the whole
scene enhanced (`innrsic.enhancer.reader`), and what ``innrsic decompress --region ... --enhance``
writes for it; a chunk then also decodes the tiles around it. The settings are checked when
the dataset is opened and their warnings (another temperature than the model's own, a costly
tiling) given once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from innrsic.raster.tiling import Window
from innrsic.rsic.container import SUFFIX
from innrsic.rsic.reader import RsicDataset, open_rsic

VARIABLE = "band_data"
GRID_MAPPING = "spatial_ref"


class WindowReader(Protocol):
    """What the backend array reads from: an `RsicDataset` or an `EnhancedReader`."""

    width: int
    height: int
    count: int
    dtype: str

    def read(self, window: Window) -> np.ndarray: ...


class RsicBackendArray(BackendArray):
    """(band, y, x) samples read window by window; basic indexing (ints and slices)."""

    def __init__(self, reader: WindowReader) -> None:
        self.reader = reader
        self.shape = (reader.count, reader.height, reader.width)
        self.dtype = np.dtype(reader.dtype)

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._read
        )

    def _read(self, key: tuple[int | slice, ...]) -> np.ndarray:
        bands, rows, cols = key
        shape = np.broadcast_to(np.zeros((), self.dtype), self.shape)[key].shape
        if 0 in shape:
            return np.empty(shape, self.dtype)
        (y0, y1, y_key), (x0, x1, x_key) = _span(rows, self.shape[1]), _span(cols, self.shape[2])
        samples = self.reader.read(Window(x0, y0, x1 - x0, y1 - y0))
        return samples[bands, y_key, x_key]


def _span(key: int | slice, size: int) -> tuple[int, int, int | slice]:
    """The first and one past the last pixel `key` selects (a non-empty selection), and the
    key that picks them from that span."""
    if isinstance(key, int):
        index = key + size if key < 0 else key
        return index, index + 1, 0
    start, stop, step = key.indices(size)
    if step < 0:
        raise IndexError("the innrsic engine does not index with negative steps")
    last = start + (stop - 1 - start) // step * step
    return start, last + 1, slice(None, None, step)


def _coordinates(reader: RsicDataset) -> dict[str, xr.Variable]:
    coords = {"band": xr.Variable("band", np.arange(1, reader.count + 1, dtype=np.int64))}
    transform = reader.transform
    if transform.b == 0 and transform.d == 0:
        coords["x"] = xr.Variable("x", transform.c + transform.a * (np.arange(reader.width) + 0.5))
        coords["y"] = xr.Variable(
            "y", transform.f + transform.e * (np.arange(reader.height) + 0.5)
        )
    if reader.metadata.georeference is not None:
        coords[GRID_MAPPING] = xr.Variable((), np.int64(0), _grid_mapping_attrs(reader))
    return coords


def _grid_mapping_attrs(reader: RsicDataset) -> dict[str, Any]:
    """rioxarray's ``spatial_ref`` attributes: CF grid mapping (pyproj), WKT, GeoTransform."""
    attrs: dict[str, Any] = {}
    georeference = reader.metadata.georeference
    assert georeference is not None
    if georeference.crs:
        from pyproj import CRS

        attrs.update(CRS.from_wkt(georeference.crs).to_cf())
        attrs["crs_wkt"] = attrs["spatial_ref"] = georeference.crs
    if georeference.transform is not None:
        attrs["GeoTransform"] = " ".join(str(float(v)) for v in reader.transform.to_gdal())
    return attrs


def open_rsic_dataset(
    path: str | os.PathLike[str],
    *,
    mask_and_scale: bool = True,
    verify: bool = True,
    enhance: str | os.PathLike[str] | None = None,
    temperature: float | None = None,
    seed: int = 0,
    enhance_tile: int | None = None,
    enhance_overlap: int | None = None,
) -> xr.Dataset:
    """The Dataset of a `.rsic` scene (module doc); what the engine's `open_dataset` returns."""
    settings = None
    if enhance is not None:  # checked before anything is opened or loaded
        from innrsic.enhancer.settings import ENHANCER_OVERLAP, ENHANCER_TILE, EnhanceSettings

        settings = EnhanceSettings(
            temperature, seed,
            ENHANCER_TILE if enhance_tile is None else enhance_tile,
            ENHANCER_OVERLAP if enhance_overlap is None else enhance_overlap,
            model=os.fspath(enhance),
        )
    dataset = open_rsic(path, verify=verify)
    try:
        reader: WindowReader = dataset
        if settings is not None:
            from innrsic.enhancer.reader import EnhancedReader

            reader = EnhancedReader(dataset, settings)
        attrs: dict[str, Any] = {"AREA_OR_POINT": "Area"}
        if dataset.nodata is not None:
            attrs["_FillValue"] = np.dtype(dataset.dtype).type(dataset.nodata)
        if any(dataset.descriptions):
            attrs["long_name"] = tuple(d or "" for d in dataset.descriptions)
        grid = dataset.tiles
        encoding: dict[str, Any] = {
            "source": dataset.path,
            "preferred_chunks": {
                "band": dataset.count,
                "y": grid.tile_height or dataset.height,
                "x": grid.tile_width or dataset.width,
            },
        }
        coords = _coordinates(dataset)
        if GRID_MAPPING in coords:
            encoding["grid_mapping"] = GRID_MAPPING
        data = indexing.LazilyIndexedArray(RsicBackendArray(reader))
        variable = xr.Variable(("band", "y", "x"), data, attrs, encoding)
        result = xr.decode_cf(
            xr.Dataset({VARIABLE: variable}, coords),
            mask_and_scale=mask_and_scale,
            decode_times=False,
            decode_coords=False,
        )
    except BaseException:
        dataset.close()
        raise
    result.set_close(dataset.close)
    return result


class RsicBackendEntrypoint(BackendEntrypoint):
    """xarray's entry point for `.rsic` files (engine ``innrsic``, module doc)."""

    description = "Open innrsic .rsic scenes lazily, decoding only the tiles a selection touches"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "mask_and_scale",
        "verify",
        "enhance",
        "temperature",
        "seed",
        "enhance_tile",
        "enhance_overlap",
    )

    def open_dataset(  # type: ignore[override]
        self,
        filename_or_obj: str | os.PathLike[str],
        *,
        drop_variables: str | Iterable[str] | None = None,
        **options: Any,
    ) -> xr.Dataset:
        """`open_rsic_dataset` of the path, with its keyword `options`."""
        if not isinstance(filename_or_obj, str | os.PathLike):
            raise TypeError(f"the innrsic engine opens .rsic paths, not {type(filename_or_obj)}")
        result = open_rsic_dataset(filename_or_obj, **options)
        if drop_variables is not None:
            result = result.drop_vars(drop_variables, errors="ignore")
        return result

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        try:
            return Path(filename_or_obj).suffix.lower() == SUFFIX
        except TypeError:
            return False
