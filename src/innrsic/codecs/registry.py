"""One registry from spec strings (``"jpeg2000:bpp=0.1"``) to codec objects.

Each entry names the module and class that implement a codec, so learned codecs (and torch)
are imported only when a learned spec is used.
"""

from __future__ import annotations

import importlib

from innrsic.codecs.base import Codec
from innrsic.codecs.spec import CodecSpec
from innrsic.errors import CodecSpecError

CODECS: dict[str, tuple[str, str]] = {
    "jpeg": ("innrsic.codecs.classical", "JpegCodec"),
    "jpeg2000": ("innrsic.codecs.classical", "Jpeg2000Codec"),
    "webp": ("innrsic.codecs.classical", "WebpCodec"),
    "avif": ("innrsic.codecs.classical", "AvifCodec"),
    "heif": ("innrsic.codecs.classical", "HeifCodec"),
    "elic": ("innrsic.codecs.learned", "ElicCodec"),
    "bmshj2018-factorized": ("innrsic.codecs.learned", "Bmshj2018FactorizedCodec"),
    "bmshj2018-factorized-relu": ("innrsic.codecs.learned", "Bmshj2018FactorizedReluCodec"),
    "bmshj2018-hyperprior": ("innrsic.codecs.learned", "Bmshj2018HyperpriorCodec"),
    "mbt2018-mean": ("innrsic.codecs.learned", "Mbt2018MeanCodec"),
    "mbt2018": ("innrsic.codecs.learned", "Mbt2018Codec"),
    "cheng2020-anchor": ("innrsic.codecs.learned", "Cheng2020AnchorCodec"),
    "cheng2020-attn": ("innrsic.codecs.learned", "Cheng2020AttentionCodec"),
}
ALIASES = {"jp2": "jpeg2000", "j2k": "jpeg2000", "jpg": "jpeg", "hevc": "heif", "bpg": "heif"}


def codec_class(name: str) -> type:
    """The class implementing codec `name` (aliases accepted); unknown names list valid ones."""
    canonical = ALIASES.get(name, name)
    if canonical not in CODECS:
        raise CodecSpecError(
            f"unknown codec {name!r}; valid codecs: {', '.join(sorted(CODECS))}"
            f" (aliases: {', '.join(f'{a}={b}' for a, b in sorted(ALIASES.items()))})"
        )
    module_name, class_name = CODECS[canonical]
    return getattr(importlib.import_module(module_name), class_name)


def make_codec(spec: str | CodecSpec) -> Codec:
    """Build a codec from a spec string such as ``"jpeg:quality=20"`` or ``"jpeg2000:bpp=0.1"``."""
    parsed = spec if isinstance(spec, CodecSpec) else CodecSpec.parse(spec)
    return codec_class(parsed.name).from_params(parsed.params)


def describe_codecs() -> dict[str, str]:
    """Codec name -> one-line description, for help texts."""
    return {name: codec_class(name).description for name in CODECS}
