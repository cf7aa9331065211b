"""Tiled enhancement of decoded images and files, in memory bounded by the tile size.

``enhance_file(source, target, net, settings)`` runs the invertible enhancer over an image file
of any size (`settings`: an `innrsic.enhancer.settings.EnhanceSettings`, None for the
defaults): the input is read one tile at a time (TIFF/GeoTIFF through rasterio; PNG/JPEG whole),
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
  takes over. ``z`` is scaled by `temperature`; 0 gives ``z = 0``. Every path samples this
  way: ``enhance``, ``decompress --enhance`` (whole or ``--region``), the xarray engine,
  ``evaluate``, the demo and the Python API;
- the tile grid is anchored at the scene's corner: a region (``enhance_file(region=...)``,
  ``decompress_enhanced(region=...)``) runs the tiles of the whole scene's grid around it
  (`scene_area`, `enhance_region`), with their context, so its pixels are the whole scene's;
- a `.rsic` scene is enhanced in memory, through the reader the xarray engine uses: its
  container tiles are decoded as the enhancer's tiles reach them (`innrsic.rsic.reader.RsicSource`),
  no decoded file is written;
- memory: one tile through the network plus blending bands of ``2 * overlap`` rows across the
  image width (`TileBlender`) and, for a `.rsic` scene, the rows of container tiles one
  enhancer tile reads - independent of the image height, and of the width up to those bands;
- devices: the engine runs where ``settings.device`` says (None: where the network is). On a
  GPU, consecutive tiles of one size go through the network as one batch of up to
  `DEVICE_BATCH_PIXELS` (`tiles_per_batch`), through pinned host memory both ways; on the CPU,
  one tile at a time (the same pixels as ever).

Defaults: 512 px tiles, 32 px overlap (the memory and seam measurements behind them:
benchmarks/README.md, "Measurements behind defaults").
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from innrsic.enhancer.fast import (
    DEFAULT_PRECISION,
    FastEnhancer,
    Precision,
    ReferenceEngine,
    engine_device,
    engine_for,
)
from innrsic.enhancer.network import INNEnhancer
from innrsic.enhancer.settings import ENHANCER_OVERLAP, ENHANCER_TILE, EnhanceSettings
from innrsic.errors import ConfigError
from innrsic.raster.geotiff import (
    OUTPUT_PROFILE,
    RasterMetadata,
    RasterSource,
    SampleMapping,
    WrittenRaster,
    check_target,
    is_geotiff,
    open_sink,
    open_source,
)
from innrsic.raster.image import validate_rgb
from innrsic.raster.tiling import BlendGrid, TileBlender, Window, check_region

log = logging.getLogger(__name__)

NOISE_BLOCK = 64
# Network input pixels per batch on a GPU: the paper-size model's workspaces take about 1 KB a
# pixel, so a batch holds about 4 GB of them (eight 576 px tiles at the default tiling).
DEVICE_BATCH_PIXELS = 1 << 22
Network = INNEnhancer | FastEnhancer | ReferenceEngine


@dataclass(frozen=True)
class EnhanceResult(WrittenRaster):
    """What `enhance_file` wrote."""

    tiles: int
    """Tiles run through the network."""


def latent_noise(window: Window, channels: int, seed: int, block: int = NOISE_BLOCK) -> np.ndarray:
    """N(0, 1) samples (channels, height, width), float32, for `window` of the image plane.

    Block ``(by, bx)`` of the fixed `block`-px grid is drawn from
    ``numpy.random.default_rng((seed, by, bx))``, so the value at a pixel depends only on the
    seed, the pixel's absolute position and `channels`, never on the window asked for. This is
    the one sampler of every enhancing path (module doc).
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


def scene_area(window: Window, width: int, height: int, settings: EnhanceSettings) -> Window:
    """The part of a `width` x `height` scene the enhancer runs on to give `window` exactly the
    whole scene's pixels: cut at the whole scene's tile starts, from the last one at least a
    shared band before `window` to the end of the first tile whose finished part reaches past
    it (`innrsic.enhancer.reader` explains why that is exact). Tile 0: the whole scene."""
    if settings.tile == 0:
        return Window(0, 0, width, height)
    grid = BlendGrid(width, height, settings.tile, settings.overlap)
    x0, x1 = _span(window.x, window.right, width, grid.columns, settings)
    y0, y1 = _span(window.y, window.bottom, height, grid.rows, settings)
    return Window(x0, y0, x1 - x0, y1 - y0)


def _span(
    start: int, stop: int, size: int, count: int, settings: EnhanceSettings
) -> tuple[int, int]:
    step, band = settings.tile, 2 * settings.overlap
    first = min(max(0, (start - band) // step), count - 1)
    last = min(-(-stop // step) - 1, count - 1)
    end = size if last == count - 1 else (last + 1) * step + band
    return first * step, end


def check_codec(model_codec: str | None, stream_codec: str, label: str = "this enhancer") -> None:
    """Warn when an enhancer trained behind `model_codec` restores a `stream_codec` stream."""
    if model_codec is not None and model_codec != stream_codec:
        log.warning(
            "%s was trained behind %s; this stream is %s, so it may restore it badly",
            label, model_codec, stream_codec,
        )


def _progress_bar(what: str, total: int, enabled: bool) -> tqdm:
    """A bar over `total` tiles on stderr, shown when `enabled`, on a terminal only (logs and
    captured output stay clean) and for more than one tile."""
    return tqdm(total=total, desc=what, unit="tile", file=sys.stderr, leave=False,
                disable=None if enabled and total > 1 else True)


def _blend_grid(width: int, height: int, settings: EnhanceSettings) -> BlendGrid:
    """The enhancer's tiles over a `width` x `height` image (tile 0: one tile, the image)."""
    tile = settings.tile
    return BlendGrid(width, height, tile if tile else max(width, height),
                     settings.overlap if tile else 0)


def enhance_tiles(
    read: Callable[[Window], np.ndarray],
    width: int,
    height: int,
    engine: Network,
    settings: EnhanceSettings,
    origin: tuple[int, int] = (0, 0),
    progress: bool = False,
) -> Iterator[tuple[Window, np.ndarray]]:
    """The streaming core: yield ``(window, enhanced uint8 (h, w, 3))`` covering the
    `width` x `height` image once, in raster order, at `settings` (no warnings here: they come
    with `EnhanceSettings.resolve`; a temperature of None is the model's own).

    `read(window)` returns the decoded (h, w, 3) uint8 pixels of a window. `origin` is the
    image's position in a larger plane (for an area of a scene), used for the latent so that
    an area sees the same ``z`` as the whole scene; keep it even (the Haar step works on 2x2
    blocks). Tile 0 runs the whole image as one tile.

    The network runs on `innrsic.enhancer.fast.FastEnhancer` (an `INNEnhancer` is copied into
    one at the settings' precision and threads; pass a `FastEnhancer` to reuse it and its
    workspaces across calls), on ``settings.device`` in batches of `tiles_per_batch` tiles.
    float32 on the CPU gives the reference's pixels exactly; at temperature 0 the
    Gaussianisation's scale branch is skipped (`FastEnhancer.restore`).
    """
    engine = engine_for(engine, settings.precision, settings.threads, settings.device)
    temperature = settings.temperature_for(engine)
    grid = _blend_grid(width, height, settings)
    blender = TileBlender(grid, 3)
    windows = ((position, grid.window(*position)) for position in grid.positions())
    with _progress_bar("enhance", len(grid), progress) as bar:
        for batch in _batches(windows, engine_device(engine)):
            tiles = [
                (read(window), Window(window.x + origin[0], window.y + origin[1], window.width,
                                      window.height))
                for _, window in batch
            ]
            outputs = _run_tiles(engine, tiles, temperature, settings.seed)
            for ((row, col), _), values in zip(batch, outputs, strict=True):
                done, blended = blender.add(row, col, values)
                bar.update(1)
                yield done, np.clip(np.rint(blended * 255.0), 0, 255).astype(np.uint8)


def enhance_region(
    source: RasterSource,
    region: Window,
    engine: Network,
    settings: EnhanceSettings,
    progress: bool = False,
) -> Iterator[tuple[Window, np.ndarray, np.ndarray | None]]:
    """`region` of `source` enhanced as the whole image is (`scene_area`), in finished parts
    in raster order: ``(part, its (h, w, 3) uint8 pixels, its nodata mask or None)``, `part`
    relative to `region`'s corner. The one path of every file and scene enhancement:
    `enhance_file`, `decompress_enhanced` and `innrsic.enhancer.reader.EnhancedReader`."""
    area = scene_area(region, source.width, source.height, settings)
    masks: dict[tuple[int, int], np.ndarray | None] = {}  # by tile corner, until finished

    def read(window: Window) -> np.ndarray:
        rgb, masks[(window.x, window.y)] = source.read(
            Window(window.x + area.x, window.y + area.y, window.width, window.height)
        )
        return rgb

    tiles = enhance_tiles(read, area.width, area.height, engine, settings, (area.x, area.y),
                          progress)
    for done, values in tiles:  # a finished window starts at its tile's corner
        mask = masks.pop((done.x, done.y))
        absolute = Window(done.x + area.x, done.y + area.y, done.width, done.height)
        part = absolute.intersection(region)
        if part is None:
            continue
        local = part.relative_to(absolute).slices
        yield part.relative_to(region), values[local], None if mask is None else mask[local]


def tiles_per_batch(device: torch.device, pixels: int) -> int:
    """How many tiles of `pixels` pixels go through the network at once on `device`: one on
    the CPU (which runs a batch item by item anyway), else `DEVICE_BATCH_PIXELS` worth."""
    return 1 if device.type == "cpu" else max(1, DEVICE_BATCH_PIXELS // pixels)


def _batches(
    windows: Iterable[tuple[tuple[int, int], Window]], device: torch.device
) -> Iterator[list[tuple[tuple[int, int], Window]]]:
    """Consecutive tile windows of one size, at most `tiles_per_batch` of them at a time."""
    batch: list[tuple[tuple[int, int], Window]] = []
    for item in windows:
        window = item[1]
        if batch and (
            (window.width, window.height) != (batch[0][1].width, batch[0][1].height)
            or len(batch) >= tiles_per_batch(device, window.width * window.height)
        ):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _run_tiles(
    engine: FastEnhancer | ReferenceEngine,
    tiles: list[tuple[np.ndarray, Window]],
    temperature: float,
    seed: int,
) -> list[np.ndarray]:
    """Tiles of one size, each its (h, w, 3) uint8 pixels and scene position, through the
    network as one batch: each float (h, w, 3) in [0, 1]."""
    device = engine_device(engine)
    # NCHW-contiguous: a transposed array would reach torch as channels-last memory
    pixels = np.ascontiguousarray(np.stack([p for p, _ in tiles]).transpose(0, 3, 1, 2))
    with torch.inference_mode():
        y = _to_device(pixels, device).float() / 255.0
        if temperature == 0:
            x = engine.restore(y)
        else:
            channels = engine.config.latent_channels
            noise = np.stack([latent_noise(where, channels, seed) for _, where in tiles])
            x = engine.inverse(y, _to_device(noise * temperature, device))
        x = x.clamp(0.0, 1.0).permute(0, 2, 3, 1).float()
        return list(_to_host(x))


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """`array` as a tensor on `device`, through pinned memory off the CPU."""
    tensor = torch.from_numpy(array)
    if device.type == "cpu":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def _to_host(tensor: torch.Tensor) -> np.ndarray:
    """`tensor` as an array, copied off a GPU through pinned memory."""
    if tensor.device.type == "cpu":
        return tensor.numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return host.numpy()


def enhance_array(image: np.ndarray, engine: Network, settings: EnhanceSettings) -> np.ndarray:
    """A decoded HxWx3 uint8 image enhanced at `settings` (tiled as `enhance_tiles`, no
    warnings: for callers that chose the settings on purpose, e.g. temperature sweeps)."""
    validate_rgb(image)
    height, width = image.shape[:2]
    out = np.empty_like(image)
    for window, values in enhance_tiles(lambda w: image[w.slices], width, height, engine,
                                        settings):
        out[window.slices] = values
    return out


def enhance_image(
    image: np.ndarray,
    net: Network,
    temperature: float | None = None,
    seed: int = 0,
    tile: int = ENHANCER_TILE,
    overlap: int = ENHANCER_OVERLAP,
    *,
    precision: Precision = DEFAULT_PRECISION,
    threads: int | None = None,
    device: str | None = None,
) -> np.ndarray:
    """Enhance a decoded HxWx3 uint8 image; returns HxWx3 uint8. `temperature` None: the
    model's own (another is warned about); the latent is `latent_noise` of (seed, pixel
    position); tiled as `enhance_tiles`, on `device` (``auto``, ``cpu``, ``cuda``; None:
    where `net` is). `enhance_array` takes an `EnhanceSettings`."""
    settings = EnhanceSettings(temperature, seed, tile, overlap, precision, threads,
                               device=device)
    return enhance_array(image, net, settings.resolve(net))


def enhance_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    net: Network,
    settings: EnhanceSettings | None = None,
    *,
    region: Window | None = None,
    bands: Sequence[int] | None = None,
    scale: tuple[float, float] | Literal["auto"] | None = None,
    nodata: float | None = None,
    progress: bool = False,
) -> EnhanceResult:
    """Enhance an image file tile by tile and write the result atomically.

    Args:
        source: decoded image; TIFF/GeoTIFF is read window by window (bounded memory),
            PNG/JPEG whole.
        target: output image; .tif/.tiff is written window by window and keeps the source's
            georeferencing, nodata value, band descriptions and sample type; PNG/JPEG are
            8-bit RGB assembled in memory.
        net: the enhancer (its device is used; pass it in eval mode), or a `FastEnhancer`.
        settings: temperature, seed, tiling and engine (None: the defaults); resolved here
            (`EnhanceSettings.resolve`), which warns unless they were resolved already.
        region: enhance only this window of the source (output of the region's size, its
            georeferencing moved to the region's corner); its pixels are the whole image's
            (`scene_area`).
        bands, scale, nodata: the sample mapping of `innrsic.raster.geotiff` for 16-bit,
            multispectral or nodata-bearing sources; nodata pixels are written back exactly.
        progress: a bar over tiles on stderr.
    """
    settings = (settings or EnhanceSettings()).resolve(net)
    with open_source(source, bands, scale, nodata) as raster:
        region = check_region(region, raster.width, raster.height)
        return _enhance_raster(raster, target, net, settings, region, progress)


def _enhance_raster(
    raster: RasterSource,
    target: str | os.PathLike[str],
    net: Network,
    settings: EnhanceSettings,
    region: Window,
    progress: bool,
) -> EnhanceResult:
    """`region` of an open raster enhanced (`enhance_region`) and written to `target`."""
    metadata = raster.metadata.for_window(region)
    with open_sink(
        target, region.width, region.height, metadata, OUTPUT_PROFILE.block_for(settings.tile),
        OUTPUT_PROFILE.compress,
    ) as sink:
        for part, values, mask in enhance_region(raster, region, net, settings, progress):
            sink.write(part, values, mask)
    area = scene_area(region, raster.width, raster.height, settings)
    dropped = metadata.georeference is not None and not is_geotiff(target)
    return EnhanceResult(region=region, georeference_dropped=dropped,
                         tiles=len(_blend_grid(area.width, area.height, settings)))


def decompress_enhanced(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    net: Network,
    settings: EnhanceSettings | None = None,
    *,
    region: Window | None = None,
    progress: bool = False,
    verify: bool = True,
    weights: str | os.PathLike[str] | None = None,
) -> EnhanceResult:
    """Decode a `.rsic` file (or `region` of it) and enhance the result into `target`.

    In memory, through the reader of the xarray engine (`innrsic.rsic.reader.RsicSource`,
    `enhance_region`): container tiles are decoded as the enhancer's tiles reach them and
    dropped once passed, so a large scene stays in bounded memory and no decoded file is
    written; the output is written window by window (atomically, `open_sink`). A region is
    enhanced with the context the whole scene's tiles give it (`scene_area`) and its latent
    is drawn at scene positions, so its pixels are the whole scene's. A scene scaled from
    another sample type (``compress --scale``) is enhanced in 8 bit, the file's mapping
    applied to the decoded samples (exact when the range spans at least 255 source units),
    and written back as `decompress_file` writes it: the source type and range, nodata and
    georeferencing; its `target` must then be a TIFF (RasterFormatError, before any
    decoding). The file is checked as `decompress_file` checks it (`RsicDataset.check`);
    `verify` and `weights` (where a learned codec's weights are looked for first) as there.
    Unresolved `settings` are resolved here, with their warnings, and an
    enhancer whose `codec` is not the stream's is warned about (`check_codec`); a caller that
    resolved them checks its streams itself. `progress`: a decompress bar over the container
    tiles and an enhance bar over the enhancer's.
    """
    from innrsic.rsic.reader import RsicSource, open_rsic

    settings = settings or EnhanceSettings()
    with open_rsic(source, verify=verify, weights=weights) as dataset:
        check_target(target, dataset.metadata)
        if not settings.resolved:
            check_codec(getattr(net, "codec", None), dataset.codec_spec, settings.label)
        settings = settings.resolve(net)  # warned about here, before decoding
        engine = engine_for(net, settings.precision, settings.threads, settings.device)
        region = check_region(region, dataset.width, dataset.height)
        area = scene_area(region, dataset.width, dataset.height, settings)
        dataset.check(area)
        with _progress_bar("decompress", len(dataset.tiles.indices(area)), progress) as bar:
            scene = RsicSource(dataset, bar.update)
            return _enhance_raster(scene, target, engine, settings, region, progress)


def check_stream_target(metadata: dict[str, Any], target: str | os.PathLike[str]) -> SampleMapping:
    """The sample mapping of a `.rsic` file's `metadata` (its container metadata), after
    checking that `target` can hold the samples it restores (`check_target`)."""
    raster = RasterMetadata.from_json(metadata)
    check_target(target, raster)
    return raster.mapping


def check_enhance_target(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    bands: Sequence[int] | None = None,
    scale: tuple[float, float] | Literal["auto"] | None = None,
) -> None:
    """Refuse, reading no pixels, what `enhance_file` would refuse about `source`'s sample
    mapping (`bands`, `scale`: RasterFormatError saying what to pass) or a `target` that
    cannot hold the samples it writes back (`check_target`)."""
    if not is_geotiff(source) and bands is None and scale is None:
        return  # 8-bit RGB, for any target
    probe = (0.0, 1.0) if scale == "auto" else scale  # "auto" would scan every pixel
    with open_source(source, bands, probe) as raster:
        check_target(target, raster.metadata)
