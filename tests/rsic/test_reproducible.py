"""Reproducible decoding: every codec decodes to the same pixels with 1 and 2 threads and in
separate runs; the reconstruction checksum reports a decoder that computes differently instead
of returning its pixels. (The seeded enhancer's bytes: tests/enhancer/test_reproducible.py.)

The ELIC weights are the reference checkpoint's (random; see tests/codecs/test_learned.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.codecs import make_codec
from innrsic.codecs.learned import weights_file_name
from innrsic.codecs.learned_checkpoint import load_elic_checkpoint, save_learned_checkpoint
from innrsic.errors import HeaderError, ReconstructionMismatch
from innrsic.raster.tiling import Window
from innrsic.rsic.coding import (
    RECONSTRUCTION_KEY,
    compress_file,
    compress_image,
    decompress_container,
    reconstruction_checksums,
)
from innrsic.rsic.container import pack_container, read_container

CLASSICAL = ["jpeg:quality=50", "jpeg2000:ratio=48", "webp:quality=75", "avif:quality=50"]
CLASSICAL += ["heif:quality=50"]

DECODER = """
import hashlib, os, sys
threads = int(sys.argv[1])
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
import torch
torch.set_num_threads(threads)
from innrsic.rsic.coding import decompress_container
from innrsic.rsic.container import read_container
for path in sys.argv[2:]:
    with open(path, "rb") as handle:
        image = decompress_container(read_container(handle.read()))
    print(hashlib.sha256(image.tobytes()).hexdigest())
"""


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def elic_spec(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    model = load_elic_checkpoint(shared / "reference" / "elic_original_checkpoint.pth.tar.xz")
    path = tmp_path_factory.mktemp("models") / weights_file_name("elic", 0.0008)
    save_learned_checkpoint(model, "elic", path, lmbda=0.0008)
    return f"elic:weights={path}"


@pytest.fixture(scope="module")
def streams(elic_spec: str, crops: list[Path], tmp_path_factory) -> dict[str, Path]:
    """A UC-M crop coded by every codec in four 64 px tiles, with the reconstruction
    checksum, encoded with one torch thread."""
    folder = tmp_path_factory.mktemp("streams")
    out = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for spec in [*CLASSICAL, elic_spec]:
            path = folder / f"{spec.split(':')[0]}.rsic"
            compress_file(crops[1], path, make_codec(spec), tile=64)
            out[spec] = path
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.mark.slow
def test_every_codec_decodes_identically_with_1_and_2_threads_and_across_runs(
    streams: dict[str, Path], elic_spec: str, restore_threads, thread_env
) -> None:
    digests: dict[str, list[str]] = {spec: [] for spec in streams}
    for threads in (1, 2):  # in this process
        torch.set_num_threads(threads)
        for spec, path in streams.items():
            container = read_container(path.read_bytes())
            assert reconstruction_checksums(container.metadata, 4) is not None
            # decoding checks each tile against the encoder's reconstruction as well
            digests[spec].append(digest(decompress_container(container)))
    for threads in (1, 2):  # again, in fresh processes with one or two threads and CPUs
        result = subprocess.run(
            [sys.executable, "-c", DECODER, str(threads), *map(str, streams.values())],
            capture_output=True,
            text=True,
            # the container names ELIC's weights by fingerprint: found in the model directory
            env={**thread_env(threads), "INNRSIC_MODEL_DIR": str(Path(elic_spec[13:]).parent)},
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        for spec, line in zip(streams, result.stdout.split(), strict=True):
            digests[spec].append(line)
    for spec, values in digests.items():
        assert len(values) == 4 and len(set(values)) == 1, f"{spec}: {values}"


class DriftingCodec:
    """A codec whose decoder is one level off in one pixel per tile, like a platform whose
    floating point rounds one value the other way."""

    def __init__(self, spec: str) -> None:
        self.inner = make_codec(spec)
        self.spec = self.inner.spec

    def encode(self, image: np.ndarray) -> bytes:
        return self.inner.encode(image)

    def decode(self, data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
        image = self.inner.decode(data, shape=shape).copy()
        image[5, 7, 1] ^= 1
        return image


def test_a_decoder_that_computes_differently_is_reported_by_tile(ucm_image: np.ndarray) -> None:
    container = compress_image(ucm_image, make_codec("jpeg:quality=60"), tile=128)
    exact = decompress_container(container)
    drifting = DriftingCodec("jpeg:quality=60")
    with pytest.raises(ReconstructionMismatch, match=r"^tile 0: .* floating point"):
        decompress_container(container, drifting)
    with pytest.raises(ReconstructionMismatch, match=r"^tile 3: "):  # a region checks its tiles
        decompress_container(container, drifting, Window(140, 150, 60, 50))
    unchecked = decompress_container(container, drifting, verify=False)
    assert np.count_nonzero(unchecked != exact) == 4  # one value per tile, returned as asked


def test_containers_without_a_checksum_decode_and_bad_ones_are_refused(ucm_image) -> None:
    codec = make_codec("webp:quality=60")
    plain = compress_image(ucm_image, codec, tile=128, checksum=False)
    checked = compress_image(ucm_image, codec, tile=128)
    assert RECONSTRUCTION_KEY not in plain.metadata and plain.payloads == checked.payloads
    assert np.array_equal(decompress_container(plain), decompress_container(checked))
    for bad in ("00" * 8, "zz" * 16, 1234):
        damaged = dataclasses.replace(checked, metadata={RECONSTRUCTION_KEY: bad})
        with pytest.raises(HeaderError, match="--no-verify"):
            decompress_container(damaged)
        assert np.array_equal(
            decompress_container(damaged, verify=False), decompress_container(plain)
        )


def test_cli_reports_a_mismatch_and_no_verify_decodes(run_cli, ucm_test_paths, tmp_path: Path):
    good = tmp_path / "good.rsic"
    assert run_cli("compress", ucm_test_paths[0], "-o", good, "--codec", "jpeg2000:ratio=30",
                   "--tile", "128", threads=1).returncode == 0  # fmt: skip
    info = run_cli("info", good, threads=1).stdout
    assert "crc32 of each of the 4 decoded tile(s), checked on decode" in info
    container = read_container(good.read_bytes())
    crcs = container.metadata[RECONSTRUCTION_KEY]
    wrong = crcs[:16] + f"{int(crcs[16:24], 16) ^ 1:08x}" + crcs[24:]
    tampered = tmp_path / "tampered.rsic"
    tampered.write_bytes(
        pack_container(dataclasses.replace(container, metadata={RECONSTRUCTION_KEY: wrong}))
    )

    refused = run_cli("decompress", tampered, "-o", tmp_path / "t.png", threads=1)
    assert refused.returncode == 1
    assert "tile 2: the decoded pixels differ" in refused.stderr
    assert "floating point" in refused.stderr and "--no-verify" in refused.stderr
    assert not (tmp_path / "t.png").exists()
    accepted = run_cli("decompress", tampered, "-o", tmp_path / "t.png", "--no-verify", threads=1)
    assert accepted.returncode == 0, accepted.stderr

    plain = tmp_path / "plain.rsic"
    assert run_cli("compress", ucm_test_paths[0], "-o", plain, "--codec", "jpeg2000:ratio=30",
                   "--tile", "128", "--no-checksum", threads=1).returncode == 0  # fmt: skip
    assert good.stat().st_size - plain.stat().st_size == 18 + 8 * 4  # as innrsic.rsic.coding says
    assert "reconstruction: none" in " ".join(run_cli("info", plain, threads=1).stdout.split())
    assert run_cli("decompress", plain, "-o", tmp_path / "p.png", threads=1).returncode == 0
    assert (tmp_path / "p.png").read_bytes() == (tmp_path / "t.png").read_bytes()
