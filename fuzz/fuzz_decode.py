"""Coverage-guided fuzz target (atheris / libFuzzer): container parsing and every decoder.

    OMP_NUM_THREADS=1 python fuzz/fuzz_decode.py WORK_DIR fuzz/corpus \\
        -max_total_time=600 -rss_limit_mb=2048 -timeout=10

Each input goes through `check`, twice: as given (the container parser, in memory and from a
file), and with its checksums recomputed (`reseal`), so that mutated headers, tile records
and codec payloads get past the CRCs and reach the tile-record parser and the decoders. Any
`InnrsicError` is an expected outcome; every other exception is a crash, and libFuzzer's
``-timeout`` / ``-rss_limit_mb`` turn hangs and huge allocations into findings too.

Decoding cost grows with the declared image size by design (up to the documented limits), so
containers declaring more than `DECODE_PIXELS` pixels are parsed but not decoded. ELIC seeds
use the tiny seeded model of `make_corpus.tiny_elic_weights`, built at start-up into
``$TMPDIR/innrsic-fuzz`` (the ``$INNRSIC_MODEL_DIR`` of the run) unless already there.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import atheris

# Python-level coverage of innrsic and of the image libraries' Python parts (Pillow parses
# JPEG markers and JPEG 2000 headers in Python); the codec modules are imported here because
# the registry would import them later, uninstrumented.
with atheris.instrument_imports(include=["innrsic", "PIL", "pillow_heif"]):
    import innrsic.codecs.classical
    import innrsic.codecs.learned
    import innrsic.codecs.learned_checkpoint  # noqa: F401
    from innrsic.codecs import make_codec
    from innrsic.errors import InnrsicError
    from innrsic.rsic.coding import decompress_container
    from innrsic.rsic.container import (
        FLAG_TILE_RECORDS,
        ContainerReader,
        read_container,
        tile_count,
        unpack_tile_record,
    )

from make_corpus import tiny_elic_weights

DECODE_PIXELS = 1 << 16
_FIXED = struct.Struct("<4sBBHIIIII")
_WORK = Path(tempfile.gettempdir()) / "innrsic-fuzz"  # the model is reused between runs
_FILE = _WORK / f"input-{os.getpid()}.rsic"


def reseal(data: bytes) -> bytes | None:
    """`data` with its header, tile-record and file checksums recomputed; None when the fixed
    header does not give a plausible layout."""
    if len(data) < _FIXED.size:
        return None
    _, _, flags, spec_len, width, height, tile_w, tile_h, meta_len = _FIXED.unpack_from(data)
    if not (width and height and (tile_w == 0) == (tile_h == 0)):
        return None
    tiles = tile_count(width, height, tile_w, tile_h)
    index = _FIXED.size + spec_len + meta_len
    header_end = index + 4 * tiles + 4
    if tiles > 4096 or len(data) < header_end + 4:
        return None
    out = bytearray(data)
    struct.pack_into("<I", out, header_end - 4, zlib.crc32(out[: header_end - 4]))
    if flags & FLAG_TILE_RECORDS:
        offset = header_end
        for length in struct.unpack_from(f"<{tiles}I", out, index):
            if length >= 4 and offset + length <= len(out) - 4:
                body = out[offset + 4 : offset + length]
                struct.pack_into("<I", out, offset, zlib.crc32(body))
            offset += length
    struct.pack_into("<I", out, len(out) - 4, zlib.crc32(out[:-4]))
    return bytes(out)


def check(data: bytes) -> None:
    """Parse `data` both ways, then decode every tile and the whole image (small ones only)."""
    _FILE.write_bytes(data)
    with ContainerReader(_FILE) as reader:
        reader.verify()
        for index in range(len(reader.tile_lengths)):
            reader.read_tile(index)
    container = read_container(data)
    if container.width * container.height > DECODE_PIXELS:
        return
    codec = make_codec(container.codec_spec)
    grid = container.grid
    for index, payload in enumerate(container.payloads):
        record = unpack_tile_record(payload, index) if container.tile_records else None
        coded = payload if record is None else record.payload
        if coded:
            window = grid.window(index)
            codec.decode(coded, shape=(window.height, window.width))
    decompress_container(container, codec)


def test_one_input(data: bytes) -> None:
    sealed = reseal(data)
    for candidate in (data,) if sealed in (None, data) else (data, sealed):
        with contextlib.suppress(InnrsicError):
            check(candidate)


def main() -> None:
    _WORK.mkdir(exist_ok=True)
    os.environ["INNRSIC_MODEL_DIR"] = str(_WORK)
    tiny_elic_weights(_WORK)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
