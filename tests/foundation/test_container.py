from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from innrsic.errors import (
    BadMagicError,
    ChecksumError,
    HeaderError,
    TrailingDataError,
    TruncatedError,
    UnsupportedVersionError,
)
from innrsic.rsic.container import (
    MAGIC,
    Container,
    pack_container,
    read_container,
    read_container_file,
    write_container_file,
)

SAMPLE = Container("jpeg2000:bpp=0.2", 256, 250, (bytes(range(256)) * 3,), metadata={"k": 1})


def _with_crcs(header_fields: bytes, rest_after_header: bytes, spec: bytes, lengths: list[int]):
    header = header_fields + spec + b"".join(struct.pack("<I", n) for n in lengths)
    header += struct.pack("<I", zlib.crc32(header))
    body = header + rest_after_header
    return body + struct.pack("<I", zlib.crc32(body))


def test_round_trip_keeps_every_field() -> None:
    data = pack_container(SAMPLE)
    assert data[:4] == MAGIC
    assert read_container(data) == SAMPLE


def test_tiled_round_trip() -> None:
    tiled = Container("jpeg:quality=20", 300, 200, (b"a", b"bb", b"", b"dddd"), 256, 128)
    assert read_container(pack_container(tiled)) == tiled


def test_payload_bit_flip_is_checksum_error() -> None:
    data = bytearray(pack_container(SAMPLE))
    data[-20] ^= 0x01
    with pytest.raises(ChecksumError, match="payload"):
        read_container(bytes(data))


def test_header_bit_flip_in_spec_is_checksum_error() -> None:
    data = bytearray(pack_container(SAMPLE))
    data[30] ^= 0x01
    with pytest.raises(ChecksumError, match="header"):
        read_container(bytes(data))


def test_every_truncation_is_truncated_error() -> None:
    data = pack_container(SAMPLE)
    for length in range(len(data)):
        with pytest.raises(TruncatedError):
            read_container(data[:length])


def test_trailing_bytes() -> None:
    with pytest.raises(TrailingDataError, match="3 unexpected bytes"):
        read_container(pack_container(SAMPLE) + b"abc")


def test_wrong_magic() -> None:
    with pytest.raises(BadMagicError):
        read_container(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(BadMagicError):
        read_container(b"XY")


def test_unknown_version() -> None:
    data = bytearray(pack_container(SAMPLE))
    data[4] = 2
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        read_container(bytes(data))


def test_absurd_declared_size_is_refused_before_allocation() -> None:
    spec = b"jpeg"
    fields = struct.pack("<4sBBHIIIII", MAGIC, 1, 0, len(spec), 10**6, 10**6, 0, 0, 0)
    data = _with_crcs(fields, b"x", spec, [1])
    with pytest.raises(HeaderError, match=r"limit|outside"):
        read_container(data)


def test_well_formed_hand_built_file_parses() -> None:
    spec = b"jpeg"
    fields = struct.pack("<4sBBHIIIII", MAGIC, 1, 0, len(spec), 7, 5, 0, 0, 0)
    container = read_container(_with_crcs(fields, b"xyz", spec, [3]))
    assert (container.codec_spec, container.width, container.height) == ("jpeg", 7, 5)
    assert container.payload == b"xyz"


def test_file_write_is_atomic_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "a.rsic"
    size = write_container_file(path, SAMPLE)
    assert path.stat().st_size == size
    assert read_container_file(path) == SAMPLE
    assert [p.name for p in tmp_path.iterdir()] == ["a.rsic"]


def test_unpackable_container_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(HeaderError):
        write_container_file(tmp_path / "x.rsic", Container("x" * 5000, 4, 4, (b"",)))
    assert list(tmp_path.iterdir()) == []
