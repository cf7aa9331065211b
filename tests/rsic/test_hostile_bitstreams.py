"""Hostile bitstreams: whatever bytes a `.rsic` file or a codec payload holds, reading and
decoding it ends in an `InnrsicError` (or a well-formed image) within a time bound, without huge
allocations and without crashing the process.

Inputs: random bytes, every truncation and every single bit flip of a real container per codec
(jpeg, jpeg2000, webp, avif, heif and ELIC with a tiny seeded model), mutated payloads sealed
with correct checksums (so they get past the CRCs to the decoders), absurd declared sizes,
forged metadata and unknown codec specs. Hypothesis runs derandomized (a fixed set of examples
per test, no example database); the atheris target in ``fuzz/`` explores further.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from innrsic.codecs import make_codec
from innrsic.codecs.classical import MAX_PAYLOAD_PIXELS
from innrsic.errors import (
    CodecError,
    ContainerError,
    HeaderError,
    InnrsicError,
    TruncatedError,
)
from innrsic.rsic.coding import decompress_container
from innrsic.rsic.container import (
    FLAG_TILE_RECORDS,
    MAX_METADATA_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    MAX_SPEC_BYTES,
    Container,
    ContainerReader,
    TileRecord,
    pack_container,
    pack_tile_record,
    read_container,
)

TIME_BOUND = 5.0  # seconds per case, generous for a loaded 2-core machine
SIDE = 16
CLASSICAL = ("jpeg", "jpeg2000", "webp", "avif", "heif")
CODECS = (*CLASSICAL, "elic")
ELIC_CONFIG = {"N": 8, "M": 16, "groups": [2, 2, 4, 8]}
_FIXED = struct.Struct("<4sBBHIIIII")

HOSTILE = settings(
    max_examples=25,
    deadline=timedelta(seconds=TIME_BOUND),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def elic_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A spec naming a tiny seeded ELIC (random weights: fast, and just as hostile-proof)."""
    import torch

    from innrsic.codecs.learned_checkpoint import build_model, save_learned_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "tiny-elic.safetensors"
    save_learned_checkpoint(build_model("elic", ELIC_CONFIG), "elic", path)
    return f"elic:weights={path}"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def specs(elic_spec: str) -> dict[str, str]:
    return {
        **{name: f"{name}:quality=50" for name in CLASSICAL if name != "jpeg2000"},
        "jpeg2000": "jpeg2000:ratio=20",
        "elic": elic_spec,
    }


@pytest.fixture(scope="module")
def payloads(specs: dict[str, str], image: np.ndarray) -> dict[str, bytes]:
    """A real payload of the 16x16 test image per codec."""
    return {name: make_codec(spec).encode(image) for name, spec in specs.items()}


@pytest.fixture(scope="module")
def containers(specs: dict[str, str], payloads: dict[str, bytes]) -> dict[str, bytes]:
    """A real untiled container per codec."""
    return {
        name: pack_container(Container(make_codec(specs[name]).spec, SIDE, SIDE, (payload,)))
        for name, payload in payloads.items()
    }


def forge(
    spec: bytes,
    width: int,
    height: int,
    payloads: list[bytes],
    tile: tuple[int, int] = (0, 0),
    metadata: bytes = b"",
    flags: int = 0,
) -> bytes:
    """A container with correct checksums around whatever fields and payloads are given."""
    header = (
        _FIXED.pack(b"RSIC", 1, flags, len(spec), width, height, *tile, len(metadata))
        + spec
        + metadata
        + b"".join(struct.pack("<I", len(p)) for p in payloads)
    )
    body = header + struct.pack("<I", zlib.crc32(header)) + b"".join(payloads)
    return body + struct.pack("<I", zlib.crc32(body))


def reseal_payload(container: bytes, payload: bytes, elic: bool) -> bytes:
    """`container` (untiled) with its payload replaced by `payload`, all checksums correct;
    an ELIC payload's own CRC is recomputed too, so the damage reaches the entropy decoder."""
    if elic and len(payload) >= 4:
        payload = payload[:-4] + struct.pack(">I", zlib.crc32(payload[:-4]))
    fields = _FIXED.unpack_from(container)
    spec_end = _FIXED.size + fields[3]
    metadata = container[spec_end : spec_end + fields[8]]
    return forge(container[_FIXED.size : spec_end], SIDE, SIDE, [payload], metadata=metadata)


def outcome(action: Callable[[], object]) -> InnrsicError | None:
    """Run `action`; return the InnrsicError it raised (None on success). Any other exception
    propagates and fails the test; so does taking longer than TIME_BOUND."""
    start = time.perf_counter()
    try:
        action()
        error = None
    except InnrsicError as exc:
        error = exc
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND, f"took {elapsed:.1f} s"
    return error


def read_everything(data: bytes, path: Path) -> None:
    """Every reading path: the file reader (verify, each tile), in-memory parse, full decode."""
    path.write_bytes(data)
    with ContainerReader(path) as reader:
        reader.verify()
        for index in range(len(reader.tile_lengths)):
            reader.read_tile(index)
    decompress_container(read_container(data))


def decodes_cleanly(data: bytes, path: Path) -> None:
    """Assert that reading `data` every way ends in an image or an InnrsicError, in time."""
    outcome(lambda: read_everything(data, path))


# --- random bytes ---------------------------------------------------------------------------


@HOSTILE
@given(data=st.binary(max_size=512))
def test_random_bytes(data: bytes, tmp_path: Path):
    decodes_cleanly(data, tmp_path / "random.rsic")


@HOSTILE
@given(rest=st.binary(min_size=24, max_size=256))
def test_random_bytes_after_the_magic_and_version(rest: bytes, tmp_path: Path):
    decodes_cleanly(b"RSIC\x01" + rest, tmp_path / "random.rsic")


# --- truncation and bit flips of real containers --------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_every_truncation_is_a_truncated_error(
    codec: str, containers: dict[str, bytes], tmp_path: Path
):
    data = containers[codec]
    path = tmp_path / "cut.rsic"
    for end in range(len(data)):
        with pytest.raises(TruncatedError):
            read_container(data[:end])
        path.write_bytes(data[:end])
        with pytest.raises(TruncatedError):
            ContainerReader(path)


@pytest.mark.parametrize("codec", CODECS)
def test_every_bit_flip_is_a_container_error(codec: str, containers: dict[str, bytes]):
    data = containers[codec]
    for bit in range(8 * len(data)):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ContainerError):
            read_container(bytes(damaged))


@pytest.mark.parametrize("codec", CODECS)
@HOSTILE
@given(flips=st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_bit_flipped_payloads_behind_valid_checksums(
    codec: str,
    flips: list[int],
    containers: dict[str, bytes],
    payloads: dict[str, bytes],
    tmp_path: Path,
):
    payload = bytearray(payloads[codec])
    for flip in flips:
        payload[(flip // 8) % len(payload)] ^= 1 << (flip % 8)
    data = reseal_payload(containers[codec], bytes(payload), codec == "elic")
    decodes_cleanly(data, tmp_path / "flipped.rsic")


@pytest.mark.parametrize("codec", CODECS)
@HOSTILE
@given(data=st.data())
def test_mutated_payloads_straight_to_the_decoder(
    codec: str, data: st.DataObject, specs: dict[str, str], payloads: dict[str, bytes]
):
    """Garbage, truncated, extended and overwritten payloads handed to `decode` directly."""
    payload = payloads[codec]
    kind = data.draw(st.sampled_from(["garbage", "cut", "extend", "overwrite"]))
    if kind == "garbage":
        hostile = data.draw(st.binary(max_size=1024))
    elif kind == "cut":
        hostile = payload[: data.draw(st.integers(0, len(payload) - 1))]
    elif kind == "extend":
        hostile = payload + data.draw(st.binary(min_size=1, max_size=64))
    else:
        start = data.draw(st.integers(0, len(payload) - 1))
        hostile = payload[:start] + data.draw(st.binary(min_size=1, max_size=16))
        hostile += payload[start + 16 :]
    if codec == "elic" and len(hostile) >= 4:
        hostile = hostile[:-4] + struct.pack(">I", zlib.crc32(hostile[:-4]))
    codec_object = make_codec(specs[codec])
    decoded: list[np.ndarray] = []
    error = outcome(lambda: decoded.append(codec_object.decode(hostile, shape=(SIDE, SIDE))))
    assert isinstance(error, CodecError) or decoded[0].shape == (SIDE, SIDE, 3)


# --- absurd declared sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "tile", "message"),
    [
        (10**6, 10**6, (0, 0), "pixel limit"),
        (MAX_SIDE + 1, 1, (0, 0), "per side"),
        (0, 16, (0, 0), "per side"),
        (MAX_SIDE, MAX_PIXELS // MAX_SIDE, (1, 1), "tiles"),  # 2**31 tiles of one pixel
        (MAX_SIDE, 16, (16, 0), "both or neither"),
    ],
)
def test_absurd_sizes_are_refused_before_any_allocation(
    width: int, height: int, tile: tuple[int, int], message: str, tmp_path: Path
):
    data = forge(b"jpeg:quality=50", width, height, [b"x"], tile)
    path = tmp_path / "absurd.rsic"
    path.write_bytes(data)
    start = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(HeaderError, match=message):
            read_container(data)
        with pytest.raises(HeaderError, match=message):
            ContainerReader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("field", "value"), [(3, MAX_SPEC_BYTES + 1), (8, MAX_METADATA_BYTES + 1), (8, 2**32 - 1)]
)
def test_absurd_text_lengths_are_refused_before_reading(field: int, value: int):
    fields = [b"RSIC", 1, 0, 4, SIDE, SIDE, 0, 0, 0]
    fields[field] = value
    data = _FIXED.pack(*fields) + bytes(64)
    with pytest.raises(HeaderError, match="exceed limits"):
        read_container(data)


def _declare(codec: str, payload: bytes, width: int, height: int) -> bytes:
    """`payload` with the image size in its codestream header replaced."""
    data = bytearray(payload)
    if codec == "jpeg":  # SOF0: marker, length, precision, height, width
        struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, height, width)
    elif codec == "jpeg2000":  # SIZ: marker, length, caps, width, height, offsets, tile size
        at = data.index(b"\xff\x51")
        struct.pack_into(">II", data, at + 6, width, height)
        struct.pack_into(">II", data, at + 22, width, height)
    elif codec == "webp":  # VP8 key frame: start code, then 14-bit width and height
        struct.pack_into("<HH", data, data.index(b"\x9d\x01\x2a") + 3, width, height)
    else:  # AVIF / HEIF image extent property: box header, version and flags, width, height
        struct.pack_into(">II", data, data.index(b"ispe") + 8, width, height)
    return bytes(data)


@pytest.mark.parametrize("codec", CLASSICAL)
def test_payload_declaring_too_many_pixels_is_refused_before_decoding(
    codec: str, specs: dict[str, str], payloads: dict[str, bytes]
):
    # 9000 x 9000 passes Pillow's own decompression-bomb check (89 M pixels); decoding it
    # took 1.7 s (JPEG) and 2.4 s (AVIF) and 243 MB before the declared size was checked.
    hostile = _declare(codec, payloads[codec], 9000, 9000)
    assert MAX_PAYLOAD_PIXELS < 9000 * 9000 <= Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    with pytest.raises(CodecError, match="declares 9000x9000"):
        make_codec(specs[codec]).decode(hostile)
    assert time.perf_counter() - start < 0.5


def _scans_jpeg(side: int, scans: int) -> bytes:
    """A greyscale progressive JPEG of `side` x `side` with `scans` DC scans of 2 bytes each."""

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    header = segment(0xDB, bytes(1) + bytes([1] * 64))  # quantisation table 0
    header += segment(0xC2, struct.pack(">BHHB", 8, side, side, 1) + b"\x01\x11\x00")
    header += segment(0xC4, bytes(1) + bytes([1] + [0] * 15) + bytes(1))  # DC table: "0" -> 0
    scan = segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + bytes(2)
    return b"\xff\xd8" + header + scan * scans + b"\xff\xd9"


def test_jpeg_with_thousands_of_scans_is_refused_before_decoding():
    # Each scan is a pass over the whole image: 1000 scans (12 KB) declaring 8192 x 8192
    # took 11.5 s to decode before the scan count was checked.
    decoder = make_codec("jpeg")
    assert decoder.decode(_scans_jpeg(SIDE, 8)).shape == (SIDE, SIDE, 3)
    start = time.perf_counter()
    with pytest.raises(CodecError, match="1000 scans"):
        decoder.decode(_scans_jpeg(8192, 1000))
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("codec", CODECS)
def test_payload_declaring_another_size_than_expected_is_refused(
    codec: str, specs: dict[str, str], payloads: dict[str, bytes]
):
    decoder = make_codec(specs[codec])
    payload = payloads[codec]
    if codec == "elic":
        with pytest.raises(CodecError, match="declares 16x16, expected 32x16"):
            decoder.decode(payload, shape=(SIDE, 2 * SIDE))
        return
    if codec != "heif":  # HEIF's extent is the padded coded size; its handle is checked below
        hostile = _declare(codec, payload, 2 * SIDE, SIDE)
        with pytest.raises(CodecError, match="declares 32x16, expected 16x16"):
            decoder.decode(hostile, shape=(SIDE, SIDE))
    with pytest.raises(CodecError, match="declares 16x16, expected 32x16"):
        decoder.decode(payload, shape=(SIDE, 2 * SIDE))
    assert decoder.decode(payload, shape=(SIDE, SIDE)).shape == (SIDE, SIDE, 3)


@pytest.mark.slow
def test_forged_elic_streams_cannot_make_the_entropy_decoder_read_out_of_bounds(
    elic_spec: str, tmp_path: Path
):
    """CompressAI's rANS decoder has no end-of-input check: nine 8-byte streams of 0xFF in a
    payload declaring 1024x1024 made it read past its buffer and crash the process (SIGSEGV)
    until streams were followed by zero guard bytes. Run in a subprocess: a crash is exit -11."""
    script = (
        "import sys\n"
        "from innrsic.codecs import make_codec\n"
        "from innrsic.codecs.learned import _pack\n"
        "codec = make_codec(sys.argv[1])\n"
        "payload = _pack(codec.loaded, 1024, 1024, [b'\\xff' * 8] * 9)\n"
        "assert codec.decode(payload).shape == (1024, 1024, 3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, elic_spec],
        capture_output=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]


# --- metadata, tile records and codec specs -------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [b"[" * 100_000, b'{"a": ' + b"9" * 5000 + b"}", b"\xff\xfe", b"[1, 2]", b'{"a": 1'],
)
def test_hostile_metadata_is_a_header_error(metadata: bytes):
    # Deep nesting raised RecursionError and a 5000-digit integer a plain ValueError.
    with pytest.raises(HeaderError):
        read_container(forge(b"jpeg", SIDE, SIDE, [b"x"], metadata=metadata))


@HOSTILE
@given(records=st.lists(st.binary(max_size=64), min_size=2, max_size=2))
def test_forged_tile_records(records: list[bytes], tmp_path: Path):
    """Tile records with correct record checksums around hostile masks and payloads."""
    sealed = [struct.pack("<I", zlib.crc32(r)) + r for r in records]
    data = forge(
        b"jpeg:quality=50", 32, SIDE, sealed, (SIDE, SIDE), b'{"nodata": 0}', FLAG_TILE_RECORDS
    )
    decodes_cleanly(data, tmp_path / "records.rsic")


def test_nodata_mask_bomb_is_refused_without_inflating_it(payloads: dict[str, bytes]):
    bomb = zlib.compress(bytes(64 << 20), 9)  # 64 MiB of zeros in about 64 KiB
    record = pack_tile_record(TileRecord(payloads["jpeg"], bomb))
    data = forge(
        b"jpeg:quality=50", SIDE, SIDE, [record], (SIDE, SIDE), b'{"nodata": 0}', FLAG_TILE_RECORDS
    )
    tracemalloc.start()
    try:
        with pytest.raises(HeaderError, match="nodata mask"):
            decompress_container(read_container(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


@HOSTILE
@given(spec=st.binary(min_size=1, max_size=64))
def test_unknown_and_hostile_codec_specs(spec: bytes, payloads: dict[str, bytes], tmp_path: Path):
    decodes_cleanly(forge(spec, SIDE, SIDE, [payloads["jpeg"]]), tmp_path / "spec.rsic")


@pytest.mark.parametrize(
    "spec",
    [
        "nosuchcodec",
        "jpeg:quality=500",
        "jpeg:bpp=nan",
        "elic:lambda=0.5",
        "webp:colour=red",
        "elic:weights=/dev/null",
        "elic:weights={tmp}/text.pth",
        "elic:weights={tmp}",
    ],
)
def test_named_hostile_specs(spec: str, payloads: dict[str, bytes], tmp_path: Path):
    (tmp_path / "text.pth").write_text("not weights")
    spec = spec.format(tmp=tmp_path)
    error = outcome(
        lambda: read_everything(
            forge(spec.encode(), SIDE, SIDE, [payloads["jpeg"]]), tmp_path / "spec.rsic"
        )
    )
    assert isinstance(error, InnrsicError)
