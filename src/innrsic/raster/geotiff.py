"""Raster files window by window: GeoTIFF/TIFF through rasterio, PNG/JPEG whole through Pillow.

Reading (`open_source`) gives 8-bit RGB windows plus a nodata mask; writing (`open_sink`) takes
them back. What the codec path needs to restore the source is a `RasterMetadata`, carried in
the `.rsic` metadata as JSON:

- **georeferencing** (`Georeference`): CRS (as WKT), the affine geotransform and the band
  descriptions, written back on decode so the output lines up with the input in a GIS. A
  decoded region gets the transform shifted to its corner. GCPs, RPCs and other TIFF tags
  are not carried.
- **nodata**: a pixel is nodata when *all* its bands equal the nodata value (GDAL's dataset
  mask). Those pixels are restored exactly on decode, and every band of a valid pixel that
  decodes to the nodata value is nudged by one step (one level for 8 bit), so a GIS never
  mistakes it for nodata: GDAL's per-band masks (rasterio's ``read_masks``, QGIS) hide any band
  equal to the nodata value. A source pixel where only some bands equal the value is ordinary
  data.
  GeoTIFF nodata comes from the file (``nodata=`` overrides it); for PNG/JPEG ``nodata=0``
  treats all-zero (black) pixels as nodata, e.g. the borders of DOTA scenes.
- **sample mapping** (`SampleMapping`): the codecs take 8-bit RGB. 8-bit RGB (3 bands) and
  greyscale (1 band, expanded to RGB and written back as one band: the mean of the decoded
  channels) need none. Anything else needs an explicit choice, or reading fails with a
  `RasterFormatError` that says what to pass; samples are never silently truncated:
  ``bands=(3, 2, 1)`` picks three (or one) of the source bands, 1-based, in RGB order (needed
  for 2 or more than 3 bands); ``scale=(min, max)`` maps that range of the source samples
  linearly to 0..255 (values outside are clipped), ``scale="auto"`` uses the minimum and
  maximum of the selected bands over valid pixels (one extra pass over the file). One range
  serves all bands, so their balance is kept. The range and the source sample type are
  recorded; decode maps 0..255 back to the range and rounds to the source type (uint16, int16,
  float32...). That is lossy beyond the codec: one 8-bit step is ``(max - min) / 255`` source
  units.

Large scenes must be GeoTIFF/TIFF: they are read and written one window at a time with GDAL's
block cache capped at `GDAL_CACHE_MB`, so memory does not grow with the scene. PNG and JPEG are
read whole by Pillow (which refuses images over its decompression-bomb limit, ~179 Mpx) and
written whole. TIFF output is tiled (`block` pixels), DEFLATE-compressed (``compress=``),
BigTIFF when needed, and written to a temporary file renamed into place on success.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from innrsic.atomic import atomic_path
from innrsic.errors import ImageReadError, RasterFormatError
from innrsic.raster.image import read_image, write_image
from innrsic.raster.tiling import TileGrid, Window

GEOTIFF_SUFFIXES = (".tif", ".tiff")
GDAL_CACHE_MB = 64
_SCAN_TILE = 1024


@dataclass(frozen=True)
class OutputProfile:
    """How innrsic writes raster files, read by every writer (GeoTIFF, COG, decompress, enhance
    output), like rasterio's ``DefaultGTiffProfile``: tiled in square `block` px blocks,
    `compress`ed losslessly (a COG adds the horizontal predictor and overviews)."""

    block: int = 512
    compress: str = "deflate"

    def block_for(self, block: int) -> int:
        """`block` when GDAL can tile with it (a multiple of 16 in 16-4096), else `block`'s
        default."""
        return block if block % 16 == 0 and 16 <= block <= 4096 else self.block


OUTPUT_PROFILE = OutputProfile()


@dataclass(frozen=True)
class WrittenRaster:
    """What writing (a region of) an image to a raster file produced."""

    region: Window
    georeference_dropped: bool
    """Whether the source was georeferenced but the target format (not GeoTIFF) cannot carry it."""

    @property
    def width(self) -> int:
        return self.region.width

    @property
    def height(self) -> int:
        return self.region.height


@dataclass(frozen=True)
class Georeference:
    """Where a raster lies: CRS (WKT), affine geotransform (a, b, c, d, e, f), band names."""

    crs: str | None = None
    transform: tuple[float, ...] | None = None
    descriptions: tuple[str | None, ...] = ()

    def for_window(self, window: Window) -> Georeference:
        """The georeference of `window` of this raster (transform moved to its corner)."""
        if self.transform is None:
            return self
        a, b, c, d, e, f = self.transform
        x, y = window.x, window.y
        moved = (a, b, c + a * x + b * y, d, e, f + d * x + e * y)
        return Georeference(self.crs, moved, self.descriptions)

    def to_json(self) -> dict[str, Any]:
        return {
            "crs": self.crs,
            "transform": list(self.transform) if self.transform is not None else None,
            "band_descriptions": list(self.descriptions),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Georeference:
        transform = data.get("transform")
        return cls(
            data.get("crs"),
            tuple(float(v) for v in transform) if transform is not None else None,
            tuple(data.get("band_descriptions") or ()),
        )


@dataclass(frozen=True)
class SampleMapping:
    """How source samples become 8-bit RGB and back (see the module doc)."""

    dtype: str = "uint8"
    bands: tuple[int, ...] = (1, 2, 3)
    scale: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if len(self.bands) not in (1, 3):
            raise RasterFormatError(f"select one or three bands, not {len(self.bands)}")
        if self.scale is None and self.dtype != "uint8":
            raise RasterFormatError(f"{self.dtype} samples need a scale to map them to 8 bit")
        if self.scale is not None:
            low, high = self.scale
            if not (math.isfinite(low) and math.isfinite(high) and high > low):
                raise RasterFormatError(f"scale range {low},{high} must be finite with min < max")

    @property
    def identity(self) -> bool:
        """True when decoded 8-bit samples are the output samples (no scaling)."""
        return self.scale is None

    def to_rgb(self, samples: np.ndarray) -> np.ndarray:
        """(bands, h, w) source samples -> (h, w, 3) uint8."""
        if self.scale is None:
            rgb = samples.astype(np.uint8, copy=False)
        else:
            low, high = self.scale
            values = (samples.astype(np.float64) - low) * (255.0 / (high - low))
            rgb = np.clip(np.nan_to_num(np.rint(values), nan=0.0), 0, 255).astype(np.uint8)
        if rgb.shape[0] == 1:
            rgb = np.repeat(rgb, 3, axis=0)
        return np.ascontiguousarray(rgb.transpose(1, 2, 0))

    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 -> (bands, h, w) samples of `dtype`."""
        planes = rgb.transpose(2, 0, 1)
        if len(self.bands) == 1:
            planes = np.rint(planes.mean(axis=0, keepdims=True, dtype=np.float64))
        if self.scale is None:
            return planes.astype(np.uint8)
        low, high = self.scale
        values = low + planes.astype(np.float64) * ((high - low) / 255.0)
        dtype = np.dtype(self.dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            values = np.clip(np.rint(values), info.min, info.max)
        return values.astype(dtype)

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "bands": list(self.bands),
            "scale": list(self.scale) if self.scale is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleMapping:
        scale = data.get("scale")
        return cls(
            str(data.get("dtype", "uint8")),
            tuple(int(b) for b in data.get("bands", (1, 2, 3))),
            (float(scale[0]), float(scale[1])) if scale is not None else None,
        )


@dataclass(frozen=True)
class RasterMetadata:
    """What a decoder needs to restore a source raster: mapping, nodata, georeferencing."""

    mapping: SampleMapping = field(default_factory=SampleMapping)
    nodata: float | None = None
    georeference: Georeference | None = None

    def to_json(self) -> dict[str, Any]:
        """Container metadata keys: ``samples``, ``nodata``, ``geo`` (absent when default)."""
        data: dict[str, Any] = {}
        if self.mapping != SampleMapping():
            data["samples"] = self.mapping.to_json()
        if self.nodata is not None:
            data["nodata"] = _json_number(self.nodata)
        if self.georeference is not None:
            data["geo"] = self.georeference.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RasterMetadata:
        try:
            nodata = data.get("nodata")
            return cls(
                SampleMapping.from_json(data["samples"]) if "samples" in data else SampleMapping(),
                None if nodata is None else float(nodata),
                Georeference.from_json(data["geo"]) if data.get("geo") is not None else None,
            )
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise RasterFormatError(f"raster metadata is malformed ({exc})") from exc

    def for_window(self, window: Window) -> RasterMetadata:
        """The metadata of a region of this raster."""
        georeference = self.georeference.for_window(window) if self.georeference else None
        return RasterMetadata(self.mapping, self.nodata, georeference)


def _json_number(value: float) -> float | int | str:
    if math.isnan(value):
        return "nan"
    return int(value) if float(value).is_integer() else float(value)


def _nodata_mask(samples: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """(h, w) True where every band equals `nodata`; None without a nodata value."""
    if nodata is None:
        return None
    if math.isnan(nodata):
        return np.all(np.isnan(samples), axis=0) if samples.dtype.kind == "f" else None
    return np.all(samples == nodata, axis=0)


class RasterSource(Protocol):
    """An image read window by window as 8-bit RGB plus a nodata mask."""

    width: int
    height: int
    metadata: RasterMetadata

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """(h, w, 3) uint8 RGB and the (h, w) nodata mask (None: no nodata value)."""
        ...

    def close(self) -> None: ...


class ArraySource(RasterSource):
    """A whole image in memory (from Pillow or an array); 8-bit RGB only."""

    def __init__(self, image: np.ndarray, nodata: float | None = None) -> None:
        if nodata is not None and not (float(nodata).is_integer() and 0 <= nodata <= 255):
            raise RasterFormatError(f"nodata {nodata} is not an 8-bit value (0..255)")
        self.image = image
        self.height, self.width = image.shape[:2]
        self.metadata = RasterMetadata(nodata=None if nodata is None else float(nodata))

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        rgb = self.image[window.slices]
        return rgb, _nodata_mask(rgb.transpose(2, 0, 1), self.metadata.nodata)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _gdal_env() -> Iterator[None]:
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        yield


class GeoTiffSource(RasterSource):
    """A GeoTIFF/TIFF read one window at a time through rasterio (see the module doc)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        bands: Sequence[int] | None = None,
        scale: tuple[float, float] | Literal["auto"] | None = None,
        nodata: float | None = None,
    ) -> None:
        import rasterio

        self.path = Path(path)
        self._env = contextlib.ExitStack()
        self._env.enter_context(_gdal_env())
        try:
            self._dataset = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError as exc:
            self._env.close()
            raise ImageReadError(f"{self.path}: cannot open as a raster ({exc})") from exc
        try:
            self._setup(bands, scale, nodata)
        except BaseException:
            self.close()
            raise

    def _setup(
        self,
        bands: Sequence[int] | None,
        scale: tuple[float, float] | Literal["auto"] | None,
        nodata: float | None,
    ) -> None:
        from rasterio.enums import ColorInterp

        ds = self._dataset
        self.width, self.height = ds.width, ds.height
        if ColorInterp.palette in ds.colorinterp:
            raise RasterFormatError(
                f"{self.path}: a palette (colour-mapped) raster; expand it to RGB first, e.g. "
                "gdal_translate -expand rgb"
            )
        self.bands = self._select_bands(bands)
        dtypes = {ds.dtypes[b - 1] for b in self.bands}
        if len(dtypes) != 1:
            raise RasterFormatError(f"{self.path}: selected bands mix sample types {dtypes}")
        dtype = dtypes.pop()
        self.nodata = ds.nodata if nodata is None else float(nodata)
        nbits = ds.tags(self.bands[0], "IMAGE_STRUCTURE").get("NBITS")
        if nbits is not None and int(nbits) < 8 and scale is None:
            raise RasterFormatError(
                f"{self.path}: samples are {nbits}-bit; give --scale 0,{2 ** int(nbits) - 1} "
                "to spread them over 8 bit"
            )
        if scale is None and dtype != "uint8":
            raise RasterFormatError(
                f"{self.path}: samples are {dtype}, the codecs and the enhancer take 8 bit; "
                "give an explicit mapping: --scale MIN,MAX (or --scale auto for the data's "
                "range) maps them linearly to 0..255 and the output restores the range (lossy: "
                "256 levels)"
            )
        eight_bit = dtype == "uint8" and scale is None
        if (
            eight_bit
            and self.nodata is not None
            and not (float(self.nodata).is_integer() and 0 <= self.nodata <= 255)
        ):
            raise RasterFormatError(f"{self.path}: nodata {self.nodata} is not 8-bit")
        if scale == "auto":
            scale = self._data_range()
        descriptions = tuple(ds.descriptions[b - 1] for b in self.bands)
        georeferenced = ds.crs is not None or not ds.transform.is_identity
        georeference = Georeference(
            ds.crs.to_wkt() if ds.crs is not None else None,
            tuple(ds.transform)[:6] if georeferenced else None,
            descriptions,
        )
        keep_geo = georeferenced or any(d is not None for d in descriptions)
        self.metadata = RasterMetadata(
            SampleMapping(dtype, self.bands, scale),
            self.nodata,
            georeference if keep_geo else None,
        )

    def _select_bands(self, bands: Sequence[int] | None) -> tuple[int, ...]:
        from rasterio.enums import ColorInterp

        count = self._dataset.count
        if bands is not None:
            chosen = tuple(int(b) for b in bands)
            if len(chosen) not in (1, 3):
                raise RasterFormatError(f"select one or three bands, not {len(chosen)}")
            bad = [b for b in chosen if not 1 <= b <= count]
            if bad:
                raise RasterFormatError(f"{self.path}: has bands 1..{count}; no band {bad[0]}")
            return chosen
        if count in (1, 3):
            return tuple(range(1, count + 1))
        alpha = " (band 4 is alpha)" if ColorInterp.alpha in self._dataset.colorinterp else ""
        raise RasterFormatError(
            f"{self.path}: has {count} bands{alpha}; choose three (RGB order) or one with "
            "--bands, e.g. --bands 3,2,1"
        )

    def _samples(self, window: Window) -> np.ndarray:
        from rasterio.windows import Window as GdalWindow

        gdal_window = GdalWindow(window.x, window.y, window.width, window.height)
        return self._dataset.read(list(self.bands), window=gdal_window)

    def _data_range(self) -> tuple[float, float]:
        low, high = math.inf, -math.inf
        for window in TileGrid(self.width, self.height, _SCAN_TILE, _SCAN_TILE):
            samples = self._samples(window)
            mask = _nodata_mask(samples, self.nodata)
            valid = samples[:, ~mask] if mask is not None else samples
            valid = valid[np.isfinite(valid)] if valid.dtype.kind == "f" else valid
            if valid.size:
                low, high = min(low, float(valid.min())), max(high, float(valid.max()))
        if not math.isfinite(low):
            raise RasterFormatError(f"{self.path}: no valid pixel to take a range from")
        return (low, high if high > low else low + 1.0)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        samples = self._samples(window)
        return self.metadata.mapping.to_rgb(samples), _nodata_mask(samples, self.nodata)

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            self._dataset.close()
        self._env.close()


def is_geotiff(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is read and written through rasterio (a .tif/.tiff suffix)."""
    return Path(path).suffix.lower() in GEOTIFF_SUFFIXES


@contextlib.contextmanager
def open_source(
    path: str | os.PathLike[str],
    bands: Sequence[int] | None = None,
    scale: tuple[float, float] | Literal["auto"] | None = None,
    nodata: float | None = None,
) -> Iterator[RasterSource]:
    """Open an image for window reads: TIFF/GeoTIFF through rasterio (windowed, any sample
    type given a mapping), anything else whole through Pillow (8-bit only)."""
    if is_geotiff(path):
        source: RasterSource = GeoTiffSource(path, bands, scale, nodata)
    else:
        if bands is not None or scale is not None:
            raise RasterFormatError(
                f"{path}: band selection and scaling apply to TIFF/GeoTIFF inputs; "
                "PNG/JPEG are read as 8-bit RGB"
            )
        source = ArraySource(read_image(path), nodata)
    try:
        yield source
    finally:
        source.close()


class RasterSink(Protocol):
    """An image written window by window from 8-bit RGB plus a nodata mask; `open_sink`
    calls `commit` when every window is written and `abort` when writing failed."""

    def write(self, window: Window, rgb: np.ndarray, mask: np.ndarray | None) -> None:
        """Write `window` of the image: (h, w, 3) uint8 RGB and its (h, w) nodata mask."""
        ...

    def commit(self) -> None:
        """Finish the image: everything written is in the file."""
        ...

    def abort(self) -> None:
        """Give the image up, releasing what it holds."""
        ...


def restore_samples(
    rgb: np.ndarray, mask: np.ndarray | None, metadata: RasterMetadata
) -> np.ndarray:
    """Decoded (h, w, 3) uint8 -> (bands, h, w) output samples: unmap, then put nodata back
    exactly where `mask` says and nudge each band of a valid pixel off the nodata value."""
    samples = metadata.mapping.from_rgb(rgb)
    nodata = metadata.nodata
    if nodata is None or math.isnan(nodata):
        if nodata is not None and mask is not None:
            samples[:, mask] = np.nan
        return samples
    value = np.asarray(nodata).astype(samples.dtype)
    collide = samples == value
    if mask is not None:
        collide &= ~mask
    if collide.any():
        if samples.dtype.kind == "f":
            samples[collide] = np.nextafter(value, np.asarray(np.inf, samples.dtype))
        else:
            top = np.iinfo(samples.dtype).max
            samples[collide] = value + 1 if value < top else value - 1
    if mask is not None:
        samples[:, mask] = value
    return samples


def check_target(path: str | os.PathLike[str], metadata: RasterMetadata) -> None:
    """RasterFormatError unless an image at `path` can hold `metadata`'s samples: samples
    scaled to 8 bit are restored only to a TIFF/GeoTIFF."""
    if is_geotiff(path) or (metadata.mapping.dtype == "uint8" and metadata.mapping.identity):
        return
    raise RasterFormatError(
        f"{path}: the source had {metadata.mapping.dtype} samples scaled to 8 bit; "
        "write a .tif to restore them (PNG/JPEG output would keep only the 8-bit "
        "mapping)"
    )


class ArraySink(RasterSink):
    """Collects the whole image in memory and writes it with Pillow (PNG/JPEG) at the end."""

    def __init__(
        self, path: str | os.PathLike[str], width: int, height: int, metadata: RasterMetadata
    ) -> None:
        check_target(path, metadata)
        self.path = path
        self.metadata = metadata
        self.image = np.zeros((height, width, 3), np.uint8)

    def write(self, window: Window, rgb: np.ndarray, mask: np.ndarray | None) -> None:
        samples = restore_samples(rgb, mask, self.metadata)
        if samples.shape[0] == 1:
            samples = np.repeat(samples, 3, axis=0)
        self.image[window.slices] = samples.transpose(1, 2, 0)

    def commit(self) -> None:
        write_image(self.path, self.image)

    def abort(self) -> None:
        pass


class GeoTiffSink(RasterSink):
    """A GeoTIFF written window by window through rasterio (`open_sink` gives it a temporary
    path and renames the finished file into place)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        metadata: RasterMetadata,
        block: int = OUTPUT_PROFILE.block,
        compress: str | None = OUTPUT_PROFILE.compress,
    ) -> None:
        import rasterio
        from rasterio.crs import CRS

        self.metadata = metadata
        mapping = metadata.mapping
        block = OUTPUT_PROFILE.block_for(block)
        profile: dict[str, Any] = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": len(mapping.bands),
            "dtype": mapping.dtype,
            "tiled": True,
            "blockxsize": block,
            "blockysize": block,
            "bigtiff": "IF_SAFER",
        }
        if compress:
            profile["compress"] = compress
        if len(mapping.bands) == 3 and mapping.dtype == "uint8":
            profile["photometric"] = "RGB"
        if metadata.nodata is not None:
            profile["nodata"] = metadata.nodata
        georeference = metadata.georeference
        if georeference is not None and georeference.crs:
            profile["crs"] = CRS.from_wkt(georeference.crs)
        if georeference is not None and georeference.transform is not None:
            profile["transform"] = rasterio.Affine(*georeference.transform)
        self._env = contextlib.ExitStack()
        self._env.enter_context(_gdal_env())
        try:
            self._dataset = rasterio.open(path, "w", **profile)
            if georeference is not None:
                for band, text in enumerate(georeference.descriptions, start=1):
                    if text:
                        self._dataset.set_band_description(band, text)
        except BaseException:
            self._env.close()
            raise

    def write(self, window: Window, rgb: np.ndarray, mask: np.ndarray | None) -> None:
        from rasterio.windows import Window as GdalWindow

        samples = restore_samples(rgb, mask, self.metadata)
        gdal_window = GdalWindow(window.x, window.y, window.width, window.height)
        self._dataset.write(samples, window=gdal_window)

    def commit(self) -> None:
        self._dataset.close()
        self._env.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._dataset.close()
        self._env.close()


@contextlib.contextmanager
def open_sink(
    path: str | os.PathLike[str],
    width: int,
    height: int,
    metadata: RasterMetadata | None = None,
    block: int = OUTPUT_PROFILE.block,
    compress: str | None = OUTPUT_PROFILE.compress,
) -> Iterator[RasterSink]:
    """Open an output image for window writes; it appears at `path` (atomically,
    `innrsic.atomic`) only if the block completes. TIFF/GeoTIFF: windowed through rasterio with
    georeferencing, nodata and band descriptions; other suffixes: collected whole and written
    by Pillow (8-bit only)."""
    metadata = metadata or RasterMetadata()
    with contextlib.ExitStack() as output:
        sink: RasterSink
        if is_geotiff(path):
            written = output.enter_context(atomic_path(path, suffix=".tmp.tif"))
            sink = GeoTiffSink(written, width, height, metadata, block, compress)
        else:
            sink = ArraySink(path, width, height, metadata)
        try:
            yield sink
        except BaseException:
            sink.abort()
            raise
        sink.commit()
