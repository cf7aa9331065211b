"""File-level coding: image -> codec payloads (one per tile) -> `.rsic` container, and back.

**Tiles.** An image is coded whole or as a grid of independently decodable tiles (the
container's tile grid), so `decompress_file(..., region=...)` decodes only the tiles a region
touches, and a large scene is read, coded, decoded and written one tile at a time. With a target
rate (``bpp=X``) each tile's knob is searched independently, so every tile's stored bytes (its
record and nodata mask included) land at or below X, and so does the whole payload. With
``tile="auto"`` images up to `WHOLE_IMAGE_MAX_SIDE` px per side are coded whole, larger ones in
`CONTAINER_TILE` px tiles (the measurement behind 1024: benchmarks/README.md, "Measurements
behind defaults").

**Nodata.** With a nodata value (GeoTIFF nodata, or ``nodata=`` for PNG/JPEG) the container
uses tile records (`innrsic.rsic.container`): each tile carries a compact mask of its nodata
pixels, restored exactly on decode, and a tile that is all nodata is not coded at all.
Georeferencing, nodata and the sample mapping travel in the container metadata
(`innrsic.raster.geotiff`).

**Reconstruction checksum.** A decoder that computes in floating point can return other pixels
on another platform, which the payload checksums cannot see. So the encoder stores, in the
container metadata, the CRC-32 of every tile as its own platform decodes it::

    "recon_crc32": "<8 lowercase hex digits per tile>"

one CRC-32 (zlib's) per tile in tile-index order, of the codec's decoded pixels (HxWx3 uint8,
row-major, before nodata pixels are filled; ``00000000`` for a tile with nothing coded). The
reconstruction comes from ``encode_and_reconstruct`` where a codec has it
(`innrsic.codecs.base.Reconstructing`), else from decoding the payload once. It is on by
default (``checksum=False``, ``innrsic compress --no-checksum`` leave it out; its cost:
benchmarks/README.md). Decoding checks every tile it decodes and raises
`ReconstructionMismatch` naming the first tile that differs; ``verify=False`` (``innrsic
decompress --no-verify``) skips the check. Containers without the key decode unchecked. Images
of more than `MAX_CHECKSUM_TILES` tiles are written without the key (a warning is logged), as
the metadata is limited to 1 MiB.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from innrsic.codecs import Codec, make_codec
from innrsic.codecs.base import RateTargeting, Reconstructing
from innrsic.errors import CodecError, HeaderError, ReconstructionMismatch, TilingError
from innrsic.metrics.rate import bits_per_pixel
from innrsic.raster.geotiff import (
    OUTPUT_PROFILE,
    ArraySource,
    RasterMetadata,
    RasterSource,
    WrittenRaster,
    is_geotiff,
    open_sink,
    open_source,
    restore_samples,
)
from innrsic.raster.image import validate_rgb
from innrsic.raster.tiling import TileGrid, Window, check_region
from innrsic.rsic.container import (
    FLAG_TILE_RECORDS,
    Container,
    ContainerReader,
    ContainerWriter,
    TileRecord,
    pack_mask,
    pack_tile_record,
    unpack_mask,
    unpack_tile_record,
)

CONTAINER_TILE = 1024
WHOLE_IMAGE_MAX_SIDE = 4096
MIN_CONTAINER_TILE = 64
RECONSTRUCTION_KEY = "recon_crc32"
MAX_CHECKSUM_TILES = 100_000  # 8 hex digits each: 800 kB of the container's 1 MiB of metadata
SPOOL_BYTES = 64 << 20  # payloads held in memory before compress_file spools them to disk
_HEX = re.compile(r"[0-9a-f]*")

log = logging.getLogger(__name__)

TileSize = int | Literal["auto"] | None


@dataclass(frozen=True)
class CompressResult:
    """What compressing one image produced."""

    width: int
    height: int
    file_bytes: int
    payload_bytes: int
    tile_size: int = 0
    tiles: int = 1
    knob: str | None = None
    """The knob a rate target (``bpp=``) chose, e.g. ``quality=37`` (a range over tiles)."""

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file (header and checksums included)."""
        return bits_per_pixel(self.file_bytes, self.height, self.width)

    @property
    def payload_bpp(self) -> float:
        """Bits per pixel of the tile payloads alone."""
        return bits_per_pixel(self.payload_bytes, self.height, self.width)


@dataclass(frozen=True)
class DecompressResult(WrittenRaster):
    """What decompressing one file produced."""

    tiles_decoded: int
    tiles_total: int


def resolve_tile(tile: TileSize, width: int, height: int) -> int:
    """The tile size to use: an int as given (0: whole image), "auto"/None per the module doc."""
    if tile is None or tile == "auto":
        return 0 if max(width, height) <= WHOLE_IMAGE_MAX_SIDE else CONTAINER_TILE
    if not isinstance(tile, int) or isinstance(tile, bool):
        raise TilingError(f"tile size must be an integer or 'auto', got {tile!r}")
    if tile != 0 and (tile < MIN_CONTAINER_TILE or tile % 16):
        raise TilingError(
            f"tile size {tile} must be 0 (whole image) or a multiple of 16 of at least "
            f"{MIN_CONTAINER_TILE} (whole JPEG/chroma blocks)"
        )
    return tile


def _progress(items: Iterable, total: int, enabled: bool, what: str) -> Iterable:
    if not enabled or total <= 1:
        return items
    # disable=None: shown on a terminal only, so logs and captured output stay clean.
    return tqdm(
        items, total=total, desc=what, unit="tile", file=sys.stderr, leave=False, disable=None
    )


def reconstruction_crc(image: np.ndarray) -> int:
    """The reconstruction checksum of one decoded tile (module doc)."""
    return zlib.crc32(np.ascontiguousarray(image, dtype=np.uint8).data)


def reconstruction_checksums(metadata: Mapping[str, Any], tiles: int) -> list[int] | None:
    """The per-tile CRC-32s a container's metadata carries (module doc), or None without them.

    A malformed entry raises HeaderError (skip it with ``verify=False``).
    """
    text = metadata.get(RECONSTRUCTION_KEY)
    if text is None:
        return None
    if not isinstance(text, str) or len(text) != 8 * tiles or not _HEX.fullmatch(text):
        raise HeaderError(
            f"metadata {RECONSTRUCTION_KEY!r} does not hold {tiles} CRC-32 values; decode with "
            "--no-verify (verify=False) to skip the check"
        )
    return [int(text[i : i + 8], 16) for i in range(0, len(text), 8)]


def _check_reconstruction(image: np.ndarray, index: int, expected: int) -> None:
    actual = reconstruction_crc(image)
    if actual != expected:
        raise ReconstructionMismatch(
            f"tile {index}: the decoded pixels differ from the encoder's reconstruction (CRC-32 "
            f"{actual:08x}, stored {expected:08x}): this platform's floating point (or codec "
            "library) computes differently from the encoding platform's, so the pixels would be "
            "wrong; decode with --no-verify (verify=False) to accept them anyway"
        )


def _encode_many(
    codec: Codec, images: list[np.ndarray], checksum: bool, overheads: list[int]
) -> tuple[list[bytes], list[int]]:
    """The payloads of `images` and, with `checksum`, their reconstructions' CRC-32s;
    `overheads`: the bytes stored with each payload, which a rate target counts too."""
    if checksum and isinstance(codec, Reconstructing):
        pairs = [codec.encode_and_reconstruct(image) for image in images]
        return [payload for payload, _ in pairs], [reconstruction_crc(d) for _, d in pairs]
    if isinstance(codec, RateTargeting):
        payloads = [codec.encode(im, extra) for im, extra in zip(images, overheads, strict=True)]
    else:
        payloads = [codec.encode(image) for image in images]
    shapes = [image.shape[:2] for image in images]
    crcs = (
        [reconstruction_crc(d) for d in _decode_many(codec, payloads, shapes)] if checksum else []
    )
    return payloads, crcs


def _decode_many(
    codec: Codec, payloads: list[bytes], shapes: list[tuple[int, int]]
) -> list[np.ndarray]:
    """Decode `payloads`; each decoder refuses a payload declaring other than its (h, w)."""
    return [codec.decode(p, shape=shape) for p, shape in zip(payloads, shapes, strict=True)]


@dataclass(frozen=True)
class EncodedBatch:
    """A batch of tiles as `encode_tile_batch` coded them, in order."""

    items: list[bytes]
    """Payloads (tile records when the container has them), one per tile."""
    crcs: list[int]
    """Reconstruction CRC-32s, one per tile (0 for a tile with nothing coded); empty without
    the checksum."""
    choice: str | None = None
    """The knob a rate target chose, for a batch of one coded tile (`RateTargeting`)."""


TileBatch = list[tuple[np.ndarray, np.ndarray | None]]
"""Tiles as `RasterSource.read` returns them: (HxWx3 uint8 RGB, nodata mask or None)."""

BatchEncoder = Callable[[Iterator[TileBatch], bool, bool], Iterator[EncodedBatch]]
"""``encoder(batches, records, checksum)`` codes a stream of tile batches
(`encode_tile_batch`) and yields their results in the same order."""


def encode_tile_batch(
    codec: Codec, tiles: TileBatch, records: bool, checksum: bool
) -> EncodedBatch:
    """Code one batch of tiles: the payload (or record) of each, with `checksum` its
    reconstruction CRC-32; tiles that are all nodata are not coded. A rate target counts each
    tile's record and nodata mask with its payload (`RateTargeting`)."""
    coded = [mask is None or not mask.all() for _, mask in tiles]
    masks = [pack_mask(mask) if mask is not None and code else b""
             for (_, mask), code in zip(tiles, coded, strict=True)]
    to_code = [np.ascontiguousarray(rgb) for (rgb, _), code in zip(tiles, coded, strict=True)
               if code]
    overheads = [len(pack_tile_record(TileRecord(b"", mask))) if records else 0
                 for mask, code in zip(masks, coded, strict=True) if code]
    coded_payloads, coded_crcs = _encode_many(codec, to_code, checksum, overheads)
    choice = codec.last_choice if isinstance(codec, RateTargeting) else None
    payloads, tile_crcs = iter(coded_payloads), iter(coded_crcs)
    items: list[bytes] = []
    crcs: list[int] = []
    for code, mask in zip(coded, masks, strict=True):
        payload = next(payloads) if code else b""
        if checksum:
            crcs.append(next(tile_crcs) if code else 0)
        items.append(pack_tile_record(TileRecord(payload, mask)) if records else payload)
    return EncodedBatch(items, crcs, choice if len(to_code) == 1 else None)


def encode_here(
    codec: Codec, batches: Iterator[TileBatch], records: bool, checksum: bool
) -> Iterator[EncodedBatch]:
    """The `BatchEncoder` of this process: each batch in turn."""
    return (encode_tile_batch(codec, tiles, records, checksum) for tiles in batches)


def _encode_tiles(
    source: RasterSource,
    grid: TileGrid,
    codec: Codec,
    records: bool,
    progress: bool,
    crcs: list[int] | None = None,
    choices: list[str] | None = None,
    encoder: BatchEncoder | None = None,
) -> Iterator[bytes]:
    """Read and encode every tile; iterate for the payload (or record) of each, in order.

    With `crcs`, each tile's reconstruction CRC-32 is appended to it (0 for a tile with nothing
    coded); with `choices`, the knob a rate target chose for each coded tile (`RateTargeting`
    codecs). `encoder` codes the batches elsewhere (`innrsic.rsic.tile_parallel`); by
    default they are coded here, one after the other.
    """
    checksum = crcs is not None
    encode = encoder or partial(encode_here, codec)

    def payloads() -> Iterator[bytes]:
        windows = ([window] for window in grid)
        batches = ([source.read(window) for window in batch] for batch in windows)
        for encoded in encode(batches, records, checksum):
            if choices is not None and encoded.choice is not None:
                choices.append(encoded.choice)
            if crcs is not None:
                crcs.extend(encoded.crcs)
            yield from encoded.items

    return iter(_progress(payloads(), len(grid), progress, "compress"))


def _checksum_wanted(checksum: bool, grid: TileGrid) -> bool:
    if checksum and len(grid) > MAX_CHECKSUM_TILES:
        log.warning(
            "%d tiles: more than %d, so no reconstruction checksum is stored",
            len(grid),
            MAX_CHECKSUM_TILES,
        )
        return False
    return checksum


def _with_checksums(metadata: dict[str, Any], crcs: list[int] | None) -> dict[str, Any]:
    if crcs is None:
        return metadata
    return {**metadata, RECONSTRUCTION_KEY: "".join(f"{crc:08x}" for crc in crcs)}


def compress_image(
    image: np.ndarray,
    codec: Codec | str,
    tile: TileSize = 0,
    nodata: float | None = None,
    *,
    checksum: bool = True,
) -> Container:
    """Encode an HxWx3 uint8 image into a container held in memory (whole image by default).

    `codec`: a codec or its spec (``"jpeg2000:bpp=0.2"``, `make_codec`); `tile` as in
    `compress_file`; `nodata` marks pixels whose three channels all equal it; `checksum`
    stores the reconstruction checksum (module doc).
    """
    codec = make_codec(codec)
    validate_rgb(image)
    height, width = image.shape[:2]
    size = resolve_tile(tile, width, height)
    source = ArraySource(image, nodata)
    records = size > 0 or nodata is not None
    grid = TileGrid(width, height, size, size)
    crcs: list[int] | None = [] if _checksum_wanted(checksum, grid) else None
    payloads = tuple(_encode_tiles(source, grid, codec, records, False, crcs))
    return Container(
        codec.spec,
        width,
        height,
        payloads,
        size,
        size,
        _with_checksums(source.metadata.to_json(), crcs),
        FLAG_TILE_RECORDS if records else 0,
    )


def compress_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    codec: Codec | str,
    tile: TileSize = "auto",
    *,
    bands: Sequence[int] | None = None,
    scale: tuple[float, float] | Literal["auto"] | None = None,
    nodata: float | None = None,
    progress: bool = False,
    checksum: bool = True,
    encoder: BatchEncoder | None = None,
) -> CompressResult:
    """Read an image file tile by tile, encode each tile and write the `.rsic` file atomically.

    `codec`: a codec or its spec (``"jpeg2000:bpp=0.2"``, `make_codec`). `tile`: tile side in
    px (a multiple of 16, at least 64), 0 for the whole image, "auto" for the default (module
    doc). TIFF/GeoTIFF sources are read one tile at a time, so memory does
    not grow with the scene; PNG/JPEG are read whole. `bands`, `scale` and `nodata` map the
    source samples as `innrsic.raster.geotiff` documents; the mapping, nodata and georeferencing are
    stored in the container. `progress` shows a bar over tiles on stderr. `checksum` stores
    the reconstruction checksum (module doc); as it belongs in the header, which precedes the
    payloads, the payloads are first collected in a temporary file (in memory up to
    `SPOOL_BYTES`, then on disk beside `target`). `encoder` codes the tiles elsewhere, e.g. on
    a cluster's workers (`innrsic.rsic.tile_parallel.cluster_encoder`): the file is the same,
    byte for byte, as coding them here.
    """
    codec = make_codec(codec)
    with open_source(source, bands, scale, nodata) as raster:
        width, height = raster.width, raster.height
        size = resolve_tile(tile, width, height)
        records = size > 0 or raster.metadata.nodata is not None
        grid = TileGrid(width, height, size, size)
        crcs: list[int] | None = [] if _checksum_wanted(checksum, grid) else None
        choices: list[str] = []
        payloads = _encode_tiles(raster, grid, codec, records, progress, crcs, choices, encoder)
        writer = _spool_and_write(target, payloads, lambda: ContainerWriter(
            target, codec.spec, width, height, size, size,
            _with_checksums(raster.metadata.to_json(), crcs), FLAG_TILE_RECORDS if records else 0,
        ))
    return CompressResult(
        width, height, writer.file_bytes, writer.payload_bytes, size, len(grid),
        knob_summary(choices),
    )


def _spool_and_write(
    target: str | os.PathLike[str],
    payloads: Iterator[bytes],
    make_writer: Callable[[], ContainerWriter],
) -> ContainerWriter:
    """Collect `payloads` in a temporary file beside `target` (in memory up to `SPOOL_BYTES`),
    then add them to the writer `make_writer` opens once all are coded (its header needs
    what coding them found, e.g. the reconstruction checksums); return that writer."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    lengths: list[int] = []
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES, dir=Path(target).parent) as spool:
        for payload in payloads:
            spool.write(payload)
            lengths.append(len(payload))
        spool.seek(0)
        with make_writer() as writer:
            for length in lengths:
                writer.add(spool.read(length))
    return writer


def knob_summary(choices: Sequence[str]) -> str | None:
    """``quality=37`` for one choice (or all equal), ``quality=35..38`` over several tiles."""
    if not choices:
        return None
    name = choices[0].split("=", 1)[0]
    values = sorted({float(choice.split("=", 1)[1]) for choice in choices})
    if len(values) == 1:
        return choices[0]
    return f"{name}={values[0]:.4g}..{values[-1]:.4g}"


def _fill_value(metadata: RasterMetadata) -> np.ndarray:
    """The 8-bit RGB value nodata pixels take before the samples are restored."""
    if metadata.nodata is None:
        return np.zeros(3, np.uint8)
    bands = len(metadata.mapping.bands)
    samples = np.full((bands, 1, 1), metadata.nodata, np.float64)
    return metadata.mapping.to_rgb(samples)[0, 0]


def decode_region(
    read_tile: Callable[[int], bytes],
    grid: TileGrid,
    records: bool,
    codec: Codec,
    region: Window,
    metadata: RasterMetadata,
    checksums: Sequence[int] | None,
    progress: bool = False,
) -> Iterator[tuple[Window, np.ndarray, np.ndarray | None]]:
    """Decode the tiles `region` touches; yield, per tile, its part of `region`: (that window,
    relative to `region`'s corner; its HxWx3 uint8 pixels; its nodata mask or None). With
    `checksums` (one CRC-32 per tile of the grid), check each decoded tile against its own."""
    tiles = _decode_tiles(
        read_tile, grid, records, codec, grid.indices(region), metadata, checksums, progress
    )
    for window, image, mask in tiles:
        part = window.intersection(region)
        assert part is not None
        local = part.relative_to(window).slices
        yield part.relative_to(region), image[local], None if mask is None else mask[local]


def _decode_tiles(
    read_tile: Callable[[int], bytes],
    grid: TileGrid,
    records: bool,
    codec: Codec,
    indices: Sequence[int],
    metadata: RasterMetadata,
    checksums: Sequence[int] | None,
    progress: bool,
) -> Iterator[tuple[Window, np.ndarray, np.ndarray | None]]:
    """Decode tiles `indices`: yield (tile window, HxWx3 uint8, nodata mask or None)."""
    fill = _fill_value(metadata)
    for batch in ([index] for index in _progress(indices, len(indices), progress, "decompress")):
        tiles = []
        for index in batch:
            data = read_tile(index)
            record = unpack_tile_record(data, index) if records else TileRecord(data)
            tiles.append((index, grid.window(index), record))
        coded = [(w, r) for _, w, r in tiles if r.coded]
        decoded = iter(
            _decode_many(
                codec, [r.payload for _, r in coded], [(w.height, w.width) for w, _ in coded]
            )
        )
        for index, window, record in tiles:
            expected = (window.height, window.width, 3)
            if record.coded:
                image = next(decoded)
                if not image.flags.writeable:
                    image = image.copy()
                if image.shape != expected:
                    raise CodecError(
                        f"tile {index} decoded to {image.shape}, header says {expected}"
                    )
                if checksums is not None:
                    _check_reconstruction(image, index, checksums[index])
            else:
                image = np.broadcast_to(fill, expected).copy()
            mask = None
            if records and metadata.nodata is not None:
                mask = (
                    unpack_mask(record.mask, window.height, window.width)
                    if record.coded
                    else np.ones(expected[:2], bool)
                )
                image[mask] = fill
            yield window, image, mask




def decompress_container(
    container: Container,
    codec: Codec | str | None = None,
    region: Window | None = None,
    *,
    verify: bool = True,
    weights: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Decode a container held in memory (or `region` of it) to an HxWx3 uint8 image.

    Nodata pixels come back exactly. For a source that was scaled from another sample type
    or reduced from one band, this is the 8-bit RGB the codec saw; `decompress_file` to a
    TIFF restores the source samples. `verify` checks the decoded tiles against the
    reconstruction checksum when the container has one (ReconstructionMismatch, module doc).
    `codec`: a codec or a spec to decode with instead of the container's spec; `weights`: where
    a learned codec's weights are looked for first (`make_codec`).
    """
    codec = make_codec(container.codec_spec if codec is None else codec, weights)
    metadata = RasterMetadata.from_json(container.metadata)
    region = check_region(region, container.width, container.height)
    grid = container.grid
    checksums = reconstruction_checksums(container.metadata, len(grid)) if verify else None
    out = np.empty((region.height, region.width, 3), np.uint8)
    parts = decode_region(
        container.payloads.__getitem__,
        grid,
        container.tile_records,
        codec,
        region,
        metadata,
        checksums,
    )
    for part, rgb, mask in parts:
        if metadata.mapping.identity and len(metadata.mapping.bands) == 3:
            rgb = restore_samples(rgb, mask, metadata).transpose(1, 2, 0)
        out[part.slices] = rgb
    return out


def decompress_file(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    codec: Codec | str | None = None,
    region: Window | None = None,
    *,
    progress: bool = False,
    tiff_compression: str | None = OUTPUT_PROFILE.compress,
    verify: bool = True,
    weights: str | os.PathLike[str] | None = None,
) -> DecompressResult:
    """Decode a `.rsic` file, or only `region` of it, tile by tile into an image file.

    Only the tiles that intersect `region` are read and decoded. A full decode checks the file
    checksum first (one streaming pass); a region decode of a file with tile records relies on
    the header's and its tiles' checksums, so it also reads a truncated file whose tiles it
    needs are whole (else TruncatedError names those missing). A .tif/.tiff target is written
    window by window with georeferencing (moved to the region's corner), nodata, band
    descriptions and the source sample type restored; PNG/JPEG targets are assembled whole and
    carry none of those (`DecompressResult.georeference_dropped` says when some was dropped).
    `verify` checks each decoded tile against the reconstruction checksum when the file has one
    (ReconstructionMismatch, module doc). `codec` (or a spec) replaces the file's; `weights`:
    where a learned codec's weights are looked for first (`make_codec`, ``--weights``).
    """
    with ContainerReader(source, partial=True) as reader:
        codec = make_codec(reader.codec_spec if codec is None else codec, weights)
        metadata = RasterMetadata.from_json(reader.metadata)
        full = region is None or (region.width, region.height) == (reader.width, reader.height)
        region = check_region(region, reader.width, reader.height)
        if full or not reader.tile_records:
            reader.verify()
        grid = reader.grid
        indices = grid.indices(region)
        reader.check_present(indices)
        checksums = reconstruction_checksums(reader.metadata, len(grid)) if verify else None
        block = reader.tile_width if reader.tile_width else OUTPUT_PROFILE.block
        with open_sink(
            target,
            region.width,
            region.height,
            metadata.for_window(region),
            block,
            tiff_compression,
        ) as sink:
            parts = decode_region(
                reader.read_tile,
                grid,
                reader.tile_records,
                codec,
                region,
                metadata,
                checksums,
                progress,
            )
            for part, rgb, mask in parts:
                sink.write(part, rgb, mask)
    dropped = metadata.georeference is not None and not is_geotiff(target)
    return DecompressResult(region=region, georeference_dropped=dropped,
                            tiles_decoded=len(indices), tiles_total=len(grid))
