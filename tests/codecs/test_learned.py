"""Learned codecs: checkpoint import (reference vectors), payload round trips, determinism,
corrupt payloads, weights lookup and innrsic's safetensors format.

The only ELIC weights available are the reference checkpoint's (random, four values per tensor),
so reconstructions are not images and bpp is meaningless. Instead of comparing the model's
likelihood-based rate with the payload size (which needs trained weights), the round-trip tests
check that the payload holds exactly CompressAI's entropy-coded streams plus the documented
fixed overhead, and that decoding the bytes reproduces the encoder's reconstruction bit for bit.
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from innrsic.codecs import make_codec
from innrsic.codecs.architectures import ARCH_IDS, ARCHITECTURES
from innrsic.codecs.learned import (
    LEARNED_CODECS,
    ElicCodec,
    LearnedCodec,
    weights_file_name,
)
from innrsic.codecs.learned_checkpoint import (
    FORMAT_NAME,
    build_model,
    deterministic_cpu,
    load_elic_checkpoint,
    load_learned_checkpoint,
    save_learned_checkpoint,
    state_dict_fingerprint,
    weights_fingerprint,
)
from innrsic.codecs.registry import codec_class
from innrsic.errors import CodecError, CodecSpecError, WeightsError
from innrsic.raster.image import read_image

HEADER_BYTES = 15  # version, arch, fingerprint, H, W, stream count
CRC_BYTES = 4


@pytest.fixture(scope="session")
def reference_model(reference_dir: Path):
    """The authors'-layout reference checkpoint (xz-compressed), loaded once."""
    return load_elic_checkpoint(reference_dir / "elic_original_checkpoint.pth.tar.xz")


@pytest.fixture(scope="session")
def elic_weights(reference_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference weights in innrsic's format, named as the model directory expects."""
    path = tmp_path_factory.mktemp("models") / weights_file_name("elic", 0.0008)
    save_learned_checkpoint(reference_model, "elic", path, lmbda=0.0008)
    return path


@pytest.fixture(scope="session")
def elic(elic_weights: Path) -> ElicCodec:
    return ElicCodec(weights=elic_weights)


@pytest.fixture(scope="session")
def images(ucm_test_paths: list[Path]) -> list[np.ndarray]:
    return [read_image(path) for path in ucm_test_paths[:2]]


@pytest.fixture(scope="session")
def small_payload(elic: ElicCodec, images: list[np.ndarray]) -> bytes:
    return elic.encode(images[0][:64, :64])


# --- checkpoint import -------------------------------------------------------------------


def test_authors_checkpoint_reproduces_reference_vectors(reference_model, reference_dir: Path):
    vectors = torch.load(reference_dir / "elic_vectors.pt", weights_only=True)
    model = reference_model
    assert not model.training
    with deterministic_cpu():
        y = model.g_a(vectors["x"])
        out = model.latent_codec(y)  # eval mode: rounding around the predicted means, no noise
        x_hat = model.g_s(out["y_hat"])
    # y_hat = round(y - mean) + mean carries the float mean, so "identical" means the same
    # quantisation decision: the reference was computed with another thread count, and
    # float-level differences in the means (about 1e-5 here) are not disagreements; a different
    # rounding decision moves y_hat by about 1.
    difference = (out["y_hat"] - vectors["y_hat"]).abs()
    identical = (difference <= 1e-3).float().mean().item()
    x_error = ((x_hat - vectors["x_hat"]).norm() / vectors["x_hat"].norm()).item()
    log2_diff = {
        name: (out["likelihoods"][name].log2() - vectors[f"likelihoods_{name}"].log2())
        .abs()
        .mean()
        .item()
        for name in ("y", "z")
    }
    assert identical >= 0.999
    assert x_error <= 1e-3
    assert log2_diff["y"] <= 1e-3 and log2_diff["z"] <= 1e-3


def test_native_state_dict_and_ddp_prefix_load_to_the_same_model(reference_model):
    state = reference_model.state_dict()
    loaded = load_learned_checkpoint({f"module.{k}": v for k, v in state.items()})
    assert loaded.arch == "elic"
    assert loaded.config == {"N": 192, "M": 320, "groups": [16, 16, 32, 64, 192]}
    assert loaded.fingerprint == weights_fingerprint(state)


def test_unknown_authors_key_is_refused():
    with pytest.raises(WeightsError, match=r"unexpected keys.*bogus"):
        load_learned_checkpoint(
            {"cc_transforms.0.0.weight": torch.zeros(1), "bogus.weight": torch.zeros(1)}
        )


def test_pickled_objects_are_refused(tmp_path: Path):
    path = tmp_path / "unsafe.pth.tar"
    torch.save({"state_dict": {"g_a.0.weight": torch.zeros(1)}, "args": argparse.Namespace()}, path)
    with pytest.raises(WeightsError, match="refused"):
        load_learned_checkpoint(path, "elic")


def test_not_a_checkpoint_is_a_weights_error(tmp_path: Path):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"\xfd7zXZ\x00 not really xz")
    with pytest.raises(WeightsError, match="corrupt xz"):
        load_learned_checkpoint(path, "elic")


# --- innrsic's safetensors format ----------------------------------------------------------


def test_safetensors_round_trip_keeps_cdf_tables(
    reference_model, elic_weights: Path, monkeypatch: pytest.MonkeyPatch
):
    def no_update(*args, **kwargs):
        raise AssertionError("loading innrsic's format must not recompute the CDF tables")

    monkeypatch.setattr(type(reference_model), "update", no_update)
    loaded = load_learned_checkpoint(elic_weights)
    assert (loaded.arch, loaded.lmbda) == ("elic", 0.0008)
    original, restored = reference_model.state_dict(), loaded.model.state_dict()
    assert restored.keys() == original.keys()
    for key, tensor in original.items():
        assert restored[key].dtype == tensor.dtype, key
        assert torch.equal(restored[key], tensor), key
    cdf = restored["latent_codec.hyper.entropy_bottleneck._quantized_cdf"]
    assert cdf.dtype == torch.int32 and cdf.numel() > 0
    assert loaded.fingerprint == weights_fingerprint(original)
    assert loaded.legacy_fingerprint == state_dict_fingerprint(reference_model)
    with safe_open(str(elic_weights), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == FORMAT_NAME and metadata["arch"] == "elic"


def test_safetensors_arch_mismatch_is_refused(elic_weights: Path):
    with pytest.raises(WeightsError, match="holds elic weights, not mbt2018-mean"):
        load_learned_checkpoint(elic_weights, "mbt2018-mean")


# --- payload round trips -------------------------------------------------------------------


def test_round_trip_on_real_images_is_exact(elic: ElicCodec, images: list[np.ndarray]):
    for image in images:
        payload, reconstruction = elic.encode_and_reconstruct(image)
        decoded = elic.decode(payload)
        assert decoded.shape == image.shape and decoded.dtype == np.uint8
        assert np.array_equal(decoded, reconstruction)
        bpp = 8 * len(payload) / (image.shape[0] * image.shape[1])
        assert math.isfinite(bpp) and bpp > 0


def test_payload_is_the_entropy_coded_streams_plus_fixed_overhead(
    elic: ElicCodec, images: list[np.ndarray], small_payload: bytes
):
    x = torch.from_numpy(images[0][:64, :64].copy()).permute(2, 0, 1)[None].float() / 255
    with deterministic_cpu():
        streams = [s[0] for s in elic.loaded.exact.compress(x)["strings"]]
    assert len(streams) == 11  # 5 channel groups x 2 checkerboard halves, then z
    table = b"".join(_leb128(len(s)) for s in streams)
    assert small_payload[HEADER_BYTES:-CRC_BYTES] == table + b"".join(streams)
    assert struct.unpack(">II", small_payload[6:14]) == (64, 64)


def test_encode_alone_gives_the_same_bytes(elic: ElicCodec, images: list[np.ndarray]):
    crop = images[1][:64, :128]
    assert elic.encode(crop) == elic.encode_and_reconstruct(crop)[0]


@pytest.mark.parametrize("shape", [(250, 256), (37, 70)])
def test_odd_sizes_round_trip(elic: ElicCodec, images: list[np.ndarray], shape):
    crop = np.ascontiguousarray(images[1][: shape[0], : shape[1]])
    payload, reconstruction = elic.encode_and_reconstruct(crop)
    decoded = elic.decode(payload)
    assert decoded.shape == (*shape, 3)
    assert np.array_equal(decoded, reconstruction)


def test_one_pixel_image_round_trips(elic: ElicCodec):
    pixel = np.array([[[200, 30, 90]]], dtype=np.uint8)
    payload, reconstruction = elic.encode_and_reconstruct(pixel)
    decoded = elic.decode(payload)
    assert decoded.shape == (1, 1, 3)
    assert np.array_equal(decoded, reconstruction)


def test_thread_count_changes_neither_bytes_nor_pixels(
    elic: ElicCodec, images: list[np.ndarray], restore_threads
):
    # PyTorch's CPU convolutions sum in a thread-dependent order. Before the codec pinned its
    # evaluation to one thread, this crop decoded to different pixels with 1 and 2 threads (and
    # 256x256 images gave different bytes).
    image = np.ascontiguousarray(images[0][:128, :128])
    results = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        results[threads] = elic.encode_and_reconstruct(image)
    assert results[1][0] == results[2][0]
    assert np.array_equal(results[1][1], results[2][1])
    torch.set_num_threads(2)
    assert np.array_equal(elic.decode(results[1][0]), results[1][1])
    torch.set_num_threads(1)
    assert np.array_equal(elic.decode(results[2][0]), results[2][1])


def test_oversized_image_is_refused_before_any_work(elic: ElicCodec):
    tall = np.zeros((70_000, 300, 3), dtype=np.uint8)
    with pytest.raises(CodecError, match=r"too large.*tiles"):
        elic.encode(tall)


# --- corrupt payloads ----------------------------------------------------------------------


def _reseal(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body))


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.mark.parametrize("cut", [0, 1, 10, 18, -1, -5, "half"])
def test_truncated_payload_raises_codec_error(elic: ElicCodec, small_payload: bytes, cut):
    end = len(small_payload) // 2 if cut == "half" else cut
    with pytest.raises(CodecError):
        elic.decode(small_payload[:end])


@pytest.mark.parametrize("position", [0, 1, 3, 7, 12, 14, 16, 40, -200, -3])
def test_flipped_byte_raises_codec_error(elic: ElicCodec, small_payload: bytes, position):
    damaged = bytearray(small_payload)
    damaged[position] ^= 0x5A
    with pytest.raises(CodecError, match="checksum"):
        elic.decode(bytes(damaged))


def _forged(payload: bytes, offset: int, fmt: str, value) -> bytes:
    body = bytearray(payload[:-CRC_BYTES])
    struct.pack_into(fmt, body, offset, value)
    return _reseal(bytes(body))


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (0, ">B", 9, "format version 9"),
        (1, ">B", ARCH_IDS["mbt2018"], "made by mbt2018"),
        (1, ">B", 200, "unknown architecture id 200"),
        (2, ">I", 0xDEADBEEF, "other weights"),
        (6, ">I", 0, "empty"),
        (6, ">I", 0xFFFFFFFF, "size limit"),
        (10, ">I", 0x7FFFFFFF, "size limit"),
        (14, ">B", 12, "12 streams"),
        (15, ">B", 0x7F, "stream length"),
    ],
)
def test_forged_header_fields_raise_codec_error(
    elic: ElicCodec, small_payload: bytes, offset, fmt, value, message
):
    with pytest.raises(CodecError, match=message):
        elic.decode(_forged(small_payload, offset, fmt, value))


def test_forged_lengths_raise_codec_error(elic: ElicCodec, small_payload: bytes):
    header = small_payload[:HEADER_BYTES]
    huge = _reseal(header + b"\x80\x80\x80\x80\x0f" * 11)  # 11 streams of 3.75 GiB
    with pytest.raises(CodecError, match="add up"):
        elic.decode(huge)
    endless = _reseal(header + b"\x80" * 40)
    with pytest.raises(CodecError, match="malformed stream length"):
        elic.decode(endless)
    short = _reseal(header + b"\x88")
    with pytest.raises(CodecError, match="ends inside"):
        elic.decode(short)
    with pytest.raises(CodecError, match="must be bytes"):
        elic.decode("not bytes")  # type: ignore[arg-type]


# --- specs and the model directory ---------------------------------------------------------


def test_lambda_spec_finds_weights_in_the_model_directory(
    elic_weights: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("INNRSIC_MODEL_DIR", str(elic_weights.parent))
    codec = make_codec("ELIC:lambda=8e-4")
    assert isinstance(codec, ElicCodec)
    fingerprint = codec.loaded.fingerprint.hex()[:32]
    assert codec.spec == f"elic:lambda=0.0008,fingerprint={fingerprint},name={elic_weights.name}"
    assert codec.weights_path == elic_weights
    assert make_codec(codec.spec).spec == codec.spec


def test_missing_weights_name_every_place_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    first, second = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("INNRSIC_MODEL_DIR", f"{first}{os.pathsep}{second}")
    with pytest.raises(WeightsError) as caught:
        make_codec("elic:lambda=0.0123")
    message = str(caught.value)
    assert str(first) in message and str(second) in message
    assert "elic-lambda0.0123.safetensors" in message and "elic-lambda0.0123.pth.tar" in message
    assert "innrsic train codec --config configs/codec/elic_0.0123.yaml" in message
    assert "convert-checkpoint" in message
    with pytest.raises(WeightsError, match=r"nowhere\.safetensors not found"):
        make_codec(f"elic:weights={tmp_path / 'nowhere.safetensors'}")


def test_weights_and_lambda_must_agree(elic_weights: Path, small_payload: bytes):
    codec = make_codec(f"elic:lambda=0.0016,weights={elic_weights}")
    with pytest.raises(WeightsError, match=r"lambda=0\.0008.*lambda=0\.0016"):
        codec.decode(small_payload)
    with pytest.raises(WeightsError, match=r"lambda=0\.0008.*lambda=0\.0016"):
        codec.spec  # noqa: B018 (the spec names the weights' fingerprint: they are read)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("elic", "lambda=X"),
        ("elic:quality=3", "unknown parameter"),
        ("elic:lambda=abc", "not a valid float"),
        ("elic:lambda=0", "out of range"),
    ],
)
def test_bad_specs_raise_codec_spec_error(spec: str, message: str):
    with pytest.raises(CodecSpecError, match=message):
        make_codec(spec)


def test_registry_knows_every_architecture():
    assert set(LEARNED_CODECS) == set(ARCHITECTURES) == set(ARCH_IDS)
    assert len(set(ARCH_IDS.values())) == len(ARCH_IDS)
    for arch in ARCHITECTURES:
        cls = codec_class(arch)
        assert issubclass(cls, LearnedCodec) and cls.arch == arch


def test_classical_codecs_and_codec_help_do_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from innrsic.codecs import describe_codecs, make_codec\n"
        "make_codec('jpeg:quality=50').encode(np.zeros((8, 8, 3), np.uint8))\n"
        "assert 'elic' in describe_codecs()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- CompressAI's other architectures ------------------------------------------------------

SMALL_CONFIGS = {
    "bmshj2018-factorized": {"N": 8, "M": 12},
    "bmshj2018-factorized-relu": {"N": 8, "M": 12},
    "bmshj2018-hyperprior": {"N": 8, "M": 12},
    "mbt2018-mean": {"N": 8, "M": 12},
    "mbt2018": {"N": 8, "M": 12},
    "cheng2020-anchor": {"N": 8},
    "cheng2020-attn": {"N": 8},
}


@pytest.mark.parametrize("arch", sorted(SMALL_CONFIGS))
def test_compressai_architecture_round_trip(arch: str, tmp_path: Path, images: list[np.ndarray]):
    torch.manual_seed(0)
    model = build_model(arch, SMALL_CONFIGS[arch])
    path = tmp_path / "native.pth.tar"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, path)
    codec = make_codec(f"{arch}:weights={path}")
    crop = np.ascontiguousarray(images[0][:70, :45])
    payload, reconstruction = codec.encode_and_reconstruct(crop)
    assert np.array_equal(codec.decode(payload), reconstruction)
    assert reconstruction.shape == crop.shape

    torch.manual_seed(1)
    other = tmp_path / "other.pth.tar"
    torch.save(build_model(arch, SMALL_CONFIGS[arch]).state_dict(), other)
    with pytest.raises(CodecError, match="other weights"):
        make_codec(f"{arch}:weights={other}").decode(payload)


def test_native_checkpoint_needs_an_architecture(tmp_path: Path):
    path = tmp_path / "native.pth"
    torch.save(build_model("mbt2018-mean", {"N": 8, "M": 12}).state_dict(), path)
    with pytest.raises(WeightsError, match="say which architecture"):
        load_learned_checkpoint(path)
