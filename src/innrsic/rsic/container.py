"""The `.rsic` byte format: one compressed image, its codec spec and its tiles.

Layout (little-endian), version 1::

    offset  size  field
    0       4     magic b"RSIC"
    4       1     format version (1)
    5       1     flags (bit 0: tile records, see below; other bits reserved, must be 0)
    6       2     length S of the codec spec
    8       4     image width
    12      4     image height
    16      4     tile width  (0 with tile height 0: the whole image is one tile)
    20      4     tile height
    24      4     length M of the metadata
    28      S     codec spec, UTF-8 (e.g. "jpeg2000:bpp=0.2")
    28+S    M     metadata, UTF-8 JSON object (M = 0: none)
    ...     4*T   tile index: payload length of each of the T tiles, row-major
    ...     4     CRC-32 of everything above (header checksum)
    ...     sum   tile payloads, in index order
    ...     4     CRC-32 of everything above (file checksum)

The header checksum lets a reader trust the declared lengths, so a damaged header, a
truncation and trailing bytes are told apart; the file checksum covers header and payload.
Declared sizes are checked against limits (`MAX_SIDE`, `MAX_PIXELS`, `MAX_TILES`,
`MAX_SPEC_BYTES`, `MAX_METADATA_BYTES`) before anything is allocated; docs/limits.md lists every
limit and the error each kind of hostile input ends in.

Tiles are ``tile width x tile height`` pixels from the top-left corner, the last column and row
clipped to the image (`raster.tiling.TileGrid`); each tile's payload is coded on its own, so a
reader decodes any region from the tiles that intersect it.

**Tile records** (flag bit 0, `FLAG_TILE_RECORDS`). Without the flag a tile's payload is the
codec's payload, as it always was. With it, every tile's payload is a record::

    4     CRC-32 of the rest of the record (so a region is verified without reading the file)
    4     length K of the nodata mask (0: the tile has no nodata pixel)
    K     nodata mask: zlib-compressed bits, 1 = nodata, one row of the tile after another,
          each row padded to whole bytes, most significant bit first (numpy.packbits along
          rows, `pack_mask`)
    ...   codec payload; empty when every pixel of the tile is nodata (nothing is coded)

The nodata value itself, georeferencing and the sample mapping live in the metadata (see
`raster.geotiff`). Readers that predate the flag refuse such files by name ("reserved flags"),
rather than handing records to a codec; the version stays 1 because the byte layout above is
unchanged. Files are written tile by tile (`ContainerWriter`) and read tile by tile
(`ContainerReader`), so neither side holds more than one tile's payload.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from innrsic.atomic import atomic_output
from innrsic.errors import (
    BadMagicError,
    ChecksumError,
    ContainerError,
    HeaderError,
    TrailingDataError,
    TruncatedError,
    UnsupportedVersionError,
)
from innrsic.metrics.rate import bits_per_pixel
from innrsic.raster.tiling import TileGrid

MAGIC = b"RSIC"
FORMAT_VERSION = 1
SUFFIX = ".rsic"
FLAG_TILE_RECORDS = 0x01
KNOWN_FLAGS = FLAG_TILE_RECORDS
_FIXED = struct.Struct("<4sBBHIIIII")
_U32 = struct.Struct("<I")
_RECORD = struct.Struct("<II")

MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 31
MAX_TILES = 1 << 20
MAX_SPEC_BYTES = 4096
MAX_METADATA_BYTES = 1 << 20
_CHUNK = 1 << 22


class _Layout:
    """Image size, tile size and flags, as the header holds them, and what follows from them."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    flags: int

    @property
    def grid(self) -> TileGrid:
        """The tile grid."""
        return TileGrid(self.width, self.height, self.tile_width, self.tile_height)

    @property
    def tile_records(self) -> bool:
        """Whether payloads are tile records (`FLAG_TILE_RECORDS`) rather than codec payloads."""
        return bool(self.flags & FLAG_TILE_RECORDS)


@dataclass(frozen=True)
class Container(_Layout):
    """A decoded `.rsic` file: codec spec, image size, tile grid, payloads and metadata."""

    codec_spec: str
    width: int
    height: int
    payloads: tuple[bytes, ...]
    tile_width: int = 0
    tile_height: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    flags: int = 0

    def __post_init__(self) -> None:
        _check_geometry(self.width, self.height, self.tile_width, self.tile_height)
        _check_flags(self.flags)
        expected = tile_count(self.width, self.height, self.tile_width, self.tile_height)
        if len(self.payloads) != expected:
            raise HeaderError(f"{len(self.payloads)} payloads given for {expected} tiles")

    @property
    def payload_size(self) -> int:
        """Total payload bytes (all tiles), excluding header and checksums."""
        return sum(len(p) for p in self.payloads)

    @property
    def payload(self) -> bytes:
        """The single payload of an untiled container."""
        if len(self.payloads) != 1:
            raise HeaderError(f"container holds {len(self.payloads)} tiles, not one payload")
        return self.payloads[0]


def tile_count(width: int, height: int, tile_width: int, tile_height: int) -> int:
    """Number of tiles in the grid (1 when untiled)."""
    if tile_width == 0:
        return 1
    return math.ceil(width / tile_width) * math.ceil(height / tile_height)


def _check_geometry(width: int, height: int, tile_width: int, tile_height: int) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise HeaderError(f"image size {width}x{height} outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise HeaderError(f"image size {width}x{height} exceeds the {MAX_PIXELS}-pixel limit")
    if (tile_width == 0) != (tile_height == 0):
        raise HeaderError(f"tile size {tile_width}x{tile_height}: both or neither must be 0")
    if tile_count(width, height, tile_width, tile_height) > MAX_TILES:
        raise HeaderError(f"tile grid {tile_width}x{tile_height} gives more than {MAX_TILES} tiles")


def _check_flags(flags: int) -> None:
    if flags & ~KNOWN_FLAGS or not 0 <= flags <= 0xFF:
        raise HeaderError(f"reserved flags are {flags:#x}, expected 0")


def _encode_text(codec_spec: str, metadata: dict[str, Any]) -> tuple[bytes, bytes]:
    spec = codec_spec.encode("utf-8")
    meta = (
        json.dumps(metadata, separators=(",", ":"), sort_keys=True).encode("utf-8")
        if metadata
        else b""
    )
    if len(spec) > MAX_SPEC_BYTES:
        raise HeaderError(f"codec spec is {len(spec)} bytes; the limit is {MAX_SPEC_BYTES}")
    if len(meta) > MAX_METADATA_BYTES:
        raise HeaderError(f"metadata is {len(meta)} bytes; the limit is {MAX_METADATA_BYTES}")
    return spec, meta


def _check_payload_length(length: int) -> None:
    if length >= 1 << 32:
        raise HeaderError("a tile payload exceeds 4 GiB")


def _header_bytes(
    spec: bytes,
    meta: bytes,
    width: int,
    height: int,
    tile_width: int,
    tile_height: int,
    flags: int,
    lengths: list[int],
) -> bytes:
    """Everything up to and including the header checksum."""
    header = b"".join(
        [
            _FIXED.pack(
                MAGIC,
                FORMAT_VERSION,
                flags,
                len(spec),
                width,
                height,
                tile_width,
                tile_height,
                len(meta),
            ),
            spec,
            meta,
            b"".join(_U32.pack(n) for n in lengths),
        ]
    )
    return header + _U32.pack(zlib.crc32(header))


def pack_container(container: Container) -> bytes:
    """Serialise a container to bytes."""
    spec, meta = _encode_text(container.codec_spec, container.metadata)
    for payload in container.payloads:
        _check_payload_length(len(payload))
    header = _header_bytes(
        spec,
        meta,
        container.width,
        container.height,
        container.tile_width,
        container.tile_height,
        container.flags,
        [len(p) for p in container.payloads],
    )
    body = header + b"".join(container.payloads)
    return body + _U32.pack(zlib.crc32(body))


@dataclass(frozen=True)
class _Header:
    codec_spec: str
    width: int
    height: int
    tile_width: int
    tile_height: int
    flags: int
    metadata: dict[str, Any]
    lengths: tuple[int, ...]
    header_end: int

    @property
    def end(self) -> int:
        """Total file size the header declares."""
        return self.header_end + sum(self.lengths) + 4


def _parse_header(head: bytes | memoryview, total: int, partial: bool = False) -> _Header:
    """Parse and verify the header from the file's first bytes (`head`; `total` is the file
    size). Raises TruncatedError with the number of bytes needed (`_NeedMore`) when `head` is
    shorter than the header but the file is not. `partial` accepts a file cut off after its
    header (`ContainerReader`)."""
    view = memoryview(head)
    if total < len(MAGIC):
        if MAGIC.startswith(bytes(view[:total])):
            raise TruncatedError(f"file is {total} bytes, shorter than the magic")
        raise BadMagicError("not an .rsic file (wrong magic bytes)")
    if bytes(view[:4]) != MAGIC:
        raise BadMagicError(f"not an .rsic file (magic {bytes(view[:4])!r}, expected {MAGIC!r})")
    if total < _FIXED.size:
        raise TruncatedError(f"file is {total} bytes, shorter than the {_FIXED.size}-byte header")
    _, version, flags, spec_len, width, height, tile_w, tile_h, meta_len = _FIXED.unpack_from(view)
    if version != FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"format version {version} is not supported (this reader knows {FORMAT_VERSION})"
        )
    if spec_len > MAX_SPEC_BYTES or meta_len > MAX_METADATA_BYTES:
        raise HeaderError(f"declared spec/metadata lengths {spec_len}/{meta_len} exceed limits")
    try:
        _check_geometry(width, height, tile_w, tile_h)
    except HeaderError as exc:
        raise HeaderError(f"{exc} (damaged or hostile header)") from exc
    tiles = tile_count(width, height, tile_w, tile_h)
    index_offset = _FIXED.size + spec_len + meta_len
    header_end = index_offset + 4 * tiles + 4
    if total < header_end:
        raise TruncatedError(f"file is {total} bytes; its header alone declares {header_end}")
    if len(view) < header_end:
        raise _NeedMore(header_end)
    if zlib.crc32(view[: header_end - 4]) != _U32.unpack_from(view, header_end - 4)[0]:
        raise ChecksumError("header checksum mismatch: the header is damaged")
    _check_flags(flags)
    try:
        spec = bytes(view[_FIXED.size : _FIXED.size + spec_len]).decode("utf-8")
        meta_bytes = bytes(view[_FIXED.size + spec_len : index_offset])
        metadata = json.loads(meta_bytes.decode("utf-8")) if meta_bytes else {}
    # ValueError: also integers over Python's digit limit; RecursionError: deep nesting.
    except (ValueError, RecursionError) as exc:
        raise HeaderError(f"codec spec or metadata is not valid text: {exc}") from exc
    if not isinstance(metadata, dict):
        raise HeaderError("metadata must be a JSON object")
    lengths = struct.unpack_from(f"<{tiles}I", view, index_offset)
    header = _Header(spec, width, height, tile_w, tile_h, flags, metadata, lengths, header_end)
    if total < header.end and not partial:
        raise TruncatedError(f"file is {total} bytes; header declares {header.end}")
    if total > header.end:
        raise TrailingDataError(f"{total - header.end} unexpected bytes after the end of the file")
    return header


class _NeedMore(Exception):
    """Internal: the header is longer than the bytes read so far."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def read_container(data: bytes) -> Container:
    """Parse and verify `.rsic` bytes; each defect raises its own ContainerError subclass."""
    view = memoryview(data)
    header = _parse_header(view, len(view))
    end = header.end
    if zlib.crc32(view[: end - 4]) != _U32.unpack_from(view, end - 4)[0]:
        raise ChecksumError("file checksum mismatch: the payload is damaged")
    payloads = []
    offset = header.header_end
    for length in header.lengths:
        payloads.append(bytes(view[offset : offset + length]))
        offset += length
    return Container(
        header.codec_spec,
        header.width,
        header.height,
        tuple(payloads),
        header.tile_width,
        header.tile_height,
        header.metadata,
        header.flags,
    )


def file_bpp(path: str | os.PathLike[str]) -> tuple[float, float]:
    """(total bpp, payload-only bpp) of a `.rsic` file, from its size on disk and its header."""
    with open(path, "rb") as handle:
        data = handle.read()
    container = read_container(data)
    height, width = container.height, container.width
    return (
        bits_per_pixel(len(data), height, width),
        bits_per_pixel(container.payload_size, height, width),
    )


class ContainerReader(_Layout):
    """A `.rsic` file opened for random access: header and tile index are read and verified
    on opening (including truncation and trailing bytes); tile payloads are read on demand.

    `read_tile` does not check the file checksum; call `verify` for that (one streaming pass),
    or rely on the per-tile checksums of tile records (`unpack_tile_record`).

    `partial` opens a file cut off after its header too: the tiles stored whole before the cut
    read as usual, `missing_tiles` lists the others, and reading one of them or `verify`
    raises TruncatedError naming them (`truncation_text`).
    """

    def __init__(self, path: str | os.PathLike[str], *, partial: bool = False) -> None:
        self.path = os.fspath(path)
        self._handle: BinaryIO = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self.file_size = os.fstat(self._handle.fileno()).st_size
            head = self._handle.read(min(self.file_size, 1 << 16))
            try:
                header = _parse_header(head, self.file_size, partial)
            except _NeedMore as more:
                self._handle.seek(0)
                header = _parse_header(self._handle.read(more.size), self.file_size, partial)
        except BaseException:
            self._handle.close()
            raise
        self._header = header
        self.codec_spec = header.codec_spec
        self.width, self.height = header.width, header.height
        self.tile_width, self.tile_height = header.tile_width, header.tile_height
        self.flags = header.flags
        self.metadata = header.metadata
        self.tile_lengths = header.lengths
        self._offsets = np.concatenate(
            ([header.header_end], header.header_end + np.cumsum(header.lengths, dtype=np.int64))
        )
        self.declared_size = header.end

    @property
    def missing_tiles(self) -> list[int]:
        """Tiles whose bytes a truncated file lacks (empty for a whole file)."""
        return [int(i) for i in np.flatnonzero(self._offsets[1:] > self.file_size)]

    def truncation_text(self, wanted: Sequence[int] | None = None) -> str:
        """Why tiles `wanted` (default: all) cannot be read from a truncated file: the cut, the
        tiles missing among them, and the whole tile rows that are intact."""
        missing = self.missing_tiles
        lost = missing if wanted is None else sorted(set(wanted) & set(missing))
        verb = "are" if len(lost) > 1 else "is"
        text = (f"file is {self.file_size} bytes; header declares {self.declared_size}: "
                f"truncated, {_ranges(lost)} of {len(self.tile_lengths)} {verb} missing")
        rows = (missing[0] if missing else len(self.tile_lengths)) // self.grid.columns
        if self.tile_records and rows:
            text += (f"; tiles before {missing[0]} are intact (region 0,0,{self.width},"
                     f"{min(self.height, rows * self.tile_height)} holds whole rows of them)")
        return text

    @property
    def payload_size(self) -> int:
        """Total payload bytes (all tiles)."""
        return sum(self.tile_lengths)

    def check_present(self, indices: Sequence[int]) -> None:
        """TruncatedError (`truncation_text`) when a truncated file lacks any of `indices`."""
        if set(indices) & set(self.missing_tiles):
            raise TruncatedError(self.truncation_text(indices))

    def read_tile(self, index: int) -> bytes:
        """The stored payload (or record) of tile `index`."""
        if not 0 <= index < len(self.tile_lengths):
            raise IndexError(f"tile {index} outside a grid of {len(self.tile_lengths)} tiles")
        if self._offsets[index + 1] > self.file_size:
            raise TruncatedError(self.truncation_text([index]))
        self._handle.seek(int(self._offsets[index]))
        data = self._handle.read(self.tile_lengths[index])
        if len(data) != self.tile_lengths[index]:
            raise TruncatedError(f"{self.path}: file shrank while reading tile {index}")
        return data

    def verify(self) -> None:
        """Check the file checksum, reading the file in chunks (bounded memory)."""
        if self.file_size < self.declared_size:
            raise TruncatedError(self.truncation_text())
        self._handle.seek(0)
        crc, remaining = 0, self.file_size - 4
        while remaining:
            chunk = self._handle.read(min(_CHUNK, remaining))
            if not chunk:
                raise TruncatedError(f"{self.path}: file shrank while verifying it")
            crc = zlib.crc32(chunk, crc)
            remaining -= len(chunk)
        if crc != _U32.unpack(self._handle.read(4))[0]:
            raise ChecksumError("file checksum mismatch: the payload is damaged"
                                + self._damaged_text())

    def _damaged_text(self) -> str:
        """Which tile records fail their own checksums (when the file has them)."""
        if not self.tile_records:
            return ""
        damaged = []
        for index in range(len(self.tile_lengths)):
            try:
                unpack_tile_record(self.read_tile(index), index)
            except ContainerError:
                damaged.append(index)
        if not damaged:
            return " (every tile record is intact: the file's final checksum is damaged)"
        verb = "fail their record checksums" if len(damaged) > 1 else "fails its record checksum"
        return (f"; {_ranges(damaged)} of {len(self.tile_lengths)} {verb}, the others are "
                "intact (decode a region within them)")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ContainerWriter:
    """Writes a `.rsic` file tile by tile, atomically, holding one tile payload at a time.

    Use as a context manager; call `add` once per tile in row-major order. The header is
    written with a zeroed index first and filled in at the end; the file checksum is combined
    from the header's and the payloads' CRCs (`crc32_combine`), so nothing is read back. On an
    exception, or if the number of tiles added is wrong, no file is left behind.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        codec_spec: str,
        width: int,
        height: int,
        tile_width: int = 0,
        tile_height: int = 0,
        metadata: dict[str, Any] | None = None,
        flags: int = 0,
    ) -> None:
        _check_geometry(width, height, tile_width, tile_height)
        _check_flags(flags)
        self.path = path
        self._spec, self._meta = _encode_text(codec_spec, metadata or {})
        self._fields = (width, height, tile_width, tile_height, flags)
        self.tiles = tile_count(width, height, tile_width, tile_height)
        self._lengths: list[int] = []
        self._payload_crc = 0
        self._stack = contextlib.ExitStack()
        self._handle: BinaryIO | None = None
        self.file_bytes = 0

    @property
    def payload_bytes(self) -> int:
        """Payload bytes added so far."""
        return sum(self._lengths)

    def _header(self) -> bytes:
        width, height, tile_width, tile_height, flags = self._fields
        lengths = self._lengths if len(self._lengths) == self.tiles else [0] * self.tiles
        return _header_bytes(
            self._spec, self._meta, width, height, tile_width, tile_height, flags, lengths
        )

    def __enter__(self) -> ContainerWriter:
        self._handle = self._stack.enter_context(atomic_output(self.path))
        self._handle.write(self._header())
        return self

    def add(self, payload: bytes) -> None:
        """Append the next tile's payload."""
        if self._handle is None:
            raise RuntimeError("ContainerWriter.add outside its `with` block")
        if len(self._lengths) == self.tiles:
            raise HeaderError(f"more than the {self.tiles} tiles of the grid added")
        _check_payload_length(len(payload))
        self._handle.write(payload)
        self._payload_crc = zlib.crc32(payload, self._payload_crc)
        self._lengths.append(len(payload))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc_type is None:
            try:
                self._finish()
            except BaseException as error:
                if not self._stack.__exit__(type(error), error, error.__traceback__):
                    raise
                return False
        return bool(self._stack.__exit__(exc_type, exc, traceback))

    def _finish(self) -> None:
        assert self._handle is not None
        if len(self._lengths) != self.tiles:
            raise HeaderError(f"{len(self._lengths)} tiles added for a grid of {self.tiles}")
        header = self._header()
        self._handle.seek(0)
        self._handle.write(header)
        self._handle.seek(0, os.SEEK_END)
        crc = crc32_combine(zlib.crc32(header), self._payload_crc, self.payload_bytes)
        self._handle.write(_U32.pack(crc))
        self.file_bytes = len(header) + self.payload_bytes + 4


def _ranges(indices: Sequence[int]) -> str:
    """``tile 3`` or ``tiles 3-7, 9``."""
    spans: list[list[int]] = []
    for index in indices:
        if spans and index == spans[-1][1] + 1:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return f"tile{'s' if len(indices) > 1 else ''} {text}"


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)`` (zlib's algorithm:
    appending ``len(B)`` zero bytes is a linear map on the CRC, applied by repeated squaring of
    its 32x32 matrix over GF(2))."""

    def times(matrix: list[int], vector: int) -> int:
        total, i = 0, 0
        while vector:
            if vector & 1:
                total ^= matrix[i]
            vector >>= 1
            i += 1
        return total

    def square(matrix: list[int]) -> list[int]:
        return [times(matrix, row) for row in matrix]

    if length2 <= 0:
        return crc1
    zeros = [0xEDB88320] + [1 << n for n in range(31)]  # one zero bit
    for _ in range(3):
        zeros = square(zeros)  # then 2, 4 and 8 zero bits: one zero byte
    while length2:
        if length2 & 1:
            crc1 = times(zeros, crc1)
        length2 >>= 1
        if length2:
            zeros = square(zeros)  # twice as many zero bytes
    return crc1 ^ crc2


@dataclass(frozen=True)
class TileRecord:
    """One tile of a container with `FLAG_TILE_RECORDS`: codec payload and nodata mask."""

    payload: bytes
    mask: bytes = b""

    @property
    def coded(self) -> bool:
        """False when every pixel of the tile is nodata and nothing was coded."""
        return bool(self.payload)


def pack_tile_record(record: TileRecord) -> bytes:
    """Serialise a tile record (checksum, mask length, mask, codec payload)."""
    body = _U32.pack(len(record.mask)) + record.mask + record.payload
    return _U32.pack(zlib.crc32(body)) + body


def unpack_tile_record(data: bytes, index: int = 0) -> TileRecord:
    """Parse and verify a tile record; damage raises ChecksumError naming tile `index`."""
    if len(data) < _RECORD.size:
        raise TruncatedError(f"tile {index}: record of {len(data)} bytes is too short")
    crc, mask_len = _RECORD.unpack_from(data)
    if zlib.crc32(memoryview(data)[4:]) != crc:
        raise ChecksumError(f"tile {index} checksum mismatch: the payload is damaged")
    if _RECORD.size + mask_len > len(data):
        raise HeaderError(f"tile {index}: mask of {mask_len} bytes overruns the record")
    end = _RECORD.size + mask_len
    return TileRecord(data[end:], data[_RECORD.size : end])


def pack_mask(mask: np.ndarray) -> bytes:
    """A (height, width) boolean nodata mask as zlib(row-wise packbits); empty when nothing is
    set."""
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"mask must be a 2-D bool array, got {mask.shape} {mask.dtype}")
    if not mask.any():
        return b""
    return zlib.compress(np.packbits(mask, axis=1).tobytes(), 9)


def unpack_mask(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of `pack_mask` for a tile of `height` x `width` (empty data: all False)."""
    if not data:
        return np.zeros((height, width), bool)
    row_bytes = (width + 7) // 8
    expected = height * row_bytes
    try:
        decompressor = zlib.decompressobj()
        packed = decompressor.decompress(data, expected)
        complete = decompressor.eof and not decompressor.unconsumed_tail
    except zlib.error as exc:
        raise HeaderError(f"nodata mask is not valid zlib data ({exc})") from exc
    if len(packed) != expected or not complete:
        raise HeaderError(f"nodata mask does not hold {height}x{width} bits")
    rows = np.frombuffer(packed, np.uint8).reshape(height, row_bytes)
    return np.unpackbits(rows, axis=1, count=width).astype(bool)
