"""The Python API on HxWx3 uint8 arrays, re-exported by `innrsic`: ``compress`` -> ``.rsic``
bytes, ``decompress`` -> array, ``load_enhancer`` (a shipped model's name or a weights file, on
a device: ``auto``, ``cpu`` or ``cuda`` as ``--device`` takes them), with
`innrsic.enhancer.apply.enhance_image` (the model's default temperature; the latent keyed to
(seed, pixel position), as every command draws it; on the network's device unless given
another) beside them. File-level and tiled
variants: `innrsic.rsic.coding`, `innrsic.enhancer.apply` (taking an
`innrsic.enhancer.EnhanceSettings`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from innrsic.codecs import Codec
    from innrsic.enhancer import INNEnhancer
    from innrsic.enhancer.settings import Device
    from innrsic.rsic.coding import TileSize


def compress(
    image: np.ndarray,
    codec: str | Codec,
    tile: TileSize = 0,
    nodata: float | None = None,
) -> bytes:
    """Encode an HxWx3 uint8 image with `codec` (a spec such as ``"jpeg2000:bpp=0.2"``) into
    the bytes of a `.rsic` file; `tile` and `nodata` as in `innrsic.rsic.coding.compress_image`."""
    from innrsic.codecs import make_codec
    from innrsic.rsic.coding import compress_image
    from innrsic.rsic.container import pack_container

    codec = make_codec(codec) if isinstance(codec, str) else codec
    return pack_container(compress_image(image, codec, tile, nodata))


def decompress(data: bytes) -> np.ndarray:
    """Decode the bytes of a `.rsic` file to an HxWx3 uint8 image."""
    from innrsic.rsic.coding import decompress_container
    from innrsic.rsic.container import read_container

    return decompress_container(read_container(data))


def load_enhancer(
    name_or_path: str | os.PathLike[str], device: Device | None = None
) -> INNEnhancer:
    """A shipped enhancer by name (``innrsic models``) or a weights file, in eval mode, on
    `device` (`innrsic.enhancer.settings.resolve_device`; None: its `DEFAULT_DEVICE`, auto: a
    CUDA GPU where torch sees one, else the CPU; cuda where there is none is a ConfigError,
    before loading); it knows its `default_temperature` and the `codec` it was trained
    behind."""
    from innrsic.enhancer import load_enhancer as load_weights
    from innrsic.enhancer.settings import DEFAULT_DEVICE, resolve_device

    return load_weights(name_or_path, device=resolve_device(device or DEFAULT_DEVICE)).eval()

