"""Base codecs behind one interface, built from spec strings."""

from innrsic.codecs.base import Codec
from innrsic.codecs.registry import CODECS, describe_codecs, make_codec
from innrsic.codecs.spec import CodecSpec

__all__ = ["CODECS", "Codec", "CodecSpec", "describe_codecs", "make_codec"]
