"""Classical codecs through maintained libraries: JPEG, JPEG 2000, WebP, AVIF (Pillow) and
HEVC-intra / HEIF (pillow-heif, standing in for BPG, which is HEVC-intra too).

Each takes its native quality knob or a target rate ``bpp=X``; with a target, the knob is
searched so that the payload is at or below ``X`` bits per pixel and as close as the knob allows.
Encoder settings other than the knob (``CODEC_SETTINGS``: chroma subsampling, quantisation
tables, JPEG 2000 wavelet, tiles and code-blocks) are spec parameters too, e.g.
``jpeg:bpp=0.4,subsampling=444`` or ``jpeg2000:bpp=0.2,wavelet=53,tile=128,codeblock=32``, so
that training pairs and evaluations can stand for the files users have; the canonical spec
names only settings that differ from the default. Decoders read them from the payload.

Payloads are untrusted input: `ClassicalCodec.decode` reads the size a payload declares from
its header and refuses one above `MAX_PAYLOAD_PIXELS`, or other than the size the caller
expects, before the library allocates or decodes any pixel; every failure is a `CodecError`.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from innrsic.codecs.rate import Knob, fit_to_size
from innrsic.codecs.spec import Param, canonical_spec, check_params
from innrsic.errors import CodecError, CodecSpecError
from innrsic.raster.image import validate_rgb

MAX_PAYLOAD_PIXELS = 1 << 26
"""Most pixels one classical payload holds (e.g. 8192 x 8192, 192 MiB as RGB): `encode`
refuses larger images (code them in tiles) and `decode` refuses payloads declaring more. It
stays below Pillow's decompression-bomb threshold, which therefore never fires on a payload
that is accepted."""

MAX_JPEG_SCANS = 64
"""Most scans a JPEG payload may have (innrsic writes one; progressive files use about ten).
Every scan is a pass over the whole image: 1000 empty scans (12 KB) declaring 8192 x 8192 took
11.5 s to decode."""

BPP_PARAM = Param("bpp", float, "target bits per pixel, searched over the knob", 1e-4, 64.0)


def choice(*values: str) -> Callable[[str], str]:
    """A spec parameter type accepting one of `values` (its name lists them for errors)."""

    def convert(raw: str) -> str:
        if raw.lower() not in values:
            raise ValueError(raw)
        return raw.lower()

    convert.__name__ = "one of " + "/".join(values)
    return convert


def power_of_two(raw: str) -> int:
    """A spec parameter type: 0 or a power of two (the ranges of `Param` bound it further)."""
    value = int(raw)
    if value < 0 or value & (value - 1):
        raise ValueError(raw)
    return value


power_of_two.__name__ = "power of two"


def tile_size(raw: str) -> int:
    """A spec parameter type: 0 (no tiling) or a power of two of at least 32."""
    value = power_of_two(raw)
    if 0 < value < 32:
        raise ValueError(raw)
    return value


tile_size.__name__ = "tile size (0 or a power of two >= 32)"


@dataclass(frozen=True)
class Setting:
    """An encoder setting other than the quality knob: a spec parameter with a default."""

    param: Param
    default: Any

    @property
    def name(self) -> str:
        return self.param.name


SUBSAMPLING = choice("420", "422", "444")
PILLOW_SUBSAMPLING = {"420": "4:2:0", "422": "4:2:2", "444": "4:4:4"}
FLAT_TABLE = [16] * 64
JPEG_TABLES = {"flat": [FLAT_TABLE, FLAT_TABLE]}
"""Quantisation tables other than libjpeg's default (the JPEG standard's Annex K tables,
``tables=annexk``); libjpeg scales them by the quality as it scales the default ones."""


class ClassicalCodec(ABC):
    """A codec with one quality knob, encoding whole images through an image library."""

    name: ClassVar[str]
    description: ClassVar[str]
    knob: ClassVar[Knob]
    knob_param: ClassVar[Param]
    default_knob: ClassVar[float]
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(
        self,
        knob_value: float | None = None,
        bpp: float | None = None,
        **settings: Any,
    ) -> None:
        if knob_value is not None and bpp is not None:
            raise CodecSpecError(
                f"{self.name}: give either {self.knob_param.name} or bpp, not both"
            )
        known = {setting.name: setting for setting in self.settings}
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise CodecSpecError(f"{self.name}: unknown setting(s) {', '.join(unknown)}")
        self.bpp = bpp
        self.last_choice: str | None = None
        self.knob_value = self.default_knob if knob_value is None and bpp is None else knob_value
        self.options = {name: settings.get(name, s.default) for name, s in known.items()}
        value = {"bpp": bpp} if bpp is not None else {self.knob_param.name: self.knob_value}
        value.update({k: v for k, v in self.options.items() if v != known[k].default})
        self.spec = canonical_spec(self.name, value)

    @classmethod
    def rate_params(cls) -> tuple[str, ...]:
        """The spec parameters that set this codec's rate: its knob and ``bpp``."""
        return (cls.knob_param.name, BPP_PARAM.name)

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ClassicalCodec:
        """Build from raw spec parameters (native knob or ``bpp``, and encoder settings)."""
        accepted = {cls.knob_param.name: cls.knob_param, "bpp": BPP_PARAM}
        accepted.update({setting.name: setting.param for setting in cls.settings})
        values = check_params(cls.name, params, accepted)
        knob, bpp = values.pop(cls.knob_param.name, None), values.pop("bpp", None)
        return cls(knob, bpp, **values)

    def encode(self, image: np.ndarray, overhead: int = 0) -> bytes:
        """The payload of `image`; with a ``bpp`` target, `overhead` bytes stored with it (a
        container's tile record) count against the target too (`fit_to_size`)."""
        validate_rgb(image)
        height, width = image.shape[:2]
        if height * width > MAX_PAYLOAD_PIXELS:
            raise CodecError(
                f"{self.name}: {width}x{height} is too large to code whole "
                f"(limit {MAX_PAYLOAD_PIXELS} pixels); code it in tiles"
            )
        if self.bpp is None:
            return self._encode_at(image, self._knob_from_param(self.knob_value))
        max_bytes = self.bpp * height * width / 8.0
        fit = fit_to_size(
            lambda v: self._encode_at(image, v),
            self.knob,
            max_bytes,
            self._rate_guess(self.bpp),
            pixels=height * width,
            overhead=overhead,
        )
        self.last_choice = f"{self.knob_param.name}={self._param_from_knob(fit.knob_value):.4g}"
        return fit.payload

    def decode(self, data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Decode a payload; `shape` is the (height, width) the caller expects, if known.

        The declared size is checked (against `shape` and `MAX_PAYLOAD_PIXELS`) before any
        pixel is decoded; every failure, whatever the library raises, is a `CodecError`.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise CodecError(f"{self.name}: payload must be bytes, got {type(data).__name__}")
        try:
            with warnings.catch_warnings():
                # Declared sizes above ours are refused anyway; keep Pillow's warning silent.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = self._decode(bytes(data), shape)
        except CodecError:
            raise
        except Exception as exc:  # the libraries raise many types on corrupt input
            raise CodecError(f"{self.name}: cannot decode payload ({exc})") from exc
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise CodecError(f"{self.name}: payload decoded to {image.shape} {image.dtype}")
        return np.ascontiguousarray(image)

    def _check_declared(self, width: int, height: int, shape: tuple[int, int] | None) -> None:
        """Refuse the size a payload header declares before its pixels are decoded."""
        if shape is not None and (height, width) != tuple(shape):
            raise CodecError(
                f"{self.name}: payload declares {width}x{height}, expected {shape[1]}x{shape[0]}"
            )
        if not (width >= 1 and height >= 1 and width * height <= MAX_PAYLOAD_PIXELS):
            raise CodecError(
                f"{self.name}: payload declares {width}x{height}, outside 1.."
                f"{MAX_PAYLOAD_PIXELS} pixels"
            )

    def _knob_from_param(self, value: float) -> float:
        """Map the user-facing knob value to the search knob's scale (identity by default)."""
        return value

    def _param_from_knob(self, value: float) -> float:
        """The inverse of `_knob_from_param`: the search knob back in user-facing units."""
        return value

    def _rate_guess(self, bpp: float) -> float | None:
        """A knob value expected to land near `bpp`, to narrow the search (None: no guess)."""
        return None

    def _setting_options(self) -> dict[str, Any]:
        """Library save() arguments for the encoder settings (`settings`); none by default."""
        return {}

    @abstractmethod
    def _encode_at(self, image: np.ndarray, knob_value: float) -> bytes:
        """Encode with the search knob set to `knob_value`."""

    @abstractmethod
    def _decode(self, data: bytes, shape: tuple[int, int] | None) -> np.ndarray:
        """Decode a payload made by `_encode_at`, calling `_check_declared` before decoding."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


class PillowCodec(ClassicalCodec):
    """A codec Pillow both writes and reads; subclasses give the format and save options."""

    pillow_format: ClassVar[str]

    @abstractmethod
    def _save_options(self, image: np.ndarray, knob_value: float) -> dict[str, Any]:
        """Pillow save() keyword arguments for this knob value."""

    def _encode_at(self, image: np.ndarray, knob_value: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="RGB").save(
            buffer, format=self.pillow_format, **self._save_options(image, knob_value)
        )
        return buffer.getvalue()

    def _decode(self, data: bytes, shape: tuple[int, int] | None) -> np.ndarray:
        with Image.open(io.BytesIO(data), formats=[self.pillow_format]) as img:
            self._check_declared(*img.size, shape)
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8)


def quality_knob(label: str, low: int, high: int) -> tuple[Knob, Param]:
    """The search knob and spec parameter of a library's integer ``quality`` from low to high."""
    return (
        Knob("quality", low, high, integer=True),
        Param("quality", int, f"{label} quality {low}-{high}", low, high),
    )


class PillowQualityCodec(PillowCodec):
    """A Pillow codec whose knob is Pillow's ``quality``, saved with fixed other options.

    Subclasses state them as class keywords: ``label`` (for help texts), ``quality`` (lowest,
    highest, default) and ``options`` (the other Pillow save() arguments).
    """

    fixed_options: ClassVar[dict[str, Any]]

    def __init_subclass__(cls, *, label: str, quality: tuple[int, int, int],
                          options: dict[str, Any], **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        low, high, cls.default_knob = quality
        cls.knob, cls.knob_param = quality_knob(label, low, high)
        cls.fixed_options = options

    def _save_options(self, image: np.ndarray, knob_value: float) -> dict[str, Any]:
        return {"quality": int(knob_value), **self.fixed_options, **self._setting_options()}


class JpegCodec(PillowQualityCodec, label="JPEG", quality=(1, 100, 75),
                options={"optimize": True}):
    name = "jpeg"
    description = "JPEG (libjpeg via Pillow), 4:2:0, optimised Huffman tables"
    pillow_format = "JPEG"
    settings = (
        Setting(Param("subsampling", SUBSAMPLING, "chroma subsampling"), "420"),
        Setting(Param("tables", choice("annexk", *JPEG_TABLES), "quantisation tables"),
                "annexk"),
    )

    def _setting_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"subsampling": PILLOW_SUBSAMPLING[self.options["subsampling"]]}
        if self.options["tables"] in JPEG_TABLES:
            options["qtables"] = JPEG_TABLES[self.options["tables"]]
        return options

    def _decode(self, data: bytes, shape: tuple[int, int] | None) -> np.ndarray:
        # Every start-of-scan marker is FF DA: entropy-coded data escapes FF as FF 00, so this
        # counts each scan (and can only overcount, on FF DA inside other marker segments).
        scans = data.count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            raise CodecError(f"jpeg: payload has {scans} scans, more than {MAX_JPEG_SCANS}")
        return super()._decode(data, shape)


class Jpeg2000Codec(PillowCodec):
    """JPEG 2000 codestream (OpenJPEG), 9/7 wavelet with the YCbCr colour transform (mct).

    Native knob ``ratio``: compression ratio against 24-bit RGB (``ratio=48`` is about 0.5 bpp).
    The search runs on ``1/ratio`` so that a larger knob means a larger payload.
    """

    name = "jpeg2000"
    description = "JPEG 2000 codestream (OpenJPEG via Pillow), 9/7 wavelet"
    pillow_format = "JPEG2000"
    knob = Knob("1/ratio", 1e-4, 1.0, integer=False)
    knob_param = Param("ratio", float, "compression ratio vs 24-bit RGB, 1-10000", 1.0, 1e4)
    default_knob = 40.0
    settings = (
        Setting(Param("wavelet", choice("97", "53"), "9/7 (irreversible) or 5/3 wavelet"), "97"),
        Setting(Param("tile", tile_size, "tile size in px (0: one tile)", 0, 1 << 14), 0),
        Setting(Param("codeblock", power_of_two, "code-block size in px, 4-64", 4, 64), 64),
    )

    def _knob_from_param(self, value: float) -> float:
        return 1.0 / value

    def _param_from_knob(self, value: float) -> float:
        return 1.0 / value

    def _rate_guess(self, bpp: float) -> float | None:
        # OpenJPEG's rate allocation aims at the requested ratio, so 1/ratio = bpp / 24 is close.
        return min(self.knob.high, bpp / 24.0)

    def _save_options(self, image: np.ndarray, knob_value: float) -> dict[str, Any]:
        tile, codeblock = self.options["tile"], self.options["codeblock"]
        shortest = min(*image.shape[:2], *((tile,) if tile else ()))
        resolutions = max(1, min(6, int(math.log2(shortest)) + 1)) if shortest > 1 else 1
        options = {
            "irreversible": self.options["wavelet"] == "97",
            "mct": 1,
            "no_jp2": True,
            "quality_mode": "rates",
            "quality_layers": [1.0 / knob_value],
            "num_resolutions": resolutions,
            "codeblock_size": (codeblock, codeblock),
        }
        if tile:
            options["tile_size"] = (tile, tile)
        return options


class WebpCodec(PillowQualityCodec, label="WebP", quality=(0, 100, 75), options={"method": 6}):
    name = "webp"
    description = "WebP lossy (libwebp via Pillow), method 6"
    pillow_format = "WEBP"


class AvifCodec(PillowQualityCodec, label="AVIF", quality=(0, 100, 50), options={"speed": 6}):
    name = "avif"
    description = "AVIF / AV1-intra (libavif via Pillow), 4:2:0, speed 6"
    pillow_format = "AVIF"
    settings = (Setting(Param("subsampling", SUBSAMPLING, "chroma subsampling"), "420"),)

    def _setting_options(self) -> dict[str, Any]:
        return {"subsampling": PILLOW_SUBSAMPLING[self.options["subsampling"]]}


class HeifCodec(ClassicalCodec):
    """HEVC-intra in a HEIF file (libheif + x265 via pillow-heif), the BPG-like anchor."""

    name = "heif"
    description = "HEVC-intra / HEIF (x265 via pillow-heif), 4:2:0"
    knob, knob_param = quality_knob("HEIF", 0, 100)
    default_knob = 50
    settings = (Setting(Param("chroma", SUBSAMPLING, "chroma subsampling"), "420"),)

    def _encode_at(self, image: np.ndarray, knob_value: float) -> bytes:
        import pillow_heif

        heif = pillow_heif.from_bytes(
            mode="RGB", size=(image.shape[1], image.shape[0]), data=image.tobytes()
        )
        buffer = io.BytesIO()
        heif.save(buffer, quality=int(knob_value), chroma=int(self.options["chroma"]))
        return buffer.getvalue()

    def _decode(self, data: bytes, shape: tuple[int, int] | None) -> np.ndarray:
        import pillow_heif

        # The handle's size is after the clean-aperture crop; the coded extents (`ispe`, padded
        # by the encoder) are what libheif decodes to, so they are bounded too.
        for width, height in _heif_extents(data):
            self._check_declared(width, height, None)
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        self._check_declared(*heif.size, shape)
        if heif.mode != "RGB":
            raise CodecError(f"heif: payload holds a {heif.mode} image, expected RGB")
        return np.asarray(heif, dtype=np.uint8)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, end) of each ISO-BMFF box between `start` and `end`."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise CodecError(f"heif: malformed {kind!r} box at byte {offset}")
        yield kind, offset + header, offset + size
        offset += size


def _heif_extents(data: bytes) -> list[tuple[int, int]]:
    """(width, height) of every image extent property (``meta/iprp/ipco/ispe``) of a HEIF file."""
    found: list[tuple[int, int]] = []

    def walk(start: int, end: int, path: tuple[bytes, ...]) -> None:
        for kind, body, stop in _boxes(data, start, end):
            if kind != path[0]:
                continue
            if len(path) > 1:
                walk(body + 4 if kind == b"meta" else body, stop, path[1:])  # meta: FullBox
            elif stop - body >= 12:  # FullBox header, then width and height
                found.append(struct.unpack_from(">II", data, body + 4))

    walk(0, len(data), (b"meta", b"iprp", b"ipco", b"ispe"))
    return found


CLASSICAL_CODECS: dict[str, type[ClassicalCodec]] = {
    codec.name: codec for codec in (JpegCodec, Jpeg2000Codec, WebpCodec, AvifCodec, HeifCodec)
}
