"""A learned codec's exact decode gives the same bits on any device: these tests run the
device path (``LearnedCodec.decode(payload, device=...)``: a copy of the exact network moved to
the device) with ``device="cpu"`` here, and with ``device="cuda"`` where torch sees a GPU.

How it is guaranteed (:mod:`innrsic.codecs.exact`): every decoder-side convolution multiplies
integers (weights on a fixed 2^-kw grid, activations on a 2^-ka grid chosen from the input's
largest magnitude) whose products and partial sums stay below 2^51, so float64 holds each of
them exactly and the result does not depend on the summation order, FMA, blocking, thread count
or kernel: oneDNN or im2col + GEMM on a CPU, cuBLAS GEMMs on a GPU. cuDNN is never called for
them (it may choose FFT or Winograd algorithms, whose intermediate values are not integers):
the convolution turns it off per call. Everything between the convolutions is float64 add,
multiply, divide, square root, comparison and rounding, correctly rounded by IEEE 754 on a CPU
and in PyTorch's CUDA kernels alike (one kernel per eager operation, so no FMA contraction
across them; no TF32 for float64); the one transcendental, the attention sigmoid, is
`exp_exact`, built from those operations. The rANS decoder and the CDF tables are integer code
on the CPU either way. ``scripts/gpu_check.sh`` checks a GPU's ELIC decode against the CPU's.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.codecs import make_codec
from innrsic.codecs.learned import LEGACY_PAYLOAD_VERSION
from innrsic.codecs.learned_checkpoint import (
    build_model,
    load_elic_checkpoint,
    save_learned_checkpoint,
)
from innrsic.errors import CodecError
from innrsic.raster.image import read_image

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(scope="module")
def crop(ucm_test_paths: list[Path]) -> np.ndarray:
    return np.ascontiguousarray(read_image(ucm_test_paths[1])[:70, :100])


@pytest.fixture(scope="module")
def elic(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The reference ELIC (the authors' checkpoint) as a codec."""
    model = load_elic_checkpoint(reference_dir / "elic_original_checkpoint.pth.tar.xz")
    path = tmp_path_factory.mktemp("elic") / "elic.safetensors"
    save_learned_checkpoint(model, "elic", path)
    return make_codec(f"elic:weights={path}")


@pytest.mark.parametrize("device", DEVICES)
def test_elic_decodes_the_same_bits_on_a_device_copy(elic, crop, device) -> None:
    payload, reconstruction = elic.encode_and_reconstruct(crop)
    on_device = elic.decode(payload, device=device)
    assert np.array_equal(on_device, reconstruction)
    assert np.array_equal(on_device, elic.decode(payload))
    copy = elic._exact_on(elic.loaded, device)
    assert copy is not elic.loaded.exact and copy is elic._exact_on(elic.loaded, device)
    assert {p.device.type for p in copy.buffers()} == {device}


@pytest.mark.parametrize("device", DEVICES)
def test_autoregressive_context_decodes_on_a_device_copy(tmp_path: Path, crop, device) -> None:
    """mbt2018's serial context model (`exact._decompress_ar`) places its symbols on the
    device of the latents it fills."""
    torch.manual_seed(0)
    path = tmp_path / "mbt.pth.tar"
    torch.save(build_model("mbt2018", {"N": 8, "M": 8}).state_dict(), path)
    codec = make_codec(f"mbt2018:weights={path}")
    payload, reconstruction = codec.encode_and_reconstruct(crop[:40, :40])
    assert np.array_equal(codec.decode(payload, device=device), reconstruction)


def test_a_format_1_payload_is_refused_off_the_default_path(elic, crop) -> None:
    payload = bytearray(elic.encode(crop[:32, :32]))
    payload[0] = LEGACY_PAYLOAD_VERSION
    payload[2:6] = elic.loaded.legacy_fingerprint[:4]
    body = bytes(payload[:-4])
    legacy = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(CodecError, match="format-1 payload decodes on the CPU only"):
        elic.decode(legacy, device="cpu")
