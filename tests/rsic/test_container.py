"""The `.rsic` byte format: round trips, checksums, truncation, magic and version, declared
sizes, atomic files; the streaming reader and writer, tile records and nodata masks."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
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
    FLAG_TILE_RECORDS,
    MAGIC,
    Container,
    ContainerReader,
    ContainerWriter,
    TileRecord,
    crc32_combine,
    pack_container,
    pack_mask,
    pack_tile_record,
    read_container,
    unpack_mask,
    unpack_tile_record,
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


def test_overhead_is_what_the_readme_states() -> None:
    """Issue 32 item 17: 36 bytes + spec + metadata + 4 per tile; 40 + spec untiled without
    metadata (56 for jpeg2000:bpp=0.2), 26 more for one reconstruction CRC-32."""
    spec = "jpeg2000:bpp=0.2"
    untiled = Container(spec, 256, 256, (b"x" * 1000,))
    assert len(pack_container(untiled)) - 1000 == 40 + len(spec) == 56
    checked = Container(spec, 256, 256, (b"x" * 1000,), metadata={"recon_crc32": "0" * 8})
    assert len(pack_container(checked)) - 1000 == 56 + 26
    tiled = Container(spec, 256, 256, (b"x",) * 4, 128, 128, metadata={"recon_crc32": "0" * 32})
    assert len(pack_container(tiled)) - 4 == 36 + len(spec) + (18 + 8 * 4) + 4 * 4


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


def test_unpackable_container_is_refused() -> None:
    with pytest.raises(HeaderError):
        pack_container(Container("x" * 5000, 4, 4, (b"",)))


# --- streaming reader and writer, tile records and masks --------------------------------------


def test_crc32_combine_matches_zlib() -> None:
    rng = np.random.default_rng(2)
    for n1, n2 in [(0, 5), (3, 0), (1, 1), (100, 12345), (7, 1 << 16)]:
        a, b = rng.bytes(n1), rng.bytes(n2)
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_streamed_container_equals_packed_and_reads_lazily(tmp_path: Path) -> None:
    payloads = (b"a", b"bb", b"", b"dddd")
    container = Container("jpeg", 300, 200, payloads, 256, 128, {"x": 1}, FLAG_TILE_RECORDS)
    path = tmp_path / "a.rsic"
    with ContainerWriter(path, "jpeg", 300, 200, 256, 128, {"x": 1}, FLAG_TILE_RECORDS) as w:
        for payload in payloads:
            w.add(payload)
    assert path.read_bytes() == pack_container(container)
    assert w.file_bytes == path.stat().st_size
    assert read_container(path.read_bytes()) == container
    with ContainerReader(path) as reader:
        reader.verify()
        assert [reader.read_tile(i) for i in range(4)] == list(payloads)
        assert reader.metadata == {"x": 1} and reader.tile_records


def test_streamed_writer_leaves_nothing_on_error(tmp_path: Path) -> None:
    short = ContainerWriter(tmp_path / "a.rsic", "jpeg", 300, 200, 256, 128)
    with pytest.raises(HeaderError, match="1 tiles added"), short as writer:
        writer.add(b"x")
    failing = ContainerWriter(tmp_path / "b.rsic", "jpeg", 30, 20)
    with pytest.raises(RuntimeError, match="boom"), failing:
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_reader_names_each_defect(tmp_path: Path) -> None:
    data = pack_container(Container("jpeg", 300, 200, (b"a", b"bb", b"c", b"dddd"), 256, 128))
    cases = {
        "trunc.rsic": (data[:-3], TruncatedError),
        "trail.rsic": (data + b"x", TrailingDataError),
        "flip.rsic": (data[:-8] + bytes([data[-8] ^ 1]) + data[-7:], ChecksumError),
    }
    for name, (content, error) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(error), ContainerReader(tmp_path / name) as reader:
            reader.verify()


def test_partial_reader_reads_the_tiles_before_a_cut(tmp_path: Path) -> None:
    records = tuple(pack_tile_record(TileRecord(bytes([i]) * 10)) for i in range(6))
    data = pack_container(Container("jpeg", 300, 200, records, 128, 128, flags=FLAG_TILE_RECORDS))
    path = tmp_path / "cut.rsic"
    path.write_bytes(data[: len(data) - 4 - 18 - 3])  # the file CRC, tile 5 and part of tile 4
    with pytest.raises(TruncatedError, match="header declares"):
        ContainerReader(path)  # a whole file is expected by default
    with ContainerReader(path, partial=True) as reader:
        assert reader.missing_tiles == [4, 5]
        assert unpack_tile_record(reader.read_tile(3)).payload == bytes([3]) * 10
        reader.check_present([0, 1, 2, 3])
        with pytest.raises(TruncatedError, match=r"tile 4 of 6 is missing; tiles before 4 are "
                           r"intact \(region 0,0,300,128 holds whole rows"):
            reader.read_tile(4)
        with pytest.raises(TruncatedError, match="tiles 4-5 of 6 are missing"):
            reader.verify()


def test_tile_record_and_mask_round_trip() -> None:
    mask = np.zeros((37, 53), bool)
    mask[3:20, 10:40] = True
    packed = pack_mask(mask)
    assert len(packed) < 60
    assert (unpack_mask(packed, 37, 53) == mask).all()
    assert pack_mask(np.zeros((5, 5), bool)) == b""
    assert not unpack_mask(b"", 5, 5).any()
    record = pack_tile_record(TileRecord(b"payload", packed))
    assert unpack_tile_record(record) == TileRecord(b"payload", packed)
    damaged = record[:-1] + bytes([record[-1] ^ 4])
    with pytest.raises(ChecksumError, match="tile 7"):
        unpack_tile_record(damaged, 7)
    with pytest.raises(HeaderError, match="bits"):
        unpack_mask(packed, 37, 65)


def test_unknown_flag_bits_are_refused() -> None:
    with pytest.raises(HeaderError, match="reserved flags"):
        Container("jpeg", 4, 4, (b"x",), flags=0x02)
