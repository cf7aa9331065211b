"""The `Codec` protocol every base codec implements, classical or learned."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Codec(Protocol):
    """Turns an HxWx3 uint8 image into a self-contained payload and back.

    `spec` is the canonical spec string: ``make_codec(codec.spec)`` builds an equivalent codec.
    `decode` needs only the payload (plus what `spec` names, such as learned weights); the
    image size is recovered from the payload itself. Payloads are untrusted: `decode` raises
    `CodecError` for any malformed one, and given `shape` (the (height, width) a container
    declares for it) refuses a payload declaring another size before decoding any pixel.
    """

    spec: str

    def encode(self, image: np.ndarray) -> bytes:
        """Compress an HxWx3 uint8 image into payload bytes."""
        ...

    def decode(self, data: bytes, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Decompress payload bytes into an HxWx3 uint8 image (of `shape`, if given)."""
        ...
