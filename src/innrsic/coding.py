"""File-level coding: image -> codec payload -> `.rsic` container, and back."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from innrsic.codecs import Codec, make_codec
from innrsic.container import Container, read_container_file, write_container_file
from innrsic.errors import CodecError
from innrsic.imageio import read_image, validate_rgb, write_image
from innrsic.metrics.rate import bits_per_pixel


@dataclass(frozen=True)
class CompressResult:
    """What compressing one image produced."""

    width: int
    height: int
    file_bytes: int
    payload_bytes: int

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file (header and checksums included)."""
        return bits_per_pixel(self.file_bytes, self.height, self.width)

    @property
    def payload_bpp(self) -> float:
        """Bits per pixel of the codec payload alone."""
        return bits_per_pixel(self.payload_bytes, self.height, self.width)


def compress_image(image: np.ndarray, codec: Codec) -> Container:
    """Encode an HxWx3 uint8 image into a container."""
    validate_rgb(image)
    payload = codec.encode(image)
    return Container(codec.spec, image.shape[1], image.shape[0], (payload,))


def decompress_container(container: Container, codec: Codec | None = None) -> np.ndarray:
    """Decode a container with `codec`, or with one built from the container's codec spec."""
    codec = codec if codec is not None else make_codec(container.codec_spec)
    image = codec.decode(container.payload)
    expected = (container.height, container.width, 3)
    if image.shape != expected:
        raise CodecError(f"payload decoded to {image.shape}, header says {expected}")
    return image


def compress_file(
    source: str | os.PathLike[str], target: str | os.PathLike[str], codec: Codec
) -> CompressResult:
    """Read an image file, encode it and write the `.rsic` file atomically."""
    container = compress_image(read_image(source), codec)
    size = write_container_file(target, container)
    return CompressResult(container.width, container.height, size, container.payload_size)


def decompress_file(
    source: str | os.PathLike[str], target: str | os.PathLike[str], codec: Codec | None = None
) -> np.ndarray:
    """Read a `.rsic` file, decode it and write the image file atomically; returns the image."""
    image = decompress_container(read_container_file(source), codec)
    write_image(target, image)
    return image
