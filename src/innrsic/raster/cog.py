"""Cloud-Optimized GeoTIFF output, through GDAL's COG driver (rasterio).

``write_cog(path, image, mask, metadata)`` writes an HxWx3 uint8 image, ``write_cog_tiles(path,
tiles, width, height, metadata)`` one given window by window (``(window, rgb, mask)``, as the
decoders and the enhancer yield them), in memory bounded by a window: the windows go into a
tiled scratch GeoTIFF (`innrsic.raster.geotiff.GeoTiffSink`), which the COG driver copies block by
block, building the overviews on the way; ``geotiff_to_cog`` does that last step for any
GeoTIFF. The scratch files live in a folder beside the target, and the COG appears at `path`
only when complete (fsynced and renamed into place, `innrsic.atomic.replace_durably`).

What the file holds: `metadata` (`innrsic.raster.geotiff.RasterMetadata`) gives the
georeferencing, the band descriptions, the nodata value and the sample type, restored as ``innrsic
decompress`` to a .tif restores them (`raster.geotiff.restore_samples`: the pixels of `mask`
become nodata, valid pixels equal to it are nudged off it); a mask needs a nodata value. Layout:
512 px blocks, internal overviews halving down to one block (averaged; nodata pixels are left out
of the averages), BigTIFF when needed. Compression is lossless by default: DEFLATE with the
horizontal predictor (``compress="deflate"``, ``level`` 1-12, GDAL's default 6); ``lzw`` and
``zstd`` are lossless too, ``jpeg`` and ``webp`` lossy (``quality``, GDAL's default 75), and
``none`` stores the samples raw.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from innrsic.atomic import replace_durably, scratch_folder
from innrsic.errors import RasterFormatError
from innrsic.raster.geotiff import GDAL_CACHE_MB, OUTPUT_PROFILE, RasterMetadata, open_sink
from innrsic.raster.image import validate_rgb
from innrsic.raster.tiling import Window

COMPRESSIONS = ("deflate", "lzw", "zstd", "jpeg", "webp", "none")
LOSSLESS = ("deflate", "lzw", "zstd", "none")

Tile = tuple[Window, np.ndarray, np.ndarray | None]


def write_cog(
    path: str | os.PathLike[str],
    image: np.ndarray,
    mask: np.ndarray | None = None,
    metadata: RasterMetadata | None = None,
    *,
    compress: str = OUTPUT_PROFILE.compress,
    level: int | None = None,
    quality: int | None = None,
) -> None:
    """Write an HxWx3 uint8 image as a COG (module doc); `mask` (h, w) bool, True: nodata."""
    validate_rgb(image)
    height, width = image.shape[:2]
    if mask is not None and mask.shape != (height, width):
        raise RasterFormatError(f"mask of shape {mask.shape} for a {width}x{height} image")
    write_cog_tiles(
        path,
        [(Window(0, 0, width, height), image, mask)],
        width,
        height,
        metadata,
        compress=compress,
        level=level,
        quality=quality,
    )


def write_cog_tiles(
    path: str | os.PathLike[str],
    tiles: Iterable[Tile],
    width: int,
    height: int,
    metadata: RasterMetadata | None = None,
    *,
    compress: str = OUTPUT_PROFILE.compress,
    level: int | None = None,
    quality: int | None = None,
) -> None:
    """Write a `width` x `height` COG from ``(window, rgb (h, w, 3) uint8, mask or None)``
    windows that cover it, in any order (module doc); memory is bounded by a window."""
    options = creation_options(compress, level, quality)
    metadata = metadata or RasterMetadata()
    with scratch_folder(path) as scratch:
        source = scratch / "source.tif"
        with open_sink(source, width, height, metadata, OUTPUT_PROFILE.block, None) as sink:
            for window, rgb, mask in tiles:
                if mask is not None and metadata.nodata is None:
                    raise RasterFormatError(
                        "a nodata mask needs a nodata value to write (metadata.nodata)"
                    )
                sink.write(window, rgb, mask)
        _translate(source, path, scratch, options)


def geotiff_to_cog(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    compress: str = OUTPUT_PROFILE.compress,
    level: int | None = None,
    quality: int | None = None,
) -> None:
    """Copy a GeoTIFF (any size: GDAL reads it block by block) into a COG at `target`."""
    options = creation_options(compress, level, quality)
    with scratch_folder(target) as scratch:
        _translate(Path(source), target, scratch, options)


@contextlib.contextmanager
def cog_output(
    target: str | os.PathLike[str], compress: str = OUTPUT_PROFILE.compress
) -> Iterator[Path]:
    """A scratch GeoTIFF path to write a result to; when the block ends without an error it is
    copied into a COG at `target` (atomically) and removed, so `target` is never a plain or
    partial TIFF. For writers that only write GeoTIFFs (``decompress``, ``enhance``)."""
    options = creation_options(compress)
    with scratch_folder(target) as scratch:
        plain = scratch / "plain.tif"
        yield plain
        _translate(plain, target, scratch, options)


def creation_options(
    compress: str = OUTPUT_PROFILE.compress, level: int | None = None, quality: int | None = None
) -> dict[str, str]:
    """The COG driver's creation options for a compression (module doc); RasterFormatError
    for an unknown one or a setting it does not take."""
    name = compress.lower()
    if name not in COMPRESSIONS:
        raise RasterFormatError(f"COG compression {compress!r}: choose one of {COMPRESSIONS}")
    options = {
        "BLOCKSIZE": str(OUTPUT_PROFILE.block),
        "COMPRESS": name.upper(),
        "OVERVIEWS": "IGNORE_EXISTING",
        "OVERVIEW_RESAMPLING": "AVERAGE",
        "BIGTIFF": "IF_SAFER",
    }
    if name in ("deflate", "lzw", "zstd"):
        options["PREDICTOR"] = "YES"
    if level is not None:
        if name not in ("deflate", "zstd") or not 1 <= level <= (12 if name == "deflate" else 22):
            raise RasterFormatError(f"compression level {level} does not apply to {name}")
        options["LEVEL"] = str(level)
    if quality is not None:
        if name in LOSSLESS or not 1 <= quality <= 100:
            raise RasterFormatError(f"quality {quality} does not apply to {name} (lossy: 1-100)")
        options["QUALITY"] = str(quality)
    return options


def _translate(
    source: Path, target: str | os.PathLike[str], scratch: Path, options: dict[str, str]
) -> None:
    import rasterio
    import rasterio.shutil

    written = scratch / "cog.tif"
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        try:
            rasterio.shutil.copy(source, written, driver="COG", **options)
        except rasterio.errors.RasterioError as exc:
            raise RasterFormatError(f"{source}: cannot write a COG ({exc})") from exc
    replace_durably(written, target)
