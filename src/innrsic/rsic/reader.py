"""Random-access reading of `.rsic` scenes, in rasterio's spirit.

``open_rsic(path)`` opens a scene (header and tile index verified, payloads read on demand) as
an `RsicDataset`; ``read(window)`` decodes only the container tiles the window touches and
returns **band-first** samples, ``(count, height, width)``, exactly what ``innrsic decompress
--region`` writes to a GeoTIFF: the source's bands and sample type restored, nodata pixels
set to the nodata value (``masked=True``: a numpy masked array instead). ``decode(window)``
gives the codec's own pixels, HxWx3 uint8, and the nodata mask. ``crs``, ``transform``,
``nodata``, ``profile`` and ``tiles`` describe the scene as rasterio would. ``RsicSource(dataset)``
is the scene as an `innrsic.raster.geotiff.RasterSource`, the 8-bit input of the enhancer
(`innrsic.enhancer.apply`), read in raster order in bounded memory.

Checks, as `innrsic.rsic.coding.decompress_file` makes them: tile records carry their own checksums,
so a window is verified from the tiles it reads (and is read from a truncated file when its
tiles are intact; a missing one is a TruncatedError naming it); a container without them (one
whole-image payload) has its file checksum checked on opening; each decoded tile is compared
with the encoder's reconstruction checksum unless ``verify=False``. Tile reads share one file handle
under a lock, so one dataset serves several threads (dask); decoding runs in parallel. A
dataset pickles as its path and reopens, for dask's process and distributed schedulers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from innrsic.codecs import make_codec
from innrsic.errors import TilingError
from innrsic.raster.geotiff import RasterMetadata, restore_samples
from innrsic.raster.tiling import TileGrid, Window, check_region
from innrsic.rsic.coding import decode_region, reconstruction_checksums
from innrsic.rsic.container import ContainerReader

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

DRIVER = "RSIC"


@runtime_checkable
class GdalWindow(Protocol):
    """A rasterio ``Window``: what `read` accepts besides an `innrsic.raster.tiling.Window`."""

    col_off: float
    row_off: float
    width: float
    height: float


WindowLike = Window | GdalWindow


def as_window(window: WindowLike | None, width: int, height: int) -> Window:
    """`window` (innrsic or rasterio, whole pixels) as a `Window` inside `width` x `height`;
    None is the whole image. TilingError for anything else."""
    if window is None:
        return Window(0, 0, width, height)
    if not isinstance(window, Window):
        if not isinstance(window, GdalWindow):
            raise TilingError(f"window {window!r} is not a Window (x, y, width, height)")
        values = (window.col_off, window.row_off, window.width, window.height)
        if not all(float(v).is_integer() for v in values):
            raise TilingError(f"window {window!r} must be whole pixels")
        window = Window(*(int(v) for v in values))
    return check_region(window, width, height, "window")


class RsicDataset:
    """An open `.rsic` scene (see the module doc); close it, or use it as a context manager."""

    codec_spec: str
    """The codec the tiles were coded with, e.g. ``jpeg2000:bpp=0.4``."""
    width: int
    height: int

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True,
                 weights: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path)
        self.verify = verify
        self._reader = ContainerReader(self.path, partial=True)
        self.codec_spec = self._reader.codec_spec
        self.width, self.height = self._reader.width, self._reader.height
        try:
            if not self._reader.tile_records:
                self._reader.verify()
            self.metadata = RasterMetadata.from_json(self._reader.metadata)
            self._codec = make_codec(self._reader.codec_spec, weights)
            self._checksums = (
                reconstruction_checksums(self._reader.metadata, len(self.tiles))
                if verify
                else None
            )
        except BaseException:
            self._reader.close()
            raise
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """Bands `read` returns: the source's (1 or 3)."""
        return len(self.metadata.mapping.bands)

    @property
    def dtype(self) -> str:
        """Sample type `read` returns: the source's (``uint8`` unless it was scaled)."""
        return self.metadata.mapping.dtype

    @property
    def nodata(self) -> float | None:
        return self.metadata.nodata

    @property
    def tiles(self) -> TileGrid:
        """The container's tile grid: each tile decodes on its own."""
        return self._reader.grid

    @property
    def descriptions(self) -> tuple[str | None, ...]:
        """Band descriptions (None each when the source had none)."""
        georeference = self.metadata.georeference
        if georeference is None or not georeference.descriptions:
            return (None,) * self.count
        return georeference.descriptions

    @property
    def crs(self) -> CRS | None:
        """The coordinate reference system (rasterio's), or None."""
        from rasterio.crs import CRS

        georeference = self.metadata.georeference
        if georeference is None or not georeference.crs:
            return None
        return CRS.from_wkt(georeference.crs)

    @property
    def transform(self) -> Affine:
        """The affine geotransform of pixel corners (identity when not georeferenced)."""
        from affine import Affine

        georeference = self.metadata.georeference
        if georeference is None or georeference.transform is None:
            return Affine.identity()
        return Affine(*georeference.transform)

    @property
    def profile(self) -> dict[str, Any]:
        """rasterio's profile keys; ``profile | {"driver": "GTiff"}`` opens a GeoTIFF for
        writing the same grid (block size: the container's tiles)."""
        grid = self.tiles
        profile: dict[str, Any] = {
            "driver": DRIVER,
            "dtype": self.dtype,
            "nodata": self.nodata,
            "width": self.width,
            "height": self.height,
            "count": self.count,
            "crs": self.crs,
            "transform": self.transform,
            "tiled": grid.tile_width > 0,
        }
        if grid.tile_width:
            profile["blockxsize"], profile["blockysize"] = grid.tile_width, grid.tile_height
        return profile

    def window(self, window: WindowLike | None = None) -> Window:
        """`window` checked against the scene (None: all of it), see `as_window`."""
        return as_window(window, self.width, self.height)

    def check(self, window: WindowLike | None = None) -> None:
        """What `innrsic.rsic.coding.decompress_file` checks before decoding `window`: the
        tiles it needs are stored (else TruncatedError naming them) and, for the whole scene,
        the file checksum (one streaming pass; a container without tile records had it
        checked on opening)."""
        region = self.window(window)
        whole = (region.width, region.height) == (self.width, self.height)
        if whole and self._reader.tile_records:
            with self._lock:
                self._reader.verify()
        self._reader.check_present(self.tiles.indices(region))

    def decode(self, window: WindowLike | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The codec's pixels of `window` (HxWx3 uint8, nodata pixels at their fill value) and
        its nodata mask (True: nodata; None without a nodata value)."""
        region = self.window(window)
        self._reader.check_present(self.tiles.indices(region))
        rgb = np.empty((region.height, region.width, 3), np.uint8)
        mask = None if self.nodata is None else np.zeros(rgb.shape[:2], bool)
        parts = decode_region(
            self._read_tile,
            self.tiles,
            self._reader.tile_records,
            self._codec,
            region,
            self.metadata,
            self._checksums,
        )
        for part, part_rgb, part_mask in parts:
            rgb[part.slices] = part_rgb
            if mask is not None and part_mask is not None:
                mask[part.slices] = part_mask
        return rgb, mask

    def read(self, window: WindowLike | None = None, *, masked: bool = False) -> np.ndarray:
        """Band-first samples of `window`, ``(count, h, w)`` of `dtype` (module doc);
        `masked`: a numpy masked array, nodata pixels masked."""
        rgb, mask = self.decode(window)
        samples = restore_samples(rgb, mask, self.metadata)
        if not masked:
            return samples
        hidden = False if mask is None else np.broadcast_to(mask, samples.shape)
        return np.ma.MaskedArray(samples, mask=hidden)

    def _read_tile(self, index: int) -> bytes:
        with self._lock:
            return self._reader.read_tile(index)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> RsicDataset:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "verify": self.verify}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], verify=state["verify"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return (
            f"<RsicDataset {self.path!r} {self.width}x{self.height}x{self.count} {self.dtype}, "
            f"{len(self.tiles)} tiles, {self.codec_spec}>"
        )


class RsicSource:
    """A scene as an `innrsic.raster.geotiff.RasterSource`: ``read(window)`` gives the 8-bit
    RGB and nodata mask that a GeoTIFF of its decoded samples reads back as with the scene's
    mapping (`restore_samples`, then the mapping to 8 bit), without writing that file. Each
    container tile is decoded once and kept until a read starts below it, so reads down the
    scene in raster order (the enhancer's tiles) hold the container tile rows of one read,
    whatever the scene's height; other orders decode tiles again. `decoded` is called with 1
    for each tile decoded (a progress bar's ``update``)."""

    def __init__(
        self, dataset: RsicDataset, decoded: Callable[[int], object] | None = None
    ) -> None:
        self.dataset = dataset
        self.width, self.height = dataset.width, dataset.height
        self.metadata = dataset.metadata
        self._decoded = decoded
        self._tiles: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray | None]:
        """(h, w, 3) uint8 RGB of `window` and its nodata mask (None: no nodata value)."""
        grid = self.dataset.tiles
        for index in [i for i in self._tiles if grid.window(i).bottom <= window.y]:
            del self._tiles[index]
        rgb = np.empty((window.height, window.width, 3), np.uint8)
        mask = None if self.metadata.nodata is None else np.zeros(rgb.shape[:2], bool)
        for index in grid.indices(window):
            tile = grid.window(index)
            pixels, tile_mask = self._tile(index)
            part = window.intersection(tile)
            assert part is not None
            inside, local = part.relative_to(tile).slices, part.relative_to(window).slices
            rgb[local] = pixels[inside]
            if mask is not None and tile_mask is not None:
                mask[local] = tile_mask[inside]
        return rgb, mask

    def _tile(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        if index not in self._tiles:
            rgb, mask = self.dataset.decode(self.dataset.tiles.window(index))
            samples = restore_samples(rgb, mask, self.metadata)
            self._tiles[index] = (self.metadata.mapping.to_rgb(samples), mask)
            if self._decoded is not None:
                self._decoded(1)
        return self._tiles[index]

    def close(self) -> None:
        self._tiles.clear()


def open_rsic(path: str | os.PathLike[str], *, verify: bool = True,
              weights: str | os.PathLike[str] | None = None) -> RsicDataset:
    """Open a `.rsic` scene for window reads (module doc); `verify` checks decoded tiles
    against the reconstruction checksum (`innrsic.rsic.coding`)."""
    return RsicDataset(path, verify=verify, weights=weights)
