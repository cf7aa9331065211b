"""The `.rsic` byte format: one compressed image, its codec spec and its tiles.

Layout (little-endian), version 1::

    offset  size  field
    0       4     magic b"RSIC"
    4       1     format version (1)
    5       1     flags (reserved, must be 0)
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
Declared sizes are checked against limits before anything is allocated.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from innrsic.atomic import write_bytes_atomic
from innrsic.errors import (
    BadMagicError,
    ChecksumError,
    HeaderError,
    TrailingDataError,
    TruncatedError,
    UnsupportedVersionError,
)

MAGIC = b"RSIC"
FORMAT_VERSION = 1
SUFFIX = ".rsic"
_FIXED = struct.Struct("<4sBBHIIIII")
_U32 = struct.Struct("<I")

MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 31
MAX_TILES = 1 << 20
MAX_SPEC_BYTES = 4096
MAX_METADATA_BYTES = 1 << 20


@dataclass(frozen=True)
class Container:
    """A decoded `.rsic` file: codec spec, image size, tile grid, payloads and metadata."""

    codec_spec: str
    width: int
    height: int
    payloads: tuple[bytes, ...]
    tile_width: int = 0
    tile_height: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_geometry(self.width, self.height, self.tile_width, self.tile_height)
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


def pack_container(container: Container) -> bytes:
    """Serialise a container to bytes."""
    spec = container.codec_spec.encode("utf-8")
    meta = (
        json.dumps(container.metadata, separators=(",", ":"), sort_keys=True).encode("utf-8")
        if container.metadata
        else b""
    )
    if len(spec) > MAX_SPEC_BYTES:
        raise HeaderError(f"codec spec is {len(spec)} bytes; the limit is {MAX_SPEC_BYTES}")
    if len(meta) > MAX_METADATA_BYTES:
        raise HeaderError(f"metadata is {len(meta)} bytes; the limit is {MAX_METADATA_BYTES}")
    for payload in container.payloads:
        if len(payload) >= 1 << 32:
            raise HeaderError("a tile payload exceeds 4 GiB")
    header = b"".join(
        [
            _FIXED.pack(
                MAGIC,
                FORMAT_VERSION,
                0,
                len(spec),
                container.width,
                container.height,
                container.tile_width,
                container.tile_height,
                len(meta),
            ),
            spec,
            meta,
            b"".join(_U32.pack(len(p)) for p in container.payloads),
        ]
    )
    header += _U32.pack(zlib.crc32(header))
    body = header + b"".join(container.payloads)
    return body + _U32.pack(zlib.crc32(body))


def read_container(data: bytes) -> Container:
    """Parse and verify `.rsic` bytes; each defect raises its own ContainerError subclass."""
    view = memoryview(data)
    if len(view) < len(MAGIC):
        if MAGIC.startswith(bytes(view)):
            raise TruncatedError(f"file is {len(view)} bytes, shorter than the magic")
        raise BadMagicError("not an .rsic file (wrong magic bytes)")
    if bytes(view[:4]) != MAGIC:
        raise BadMagicError(f"not an .rsic file (magic {bytes(view[:4])!r}, expected {MAGIC!r})")
    if len(view) < _FIXED.size:
        raise TruncatedError(
            f"file is {len(view)} bytes, shorter than the {_FIXED.size}-byte header"
        )
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
    if len(view) < header_end:
        raise TruncatedError(f"file is {len(view)} bytes; its header alone declares {header_end}")
    if zlib.crc32(view[: header_end - 4]) != _U32.unpack_from(view, header_end - 4)[0]:
        raise ChecksumError("header checksum mismatch: the header is damaged")
    if flags != 0:
        raise HeaderError(f"reserved flags are {flags:#x}, expected 0")
    try:
        spec = bytes(view[_FIXED.size : _FIXED.size + spec_len]).decode("utf-8")
        meta_bytes = bytes(view[_FIXED.size + spec_len : index_offset])
        metadata = json.loads(meta_bytes.decode("utf-8")) if meta_bytes else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeaderError(f"codec spec or metadata is not valid text: {exc}") from exc
    if not isinstance(metadata, dict):
        raise HeaderError("metadata must be a JSON object")
    lengths = [_U32.unpack_from(view, index_offset + 4 * i)[0] for i in range(tiles)]
    end = header_end + sum(lengths) + 4
    if len(view) < end:
        raise TruncatedError(f"file is {len(view)} bytes; header declares {end}")
    if len(view) > end:
        raise TrailingDataError(f"{len(view) - end} unexpected bytes after the end of the file")
    if zlib.crc32(view[: end - 4]) != _U32.unpack_from(view, end - 4)[0]:
        raise ChecksumError("file checksum mismatch: the payload is damaged")
    payloads = []
    offset = header_end
    for length in lengths:
        payloads.append(bytes(view[offset : offset + length]))
        offset += length
    return Container(spec, width, height, tuple(payloads), tile_w, tile_h, metadata)


def read_container_file(path: str | os.PathLike[str]) -> Container:
    """Read and verify a `.rsic` file."""
    with open(path, "rb") as handle:
        return read_container(handle.read())


def write_container_file(path: str | os.PathLike[str], container: Container) -> int:
    """Write a container atomically; returns the number of bytes written."""
    data = pack_container(container)
    write_bytes_atomic(path, data)
    return len(data)
