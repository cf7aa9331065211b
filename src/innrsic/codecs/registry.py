"""One registry from spec strings (``"jpeg2000:bpp=0.1"``) to codec objects.

Learned codecs come from the architecture table (:mod:`innrsic.codecs.architectures`); their
module (and torch) is imported only when a learned spec is used.
"""

from __future__ import annotations

import os

from innrsic.codecs.architectures import ARCHITECTURES
from innrsic.codecs.base import Codec
from innrsic.codecs.spec import CodecSpec
from innrsic.errors import CodecSpecError

CLASSICAL = ("jpeg", "jpeg2000", "webp", "avif", "heif")
"""The codecs of :mod:`innrsic.codecs.classical`."""
CODECS: tuple[str, ...] = (*CLASSICAL, *ARCHITECTURES)
"""Every codec name, in help-text order."""
ALIASES = {"jp2": "jpeg2000", "j2k": "jpeg2000", "jpg": "jpeg", "hevc": "heif", "bpg": "heif"}


def codec_class(name: str) -> type:
    """The class implementing codec `name` (aliases accepted); unknown names list valid ones."""
    canonical = ALIASES.get(name, name)
    if canonical not in CODECS:
        raise CodecSpecError(
            f"unknown codec {name!r}; valid codecs: {', '.join(sorted(CODECS))}"
            f" (aliases: {', '.join(f'{a}={b}' for a, b in sorted(ALIASES.items()))})"
        )
    if canonical in ARCHITECTURES:
        from innrsic.codecs.learned import LEARNED_CODECS

        return LEARNED_CODECS[canonical]
    from innrsic.codecs.classical import CLASSICAL_CODECS

    return CLASSICAL_CODECS[canonical]


def make_codec(
    spec: str | CodecSpec | Codec, weights: str | os.PathLike[str] | None = None
) -> Codec:
    """Build a codec from a spec string such as ``"jpeg:quality=20"`` or ``"jpeg2000:bpp=0.1"``;
    a codec is returned as it is, so every function taking a codec also takes its spec.

    `weights`: where a learned codec looks first for the weights its spec names (a file or a
    directory; ``decompress --weights``); classical codecs ignore it.
    """
    if isinstance(spec, Codec):
        return spec
    if not isinstance(spec, str | CodecSpec):
        raise CodecSpecError(
            f"a codec must be a spec string such as 'jpeg2000:bpp=0.2' or a Codec, not "
            f"{type(spec).__name__}"
        )
    parsed = spec if isinstance(spec, CodecSpec) else CodecSpec.parse(spec)
    cls = codec_class(parsed.name)
    if weights is not None and parsed.name in ARCHITECTURES:
        return cls.from_params(parsed.params, weights_hint=weights)
    return cls.from_params(parsed.params)


def describe_codecs() -> dict[str, str]:
    """Codec name -> one-line description, for help texts."""
    return {name: codec_class(name).description for name in CODECS}
