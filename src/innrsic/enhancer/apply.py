"""Tiled enhancement of decoded images and files, in memory bounded by the tile size.

``enhance_file(source, target, net)`` runs the invertible enhancer over an image file of any
size: the input is read one tile at a time (TIFF/GeoTIFF through rasterio; PNG/JPEG whole),
each tile goes through ``net.inverse(y, z)``, overlapping tiles are blended and the output is
written window by window (a .tif keeps the georeferencing, nodata and sample type of the
input; nodata pixels are put back exactly). ``enhance_image`` does the same for an array.

How the tiles fit together (see `innrsic.raster.tiling.BlendGrid`):

- tiles of ``tile + 2 * overlap`` px on a stride of `tile` px; neighbours share a band of
  ``2 * overlap`` px across which their outputs are cross-faded with a raised-cosine window
  that sums to one, so no seam shows and values far from tile edges are untouched;
- the latent ``z`` is a deterministic function of ``(seed, absolute pixel position)``: the
  image plane is cut into fixed `NOISE_BLOCK` px blocks and block ``(by, bx)`` draws its
  N(0, 1) samples from a generator seeded with ``(seed, by, bx)`` (`latent_noise`). Two
  overlapping tiles therefore see the same ``z`` where they overlap, and the output does not
  depend on the tile size except within the network's reach of a tile edge, where blending
  takes over. ``z`` is scaled by `temperature`; 0 gives ``z = 0``;
- memory: one tile through the network plus blending bands of ``2 * overlap`` rows across the
  image width (`TileBlender`) - independent of the image height, and of the width up to those
  bands.

Defaults: 512 px tiles (a 576x576 tile of the paper-size network peaked at about 1.7 GB resident
on CPU, torch included), 32 px overlap. Seams, measured as the mean gradient magnitude across tile
edges over that across other boundaries of the same phase (`innrsic.raster.tiling.seam_ratio`),
with a random network whose output depends on a neighbourhood of tens of pixels, temperature 1, on
four full DOTA scenes: P0168 1.006, P0770 0.998, P1088 1.018, P0003 0.977 (the untiled result
gives the same values at those lines to 3 decimals, and differs from the tiled one by at most 1
level, 0.001 on average); the same tiles without overlap give 0.82-0.86.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from innrsic.atomic import scratch_folder
from innrsic.enhancer.fast import FastEnhancer, Precision, ReferenceEngine, engine_for
from innrsic.enhancer.network import FALLBACK_TEMPERATURE, INNEnhancer
from innrsic.errors import ConfigError
from innrsic.pretrained import check_temperature
from innrsic.raster.geotiff import (
    RasterSource,
    WrittenRaster,
    is_geotiff,
    open_sink,
    open_source,
)
from innrsic.raster.image import validate_rgb
from innrsic.raster.tiling import BlendGrid, TileBlender, TilingError, Window

log = logging.getLogger(__name__)

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
NOISE_BLOCK = 64


@dataclass(frozen=True)
class EnhanceResult(WrittenRaster):
    """What `enhance_file` wrote."""

    tiles: int
    """Tiles run through the network."""


def latent_noise(window: Window, channels: int, seed: int, block: int = NOISE_BLOCK) -> np.ndarray:
    """N(0, 1) samples (channels, height, width), float32, for `window` of the image plane.

    Block ``(by, bx)`` of the fixed `block`-px grid is drawn from
    ``numpy.random.default_rng((seed, by, bx))``, so the value at a pixel depends only on the
    seed, the pixel's absolute position and `channels`, never on the window asked for.
    """
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    out = np.empty((channels, window.height, window.width), np.float32)
    for by in range(window.y // block, (window.bottom - 1) // block + 1):
        for bx in range(window.x // block, (window.right - 1) // block + 1):
            cell = Window(bx * block, by * block, block, block)
            part = window.intersection(cell)
            assert part is not None
            noise = np.random.default_rng((seed, by, bx)).standard_normal(
                (channels, block, block), dtype=np.float32
            )
            inside = part.relative_to(cell).slices
            out[(slice(None), *part.relative_to(window).slices)] = noise[(slice(None), *inside)]
    return out


def check_settings(tile: int, overlap: int, temperature: float | None = None) -> None:
    """TilingError/ConfigError unless `tile`, `overlap` (and `temperature`) are usable."""
    if temperature is not None:
        check_temperature(temperature)
    if overlap < 0 or overlap % 2:
        raise TilingError(f"overlap must be an even number >= 0, got {overlap}")
    if tile != 0 and (tile % 2 or tile < 16 or tile < 2 * overlap):
        raise TilingError(
            f"tile {tile} must be 0 (whole image) or an even number >= 16 and >= twice the "
            f"overlap ({overlap})"
        )


def model_temperature(
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    temperature: float | None = None,
    label: str = "this enhancer",
    warn: bool = True,
) -> float:
    """The temperature to run `net` at: `temperature`, else the model's default (an
    `INNEnhancer` loaded from a file knows it; `FALLBACK_TEMPERATURE` otherwise).

    A temperature other than the model's default is logged as a warning (unless `warn` is
    False: the caller warned already): a model trained for T = 0 gives noise at T = 1.
    """
    default = getattr(net, "default_temperature", None)
    if temperature is None:
        return FALLBACK_TEMPERATURE if default is None else default
    temperature = check_temperature(temperature)
    if warn and default is not None and temperature != default:
        log.warning(
            "%s was chosen for temperature %g; at %g it trades fidelity and realism otherwise, "
            "or gives noise if it never learned that end (a shipped model's card, `innrsic "
            "models NAME`, measures each temperature; leave it out for the default)",
            label, default, temperature,
        )
    return temperature


def _engine_and_temperature(
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    temperature: float | None,
    tile: int,
    overlap: int,
    precision: Precision,
    threads: int | None,
    warn: bool,
) -> tuple[FastEnhancer | ReferenceEngine, float]:
    """The engine to run `net` on (`engine_for`) and the temperature (`model_temperature`,
    which warns about a non-default one if `warn`), after checking `tile` and `overlap`."""
    temperature = model_temperature(net, temperature, warn=warn)
    check_settings(tile, overlap)
    return engine_for(net, precision, threads), temperature


def check_codec(model_codec: str | None, stream_codec: str, label: str = "this enhancer") -> None:
    """Warn when an enhancer trained behind `model_codec` restores a `stream_codec` stream."""
    if model_codec is not None and model_codec != stream_codec:
        log.warning(
            "%s was trained behind %s; this stream is %s, so it may restore it badly",
            label, model_codec, stream_codec,
        )


def enhance_tiles(
    read: Callable[[Window], np.ndarray],
    width: int,
    height: int,
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    temperature: float | None = None,
    seed: int = 0,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    origin: tuple[int, int] = (0, 0),
    progress: bool = False,
    *,
    precision: Precision = "float32",
    threads: int | None = None,
    warn: bool = True,
) -> Iterator[tuple[Window, np.ndarray]]:
    """The streaming core: yield ``(window, enhanced uint8 (h, w, 3))`` covering the
    `width` x `height` image once, in raster order.

    `read(window)` returns the decoded (h, w, 3) uint8 pixels of a window. `origin` is the
    image's position in a larger plane (for a region of a scene), used for the latent so that
    a region sees the same ``z`` as the whole scene; keep it even (the Haar step works on 2x2
    blocks). `tile` 0 runs the whole image as one tile.

    The network runs on `innrsic.enhancer.fast.FastEnhancer` (an `INNEnhancer` is copied into
    one with `precision` and `threads` worker threads; pass a `FastEnhancer` to reuse it and its
    workspaces across calls). float32 gives the reference's pixels exactly; at temperature 0
    the Gaussianisation's scale branch is skipped (`FastEnhancer.restore`). `temperature` None
    is the model's default (`model_temperature`, which also warns about other values unless
    `warn` is False: a caller that checked once for a batch).
    """
    engine, temperature = _engine_and_temperature(
        net, temperature, tile, overlap, precision, threads, warn
    )
    step = tile if tile else max(width, height)
    grid = BlendGrid(width, height, step, overlap if tile else 0)
    blender = TileBlender(grid, 3)
    parameter = next(engine.parameters())
    channels = engine.config.latent_channels
    positions = grid.positions()
    if progress and len(grid) > 1:
        positions = tqdm(
            positions,
            total=len(grid),
            desc="enhance",
            unit="tile",
            file=sys.stderr,
            leave=False,
            disable=None,
        )
    for row, col in positions:
        window = grid.window(row, col)
        pixels = read(window)
        # NCHW-contiguous: a transposed array would reach torch as channels-last memory
        y = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)[None], np.float32))
        y = y / 255.0
        absolute = Window(window.x + origin[0], window.y + origin[1], window.width, window.height)
        with torch.inference_mode():
            if temperature == 0:
                x = engine.restore(y.to(parameter))
            else:
                z = torch.from_numpy(latent_noise(absolute, channels, seed)[None] * temperature)
                x = engine.inverse(y.to(parameter), z.to(parameter))
            x = x.clamp(0.0, 1.0)
        values = x[0].permute(1, 2, 0).float().cpu().numpy()
        done, blended = blender.add(row, col, values)
        yield done, np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)


def enhance_image(
    image: np.ndarray,
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    temperature: float | None = None,
    seed: int = 0,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    precision: Precision = "float32",
    threads: int | None = None,
    warn: bool = True,
) -> np.ndarray:
    """Enhance a decoded HxWx3 uint8 image (tiled as `enhance_tiles`; `temperature` None: the
    model's default; `warn` False: no warning about another temperature, for sweeps that
    choose it on purpose); returns HxWx3 uint8."""
    validate_rgb(image)
    height, width = image.shape[:2]
    out = np.empty_like(image)
    tiles = enhance_tiles(
        lambda w: image[w.slices],
        width,
        height,
        net,
        temperature,
        seed,
        tile,
        overlap,
        precision=precision,
        threads=threads,
        warn=warn,
    )
    for window, values in tiles:
        out[window.slices] = values
    return out


def enhance_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    temperature: float | None = None,
    seed: int = 0,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    region: Window | None = None,
    bands: Sequence[int] | None = None,
    scale: tuple[float, float] | Literal["auto"] | None = None,
    nodata: float | None = None,
    progress: bool = False,
    tiff_compression: str | None = "deflate",
    precision: Precision = "float32",
    threads: int | None = None,
    warn: bool = True,
) -> EnhanceResult:
    """Enhance an image file tile by tile and write the result atomically.

    Args:
        source: decoded image; TIFF/GeoTIFF is read window by window (bounded memory),
            PNG/JPEG whole.
        target: output image; .tif/.tiff is written window by window and keeps the source's
            georeferencing, nodata value, band descriptions and sample type; PNG/JPEG are
            8-bit RGB assembled in memory.
        net: the enhancer (its device is used; pass it in eval mode), or a `FastEnhancer`.
        temperature: ``z ~ N(0, T^2)``; 0 is deterministic; None: the model's default.
        seed: the latent is a function of (seed, absolute pixel position), see the module doc.
        tile, overlap: tile stride and half the shared band, in pixels (even; tile 0: whole).
        region: enhance only this window of the source (output of the region's size, its
            georeferencing moved to the region's corner); its latent matches the full scene's.
        bands, scale, nodata: the sample mapping of `innrsic.raster.geotiff` for 16-bit,
            multispectral or nodata-bearing sources; nodata pixels are written back exactly.
        progress: a bar over tiles on stderr.
        tiff_compression: GeoTIFF compression of a .tif target.
        precision, threads: the engine's, see `enhance_tiles`.
        warn: warn about a temperature other than the model's default (False: the caller
            checked once for a batch).
    """
    with open_source(source, bands, scale, nodata) as raster:
        region = region or Window(0, 0, raster.width, raster.height)
        if not region.within(raster.width, raster.height):
            raise TilingError(
                f"region {region} reaches outside the {raster.width}x{raster.height} image"
            )
        # Start the processed area on even coordinates: the Haar step pairs pixels.
        area = Window(
            region.x - region.x % 2,
            region.y - region.y % 2,
            region.width + region.x % 2,
            region.height + region.y % 2,
        )
        masks = _MaskCache(raster, area)
        metadata = raster.metadata.for_window(region)
        block = tile if tile and tile % 16 == 0 else DEFAULT_TILE
        with open_sink(
            target, region.width, region.height, metadata, block, tiff_compression
        ) as sink:
            tiles = enhance_tiles(
                masks.read,
                area.width,
                area.height,
                net,
                temperature,
                seed,
                tile,
                overlap,
                (area.x, area.y),
                progress,
                precision=precision,
                threads=threads,
                warn=warn,
            )
            count = 0
            for window, values in tiles:
                count += 1
                absolute = Window(window.x + area.x, window.y + area.y, window.width, window.height)
                part = absolute.intersection(region)
                if part is None:
                    continue
                local = part.relative_to(absolute).slices
                mask = masks.mask(part)
                sink.write(part.relative_to(region), values[local], mask)
    dropped = metadata.georeference is not None and not is_geotiff(target)
    return EnhanceResult(region=region, georeference_dropped=dropped, tiles=count)


class _MaskCache:
    """Reads tile windows of `area` and remembers the nodata mask of the last one read, which
    always covers the output window that tile completes."""

    def __init__(self, raster: RasterSource, area: Window) -> None:
        self.raster = raster
        self.area = area
        self._window: Window | None = None
        self._mask: np.ndarray | None = None

    def read(self, window: Window) -> np.ndarray:
        absolute = Window(
            window.x + self.area.x, window.y + self.area.y, window.width, window.height
        )
        rgb, mask = self.raster.read(absolute)
        self._window, self._mask = absolute, mask
        return rgb

    def mask(self, part: Window) -> np.ndarray | None:
        if self._mask is None or self._window is None:
            return None
        return self._mask[part.relative_to(self._window).slices]


def decompress_enhanced(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    temperature: float | None = None,
    seed: int = 0,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    region: Window | None = None,
    progress: bool = False,
    verify: bool = True,
    precision: Precision = "float32",
    threads: int | None = None,
    warn: bool = True,
) -> EnhanceResult:
    """Decode a `.rsic` file (or `region` of it) and enhance the result into `target`.

    The decoded image goes through a temporary GeoTIFF beside `target` (so large scenes stay
    in bounded memory and georeferencing is kept); only the enhanced image is left behind.
    `verify` as in `innrsic.rsic.coding.decompress_file`. An enhancer whose `codec` is not the
    stream's is warned about (`check_codec`), as a non-default temperature is, unless `warn` is
    False (the caller checked once for a batch).
    """
    from innrsic.rsic.coding import decompress_file
    from innrsic.rsic.container import ContainerReader

    if warn:
        with ContainerReader(source) as reader:
            check_codec(getattr(net, "codec", None), reader.codec_spec)
    # the temperature is warned about here, before decoding
    engine, temperature = _engine_and_temperature(
        net, temperature, tile, overlap, precision, threads, warn
    )
    with scratch_folder(target) as scratch:  # removed however the call ends
        decoded = scratch / "decoded.tif"
        decompress_file(source, decoded, region=region, progress=progress, verify=verify)
        return enhance_file(
            decoded,
            target,
            engine,
            temperature,
            seed,
            tile,
            overlap,
            progress=progress,
            precision=precision,
            threads=threads,
            warn=False,
        )

