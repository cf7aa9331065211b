"""Learned codecs behind the `Codec` protocol: ELIC and CompressAI's image models.

Specs: ``<arch>:lambda=X`` (weights looked up in the model directory) or
``<arch>:weights=PATH``; with both, the file is used and a lambda it records must equal X.
``<arch>`` is a name in :data:`~innrsic.codecs.architectures.ARCHITECTURES`: ``elic``
(CompressAI's ``Elic2022Chandelier``, N=192, M=320) or a ``compressai.zoo`` image model
(``bmshj2018-factorized``, ``mbt2018-mean``, ``cheng2020-attn``, ...). Weights come only
from local files (see :mod:`learned_checkpoint` for the layouts read); nothing is ever
downloaded.

**Model directory.** ``lambda=X`` selects the file ``<arch>-lambda<X>.<ext>``, where ``<X>`` is
the lambda as Python prints the float (``0.0008``, ``0.045``, ``1e-05``) and ``<ext>`` is
``safetensors`` (innrsic's format, preferred), ``pth.tar`` or ``pth``, e.g.
``elic-lambda0.0008.safetensors``. It is searched for in ``$INNRSIC_MODEL_DIR`` (several
directories separated by ``os.pathsep``; default ``~/.cache/innrsic/models``), then in the
package's ``innrsic/models/`` directory if it exists.

**Payload** (format 1, big-endian)::

    offset  size  field
    0       1     payload format version (1)
    1       1     architecture id (`Architecture.payload_id`)
    2       4     weights fingerprint: first 4 bytes of the SHA-256 of the state dict
    6       4     image height H
    10      4     image width W
    14      1     number of entropy-coded streams n (fixed per architecture)
    15      ...   n LEB128 varints: byte length of each stream
    ...     ...   the streams, in the order CompressAI's ``compress`` returns them
    end-4   4     CRC-32 of everything before it

The image is padded to multiples of 64 by edge replication (any size works, 1x1 included:
replication needs no minimum size, unlike reflection); the latent shapes follow from the
padded size and are not stored (the encoder checks them against what ``compress`` reports).
Decoding validates every field and length before any allocation; a damaged payload raises
:class:`CodecError`. The CRC only catches accidental damage (anyone can recompute it), and
CompressAI's rANS decoder does not check where its input ends: a forged stream makes it read
past its buffer (a forged 1024x1024 payload of 8-byte streams crashed the process). So each
stream is handed over followed by zero bytes (`_guarded`): 8 per symbol it codes (one symbol
renormalises at most one 32-bit word; tail symbols in zeros read a few more), 16 per stream
byte (an escape made of stream bytes 0xFF reads about 15 bytes of bypass bits per byte) and
64 KiB, so the decoder runs into zeros, not into other memory.

**Determinism.** Encoder and decoder must compute bit-identical entropy parameters, or the
decoder reads the bitstream with the wrong distributions. PyTorch's CPU convolutions (oneDNN,
and its native im2col + GEMM path too, for some shapes) split reductions across threads, so
their results depend on the thread count: with PyTorch's default threading, 256x256 images
gave different bytes with 1 and 2 threads, and a payload decoded under another thread count
than it was encoded with did not reproduce the encoder's reconstruction. All codec network
evaluation (and the CDF-table computation in ``update``) therefore runs on the CPU with
exactly one intra-op thread, under :func:`deterministic_cpu`, which restores the caller's
setting afterwards and holds a process-wide lock because that setting is global. For
throughput, code images in parallel processes. Bit-exactness across different machines
(instruction sets, library versions) is not guaranteed.
"""

from __future__ import annotations

import functools
import math
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from innrsic.codecs.architectures import (
    ARCH_IDS,
    ARCHITECTURES,
    Y_DOWNSAMPLING,
    Z_DOWNSAMPLING,
    Architecture,
    StreamLayout,
)
from innrsic.codecs.spec import Param, canonical_spec, check_params
from innrsic.errors import CodecError, CodecSpecError, WeightsError
from innrsic.raster.image import validate_rgb

if TYPE_CHECKING:
    import torch

    from innrsic.codecs.learned_checkpoint import LearnedModel

# torch and compressai are imported on first use, not here: the registry imports this module
# to read codec descriptions (e.g. for CLI help), which must stay cheap and torch-free.

MODEL_DIR_ENV = "INNRSIC_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("~/.cache/innrsic/models")
SHIPPED_MODEL_DIR = Path(__file__).resolve().parents[1] / "models"
WEIGHT_SUFFIXES = (".safetensors", ".pth.tar", ".pth")

PAYLOAD_VERSION = 1
PAD_MULTIPLE = 64
MAX_PADDED_PIXELS = 1 << 24  # 4096 x 4096 after padding; larger rasters go through tiling

_GUARD_PER_SYMBOL, _GUARD_PER_BYTE, _GUARD_BYTES = 8, 16, 1 << 16

_HEADER = struct.Struct(">BB4sIIB")
_CRC = struct.Struct(">I")

WEIGHTS_PARAM = Param(
    "weights", str, "weights file: innrsic safetensors, CompressAI state dict or ELIC authors'"
)
LAMBDA_PARAM = Param(
    "lambda", float, "training rate-distortion weight; selects <arch>-lambda<X> weights", 1e-6, 1e4
)


def model_dirs() -> list[Path]:
    """Where ``lambda=`` weights are searched, in order (see the module doc)."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        dirs = [Path(part).expanduser() for part in override.split(os.pathsep) if part]
    else:
        dirs = [DEFAULT_MODEL_DIR.expanduser()]
    if SHIPPED_MODEL_DIR.is_dir():
        dirs.append(SHIPPED_MODEL_DIR)
    return dirs


def weights_file_name(arch: str, lmbda: float, suffix: str = ".safetensors") -> str:
    """The model-directory file name for `arch` trained at `lmbda`."""
    return f"{arch}-lambda{float(lmbda)!r}{suffix}"


def find_weights(arch: str, lmbda: float) -> Path:
    """The weights file for `arch` at `lmbda`, or a WeightsError naming every place looked in."""
    dirs = model_dirs()
    for directory in dirs:
        for suffix in WEIGHT_SUFFIXES:
            path = directory / weights_file_name(arch, lmbda, suffix)
            if path.is_file():
                return path
    names = ", ".join(weights_file_name(arch, lmbda, suffix) for suffix in WEIGHT_SUFFIXES)
    howto = f"train them with `innrsic train codec --config configs/codec/{arch}_{lmbda!r}.yaml`"
    if arch == "elic":
        howto += (
            " or convert the authors' ELIC checkpoint with "
            "innrsic.codecs.learned_checkpoint.convert_checkpoint(SRC, DEST)"
        )
    raise WeightsError(
        f"{arch}: no weights for lambda={lmbda!r}: looked for {names} in "
        f"{', '.join(str(d) for d in dirs)}; {howto}, saving to "
        f"{dirs[0] / weights_file_name(arch, lmbda)} (${MODEL_DIR_ENV} sets the directory), "
        "or give weights=PATH"
    )


class LearnedCodec:
    """A CompressAI model as a `Codec`; one subclass per architecture (:data:`LEARNED_CODECS`)."""

    arch: ClassVar[str]
    description: ClassVar[str]

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, lmbda: float | None = None
    ) -> None:
        if weights is None and lmbda is None:
            raise CodecSpecError(
                f"{self.arch}: give lambda=X (weights from the model directory) or weights=PATH"
            )
        self.lmbda = None if lmbda is None else float(lmbda)
        if weights is not None:
            self.weights_path = Path(weights).expanduser()
            if not self.weights_path.is_file():
                raise WeightsError(f"{self.arch}: weights file {self.weights_path} not found")
        else:
            assert self.lmbda is not None
            self.weights_path = find_weights(self.arch, self.lmbda)
        values: dict[str, Any] = {}
        if self.lmbda is not None:
            values["lambda"] = repr(self.lmbda)
        if weights is not None:
            values["weights"] = os.fspath(weights)
        self.spec = canonical_spec(self.arch, values)

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> LearnedCodec:
        """Build from raw spec parameters (``weights`` and/or ``lambda``)."""
        accepted = {p.name: p for p in (LAMBDA_PARAM, WEIGHTS_PARAM)}
        values = check_params(cls.arch, params, accepted)
        return cls(values.get("weights"), values.get("lambda"))

    @property
    def loaded(self) -> LearnedModel:
        """The model, loaded on first use and shared between codecs with the same file."""
        try:
            stat = self.weights_path.stat()
        except OSError as exc:
            raise WeightsError(f"{self.arch}: cannot read {self.weights_path} ({exc})") from exc
        loaded = _load_cached(self.arch, str(self.weights_path), stat.st_mtime_ns, stat.st_size)
        if self.lmbda is not None and loaded.lmbda is not None and loaded.lmbda != self.lmbda:
            raise WeightsError(
                f"{self.arch}: {self.weights_path} was trained with lambda={loaded.lmbda!r}, "
                f"the spec says lambda={self.lmbda!r}"
            )
        return loaded

    def encode(self, image: np.ndarray) -> bytes:
        validate_rgb(image)
        return self._encode(image, reconstruct=False)[0]

    def encode_and_reconstruct(self, image: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The payload and the image `decode` will return for it, from one encoder pass."""
        validate_rgb(image)
        payload, x_hat = self._encode(image, reconstruct=True)
        assert x_hat is not None
        return payload, _to_image(x_hat, *image.shape[:2])

    def _encode(self, image: np.ndarray, reconstruct: bool) -> tuple[bytes, torch.Tensor | None]:
        height, width = image.shape[:2]
        padded = _padded_size(height, width)
        if padded[0] * padded[1] > MAX_PADDED_PIXELS:
            raise CodecError(
                f"{self.arch}: {width}x{height} is too large to code whole "
                f"(limit {MAX_PADDED_PIXELS} pixels after padding); code it in tiles"
            )
        from innrsic.codecs.learned_checkpoint import deterministic_cpu

        loaded = self.loaded
        x = _to_tensor(image, padded)
        with deterministic_cpu():
            out = loaded.model.compress(x)
            strings = [stream[0] for stream in out["strings"]]  # batch of one
            expected = latent_shapes(loaded.arch, loaded.config, padded)
            if _as_tuples(out["shape"]) != _as_tuples(expected) or len(strings) != _streams(loaded):
                raise CodecError(f"{self.arch}: unexpected latent layout from compress()")
            x_hat = _reconstruct(loaded, out) if reconstruct else None
        return _pack(loaded, height, width, strings), x_hat

    def decode(self, data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Decode a payload; `shape` is the (height, width) the caller expects, if known.

        Every field is checked (and the size against `shape`) before the network runs; every
        failure is a `CodecError`.
        """
        from innrsic.codecs.learned_checkpoint import deterministic_cpu

        loaded = self.loaded
        height, width, strings = _unpack(self.arch, loaded, data)
        if shape is not None and (height, width) != tuple(shape):
            raise CodecError(
                f"{self.arch}: payload declares {width}x{height}, expected {shape[1]}x{shape[0]}"
            )
        padded = _padded_size(height, width)
        latents = latent_shapes(loaded.arch, loaded.config, padded)
        strings = _guarded(strings, _stream_symbols(loaded, padded))
        with deterministic_cpu():
            try:
                x_hat = loaded.model.decompress([[s] for s in strings], latents)["x_hat"]
            except Exception as exc:  # the entropy decoder and networks raise many types
                raise CodecError(f"{self.arch}: cannot decode payload ({exc})") from exc
        return _to_image(x_hat, height, width)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by architecture name: the codec classes are made from the table."""
        return _restore, (self.arch, self.__dict__)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


def _codec_class(architecture: Architecture) -> type[LearnedCodec]:
    """The `LearnedCodec` subclass of one architecture of the table."""
    attributes = {
        "__module__": __name__,
        "__doc__": f"{architecture.description}.",
        "arch": architecture.name,
        "description": architecture.description,
    }
    return type(architecture.codec_class, (LearnedCodec,), attributes)


LEARNED_CODECS: dict[str, type[LearnedCodec]] = {
    name: _codec_class(architecture) for name, architecture in ARCHITECTURES.items()
}
"""Architecture name -> codec class, made from :data:`ARCHITECTURES`."""
ElicCodec = LEARNED_CODECS["elic"]
"""The codec of ELIC, the default architecture."""


def _restore(arch: str, state: dict[str, Any]) -> LearnedCodec:
    """Unpickle a codec (see `LearnedCodec.__reduce__`)."""
    codec_type = LEARNED_CODECS[arch]
    codec = codec_type.__new__(codec_type)
    codec.__dict__.update(state)
    return codec


def latent_shapes(arch: str, config: Mapping[str, Any], padded: tuple[int, int]) -> Any:
    """The ``shape`` argument of the model's ``decompress`` for a padded image size."""
    height, width = padded
    architecture = ARCHITECTURES[arch]
    deepest = (height // architecture.downsampling, width // architecture.downsampling)
    if architecture.layout is StreamLayout.CHECKERBOARD_GROUPS:
        y_shape = (height // Y_DOWNSAMPLING, width // Y_DOWNSAMPLING)
        return {"y": [(group, *y_shape) for group in config["groups"]], "hyper": deepest}
    return deepest


@functools.lru_cache(maxsize=4)
def _load_cached(arch: str, path: str, mtime_ns: int, size: int) -> LearnedModel:
    from innrsic.codecs.learned_checkpoint import load_learned_checkpoint

    del mtime_ns, size  # part of the cache key only: a rewritten file is loaded again
    return load_learned_checkpoint(path, arch)


def _reconstruct(loaded: LearnedModel, out: Mapping[str, Any]) -> torch.Tensor:
    """What ``decompress`` will return, reusing the encoder's y_hat where the model gives it."""
    model = loaded.model
    if _layout(loaded) is StreamLayout.CHECKERBOARD_GROUPS:  # compress() decoded y_hat already
        return model.g_s(out["y_hat"]).clamp_(0, 1)
    return model.decompress(out["strings"], out["shape"])["x_hat"]


def _layout(loaded: LearnedModel) -> StreamLayout:
    return ARCHITECTURES[loaded.arch].layout


def _streams(loaded: LearnedModel) -> int:
    layout = _layout(loaded)
    if layout is StreamLayout.CHECKERBOARD_GROUPS:
        return 2 * len(loaded.config["groups"]) + 1  # two checkerboard halves per group, then z
    return 1 if layout is StreamLayout.FACTORIZED else 2


def _stream_symbols(loaded: LearnedModel, padded: tuple[int, int]) -> list[int]:
    """How many symbols each stream codes, in payload order, for a padded image size."""
    architecture = ARCHITECTURES[loaded.arch]
    y = (padded[0] // Y_DOWNSAMPLING) * (padded[1] // Y_DOWNSAMPLING)
    z = (padded[0] // Z_DOWNSAMPLING) * (padded[1] // Z_DOWNSAMPLING) * loaded.config["N"]
    if architecture.layout is StreamLayout.CHECKERBOARD_GROUPS:
        return [*(group * y // 2 for group in loaded.config["groups"] for _ in range(2)), z]
    y *= loaded.config[architecture.latent_channels]
    return [y] if architecture.layout is StreamLayout.FACTORIZED else [y, z]


def _guarded(strings: list[bytes], symbols: list[int]) -> list[bytes]:
    """Each stream followed by the zero bytes the rANS decoder may overrun (see module doc)."""
    return [
        s + bytes(_GUARD_PER_SYMBOL * n + _GUARD_PER_BYTE * len(s) + _GUARD_BYTES)
        for s, n in zip(strings, symbols, strict=True)
    ]


def _padded_size(height: int, width: int) -> tuple[int, int]:
    return (
        math.ceil(height / PAD_MULTIPLE) * PAD_MULTIPLE,
        math.ceil(width / PAD_MULTIPLE) * PAD_MULTIPLE,
    )


def _to_tensor(image: np.ndarray, padded: tuple[int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    from innrsic.compute.tensors import to_tensor

    x = to_tensor(image)[None]
    height, width = image.shape[:2]
    return F.pad(x, (0, padded[1] - width, 0, padded[0] - height), mode="replicate")


def _to_image(x_hat: torch.Tensor, height: int, width: int) -> np.ndarray:
    from innrsic.compute.tensors import to_uint8

    return to_uint8(x_hat[:, :, :height, :width])


def _as_tuples(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _as_tuples(item) for key, item in value.items()}
    if isinstance(value, list | tuple):  # torch.Size is a tuple
        return tuple(_as_tuples(item) for item in value)
    return int(value)


def _pack(loaded: LearnedModel, height: int, width: int, strings: list[bytes]) -> bytes:
    header = _HEADER.pack(
        PAYLOAD_VERSION, ARCH_IDS[loaded.arch], loaded.fingerprint[:4], height, width, len(strings)
    )
    body = header + b"".join(_varint(len(s)) for s in strings) + b"".join(strings)
    return body + _CRC.pack(zlib.crc32(body))


def _unpack(arch: str, loaded: LearnedModel, data: bytes) -> tuple[int, int, list[bytes]]:
    """Validate a payload and split it into (height, width, streams)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"{arch}: payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size + _CRC.size:
        raise CodecError(f"{arch}: payload of {len(data)} bytes is too short (truncated?)")
    body, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise CodecError(f"{arch}: payload checksum mismatch (corrupt or truncated payload)")
    version, arch_id, fingerprint, height, width, count = _HEADER.unpack_from(body)
    if version != PAYLOAD_VERSION:
        raise CodecError(f"{arch}: payload format version {version}, expected {PAYLOAD_VERSION}")
    names = {number: name for name, number in ARCH_IDS.items()}
    if arch_id != ARCH_IDS[arch]:
        made_by = names.get(arch_id, f"unknown architecture id {arch_id}")
        raise CodecError(f"{arch}: payload was made by {made_by}, not {arch}")
    if fingerprint != loaded.fingerprint[:4]:
        raise CodecError(
            f"{arch}: payload was encoded with other weights (fingerprint {fingerprint.hex()}, "
            f"these weights {loaded.fingerprint[:4].hex()})"
        )
    if height < 1 or width < 1:
        raise CodecError(f"{arch}: payload declares an empty {width}x{height} image")
    padded = _padded_size(height, width)
    if padded[0] * padded[1] > MAX_PADDED_PIXELS:
        raise CodecError(f"{arch}: payload declares {width}x{height}, over the size limit")
    if count != _streams(loaded):
        raise CodecError(f"{arch}: payload has {count} streams, expected {_streams(loaded)}")
    offset = _HEADER.size
    lengths = []
    for _ in range(count):
        length, offset = _read_varint(body, offset, arch)
        if length < 8 or length % 4:  # rANS output is whole 32-bit words, flushed with two
            raise CodecError(f"{arch}: invalid stream length {length} in payload")
        lengths.append(length)
    if offset + sum(lengths) != len(body):
        raise CodecError(
            f"{arch}: payload stream lengths add up to {sum(lengths)} bytes, "
            f"{len(body) - offset} are present"
        )
    strings = []
    for length in lengths:
        strings.append(body[offset : offset + length])
        offset += length
    return height, width, strings


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, offset: int, arch: str) -> tuple[int, int]:
    value = 0
    for shift in range(0, 35, 7):  # at most 5 bytes: lengths below 2**35
        if offset >= len(data):
            raise CodecError(f"{arch}: payload ends inside its stream-length table")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
    raise CodecError(f"{arch}: malformed stream length in payload")
