"""Learned codecs behind the `Codec` protocol: ELIC and CompressAI's image models.

Specs: ``<arch>:lambda=X`` (weights looked up in the model directory) or
``<arch>:weights=PATH``; with both, the file is used and a lambda it records must equal X.
``<arch>`` is a name in :data:`~innrsic.codecs.architectures.ARCHITECTURES`: ``elic``
(CompressAI's ``Elic2022Chandelier``, N=192, M=320) or a ``compressai.zoo`` image model
(``bmshj2018-factorized``, ``mbt2018-mean``, ``cheng2020-attn``, ...). Weights come only
from local files (see :mod:`learned_checkpoint` for the layouts read); nothing is ever
downloaded.

Weights are found as :mod:`learned_weights` documents (by name in the model directory, or
by fingerprint). ``codec.spec`` names the weights by identity, never by path:
``<arch>:[lambda=X,]fingerprint=<32 hex digits>[,name=<file name>]``; decoding such a spec
finds the file by fingerprint (`learned_weights.find_by_fingerprint`; ``weights_hint`` /
``decompress --weights PATH`` say where to look first). Specs of earlier versions
(``weights=PATH``) still work.

**Payload** (format 2, big-endian)::

    offset  size  field
    0       1     payload format version (2; 1: see below)
    1       1     architecture id (`Architecture.payload_id`)
    2       4     weights fingerprint: its first 4 bytes (`weights_fingerprint`)
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
decoder reads the bitstream with the wrong distributions, and the same pixels, or the
reconstruction checksum fails. Format 2 computes everything the decoder computes with the
exact copy of the network (:mod:`innrsic.codecs.exact`: integer arithmetic carried in float64,
exact CDF tables from :mod:`innrsic.codecs.exact_tables`), so a payload decodes to the same
pixels under any ATEN_CPU_CAPABILITY, thread count and oneDNN setting. Format 1 (written by
earlier versions: CompressAI's float32 network, its fingerprint over the loaded state dict
with the tables computed at load) still decodes, through that float32 path, bit-exactly only
on a machine that computes as the encoder's did. Format 2 runs with the caller's threads
(`exact_cpu`; the float32 analysis with one, `exact.SingleThread`), format 1 under
:func:`deterministic_cpu` (one intra-op thread, which its results depend on).

**Devices.** ``decode(data, device="cuda")`` runs a format-2 payload's exact network on a GPU
(a copy of it, made once per device) and gives the CPU's pixels bit for bit (the module doc of
:mod:`innrsic.codecs.exact` says why); the entropy decoder runs on the CPU either way. A
format-1 payload is refused off the CPU (its float32 network is exact on no other device).
Encoding stays on the CPU.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
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
from innrsic.codecs.learned_weights import (
    MODEL_DIR_ENV as MODEL_DIR_ENV,
)
from innrsic.codecs.learned_weights import (
    SAFE_NAME,
    find_by_fingerprint,
    find_weights,
    remember,
    short_fingerprint,
)
from innrsic.codecs.learned_weights import (
    model_dirs as model_dirs,
)
from innrsic.codecs.learned_weights import (
    weights_file_name as weights_file_name,
)
from innrsic.codecs.spec import Param, canonical_spec, check_params
from innrsic.errors import CodecError, CodecSpecError, WeightsError
from innrsic.raster.image import validate_rgb

if TYPE_CHECKING:
    import torch

    from innrsic.codecs.learned_checkpoint import LearnedModel

# torch and compressai are imported on first use, not here: the registry imports this module
# to read codec descriptions (e.g. for CLI help), which must stay cheap and torch-free.

PAYLOAD_VERSION = 2
LEGACY_PAYLOAD_VERSION = 1
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
FINGERPRINT_PARAM = Param("fingerprint", str, "the weights' fingerprint (32 hex digits)")
NAME_PARAM = Param("name", str, "the weights file's name when encoded (a search hint)")
_HEX = re.compile(r"[0-9a-f]{32}")


class LearnedCodec:
    """A CompressAI model as a `Codec`; one subclass per architecture (:data:`LEARNED_CODECS`)."""

    arch: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def rate_params(cls) -> tuple[str, ...]:
        """The spec parameters that set this codec's rate: ``lambda`` (its weights)."""
        return (LAMBDA_PARAM.name,)

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        lmbda: float | None = None,
        fingerprint: str | None = None,
        name: str | None = None,
        weights_hint: str | os.PathLike[str] | None = None,
    ) -> None:
        if weights is None and lmbda is None and fingerprint is None:
            raise CodecSpecError(
                f"{self.arch}: give lambda=X (weights from the model directory) or weights=PATH"
            )
        if fingerprint is not None and not _HEX.fullmatch(fingerprint):
            raise CodecSpecError(f"{self.arch}: fingerprint={fingerprint!r} is not 32 hex digits")
        self.lmbda = None if lmbda is None else float(lmbda)
        self.fingerprint = fingerprint
        self.name = name if name is not None and SAFE_NAME.fullmatch(name) else None
        hint = None if weights_hint is None else Path(weights_hint).expanduser()
        if hint is not None and weights is not None and fingerprint is None and hint.is_file():
            weights = hint  # a spec of an earlier version: the file moved, here it is now
        if weights is not None:
            self.weights_path = Path(weights).expanduser()
            if not self.weights_path.is_file():
                raise WeightsError(f"{self.arch}: weights file {self.weights_path} not found")
        elif fingerprint is not None:
            self.weights_path = find_by_fingerprint(self.arch, fingerprint, self.name, hint)
        else:
            assert self.lmbda is not None
            self.weights_path = find_weights(self.arch, self.lmbda)

    @property
    def spec(self) -> str:
        """``<arch>:[lambda=X,]fingerprint=F[,name=N]``: the weights by identity (module doc)."""
        values: dict[str, Any] = {}
        if self.lmbda is not None:
            values["lambda"] = repr(self.lmbda)
        values["fingerprint"] = self.fingerprint or short_fingerprint(self.loaded.fingerprint)
        name = self.weights_path.name
        if SAFE_NAME.fullmatch(name):
            values["name"] = name
        return canonical_spec(self.arch, values)

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], weights_hint: str | os.PathLike[str] | None = None
    ) -> LearnedCodec:
        """Build from raw spec parameters; `weights_hint` as ``decompress --weights``."""
        accepted = {p.name: p for p in (LAMBDA_PARAM, WEIGHTS_PARAM, FINGERPRINT_PARAM, NAME_PARAM)}
        values = check_params(cls.arch, params, accepted)
        return cls(
            values.get("weights"),
            values.get("lambda"),
            values.get("fingerprint"),
            values.get("name"),
            weights_hint,
        )

    @property
    def loaded(self) -> LearnedModel:
        """The model, loaded on first use and shared between codecs with the same file."""
        try:
            stat = self.weights_path.stat()
        except OSError as exc:
            raise WeightsError(f"{self.arch}: cannot read {self.weights_path} ({exc})") from exc
        key = (stat.st_mtime_ns, stat.st_size)
        held = self.__dict__.get("_held")
        if held is not None and held[0] == key:
            return held[1]
        loaded = _load_cached(self.arch, str(self.weights_path), *key)
        if self.lmbda is not None and loaded.lmbda is not None and loaded.lmbda != self.lmbda:
            raise WeightsError(
                f"{self.arch}: {self.weights_path} was trained with lambda={loaded.lmbda!r}, "
                f"the spec says lambda={self.lmbda!r}"
            )
        found = short_fingerprint(loaded.fingerprint)
        if self.fingerprint is not None and found != self.fingerprint:
            raise WeightsError(
                f"{self.arch}: {self.weights_path} has fingerprint {found}, "
                f"the spec names {self.fingerprint}"
            )
        remember(self.weights_path, loaded.fingerprint)
        self._held = (key, loaded)  # the codec keeps its model (the cache holds only a few)
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
        from innrsic.codecs.learned_checkpoint import exact_cpu

        loaded = self.loaded
        x = _to_tensor(image, padded)
        model = loaded.exact
        with exact_cpu():
            out = model.compress(x)
            strings = [stream[0] for stream in out["strings"]]  # batch of one
            expected = latent_shapes(loaded.arch, loaded.config, padded)
            if _as_tuples(out["shape"]) != _as_tuples(expected) or len(strings) != _streams(loaded):
                raise CodecError(f"{self.arch}: unexpected latent layout from compress()")
            x_hat = _reconstruct(loaded, model, out) if reconstruct else None
        return _pack(loaded, height, width, strings), x_hat

    def decode(
        self, data: bytes, shape: tuple[int, int] | None = None, *,
        device: str | torch.device | None = None,
    ) -> np.ndarray:
        """Decode a payload; `shape` is the (height, width) the caller expects, if known;
        `device` where the network runs (None: the loaded model, on the CPU; else a copy of
        the exact model on that device: the same pixels, see the module doc).

        Every field is checked (and the size against `shape`) before the network runs; every
        failure is a `CodecError`.
        """
        from innrsic.codecs.learned_checkpoint import deterministic_cpu, exact_cpu

        loaded = self.loaded
        version, height, width, strings = _unpack(self.arch, loaded, data)
        exact = version == PAYLOAD_VERSION
        if device is None:
            model = loaded.exact if exact else loaded.model
        elif exact:
            model = self._exact_on(loaded, device)
        else:
            raise CodecError(f"{self.arch}: a format-{version} payload decodes on the CPU only "
                             "(its float32 network is not exact); decode it without a device")
        if shape is not None and (height, width) != tuple(shape):
            raise CodecError(
                f"{self.arch}: payload declares {width}x{height}, expected {shape[1]}x{shape[0]}"
            )
        padded = _padded_size(height, width)
        latents = latent_shapes(loaded.arch, loaded.config, padded)
        strings = _guarded(strings, _stream_symbols(loaded, padded))
        with exact_cpu() if exact else deterministic_cpu():
            try:
                x_hat = model.decompress([[s] for s in strings], latents)["x_hat"]
            except Exception as exc:  # the entropy decoder and networks raise many types
                raise CodecError(f"{self.arch}: cannot decode payload ({exc})") from exc
        return _to_image(x_hat, height, width)

    def _exact_on(self, loaded: LearnedModel, device: str | torch.device) -> Any:
        """`loaded`'s exact model copied to `device`, made once per device and model."""
        import torch

        held = self.__dict__.setdefault("_on_device", {})
        key = (loaded.fingerprint, str(torch.device(device)))
        if key not in held:
            for other in [k for k in held if k[0] != loaded.fingerprint]:
                del held[other]  # other weights' copies (the file was rewritten)
            held[key] = copy.deepcopy(loaded.exact).to(device)
        return held[key]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by architecture name: the codec classes are made from the table."""
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("_held", "_on_device")}
        return _restore, (self.arch, state)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.arch} {self.weights_path}>"


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


def _reconstruct(loaded: LearnedModel, model: Any, out: Mapping[str, Any]) -> torch.Tensor:
    """What ``decompress`` will return, reusing the encoder's y_hat where the model gives it."""
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


def _unpack(arch: str, loaded: LearnedModel, data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Validate a payload and split it into (format version, height, width, streams)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"{arch}: payload must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size + _CRC.size:
        raise CodecError(f"{arch}: payload of {len(data)} bytes is too short (truncated?)")
    body, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(body) != crc:
        raise CodecError(f"{arch}: payload checksum mismatch (corrupt or truncated payload)")
    version, arch_id, fingerprint, height, width, count = _HEADER.unpack_from(body)
    if version not in (PAYLOAD_VERSION, LEGACY_PAYLOAD_VERSION):
        raise CodecError(
            f"{arch}: payload format version {version}; this innrsic reads "
            f"{LEGACY_PAYLOAD_VERSION} and {PAYLOAD_VERSION}"
        )
    names = {number: name for name, number in ARCH_IDS.items()}
    if arch_id != ARCH_IDS[arch]:
        made_by = names.get(arch_id, f"unknown architecture id {arch_id}")
        raise CodecError(f"{arch}: payload was made by {made_by}, not {arch}")
    ours = (loaded.fingerprint if version == PAYLOAD_VERSION else loaded.legacy_fingerprint)[:4]
    if fingerprint != ours:
        raise CodecError(
            f"{arch}: payload was encoded with other weights (fingerprint {fingerprint.hex()}, "
            f"these weights {ours.hex()})"
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
    return version, height, width, strings


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
