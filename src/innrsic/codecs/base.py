"""The `Codec` protocol every base codec implements, classical or learned, and the optional
capabilities file-level coding uses beyond it.

Each capability is a runtime-checkable protocol: a codec has it when it implements its
members, and `innrsic.rsic.coding` asks with ``isinstance``.
"""

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


@runtime_checkable
class Reconstructing(Protocol):
    """Encodes and gives its own decoded pixels in one go (no second decode for a checksum)."""

    def encode_and_reconstruct(self, image: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The payload of an HxWx3 uint8 image and the HxWx3 uint8 image it decodes to."""
        ...


@runtime_checkable
class RateTargeting(Protocol):
    """Searches its knob for a target rate and says what it chose for the last image."""

    last_choice: str | None
    """The knob the last `encode` chose, e.g. ``quality=37``; None without a rate target."""

    def encode(self, image: np.ndarray, overhead: int = 0) -> bytes:
        """The payload of an HxWx3 uint8 image; `overhead` bytes the container stores with it
        (tile record, nodata mask) count against the rate target too."""
        ...
