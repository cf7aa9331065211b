"""What `innrsic info` tells about a `.rsic` file: header, sizes, rates and checksums."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from innrsic.errors import InnrsicError
from innrsic.metrics.rate import bits_per_pixel
from innrsic.rsic.coding import RECONSTRUCTION_KEY, reconstruction_checksums
from innrsic.rsic.container import FORMAT_VERSION, ContainerReader


def describe_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fields of the `.rsic` file at `path`, in display order, after its checksums are
    verified (a damaged file raises)."""
    path = Path(path)
    with ContainerReader(path) as container:
        container.verify()
    file_bytes = path.stat().st_size
    tiles = len(container.tile_lengths)
    return {
        "file": str(path),
        "format_version": FORMAT_VERSION,
        "codec": container.codec_spec,
        "width": container.width,
        "height": container.height,
        "tile_width": container.tile_width,
        "tile_height": container.tile_height,
        "tiles": tiles,
        "tile_records": container.tile_records,
        "file_bytes": file_bytes,
        "payload_bytes": container.payload_size,
        "bpp": bits_per_pixel(file_bytes, container.height, container.width),
        "payload_bpp": bits_per_pixel(container.payload_size, container.height, container.width),
        "checksums": "ok",
        "reconstruction": reconstruction_summary(container.metadata, tiles),
        "metadata": container.metadata,
    }


def description_lines(fields: dict[str, Any]) -> list[str]:
    """The text form of `describe_file`'s fields: ``key value`` lines, floats to 4 decimals,
    the metadata without the reconstruction checksums (``reconstruction`` sums them up)."""
    shown = dict(fields)
    shown["metadata"] = {k: v for k, v in fields["metadata"].items() if k != RECONSTRUCTION_KEY}
    return [
        f"{key:14s} {value:.4f}" if isinstance(value, float) else f"{key:14s} {value}"
        for key, value in shown.items()
    ]


def reconstruction_summary(metadata: dict[str, Any], tiles: int) -> str:
    """How the reconstruction checksum of a file with `tiles` tiles reads (coding module doc)."""
    if RECONSTRUCTION_KEY not in metadata:
        return "none (decoding cannot tell a platform that computes differently)"
    try:
        reconstruction_checksums(metadata, tiles)
    except InnrsicError as exc:
        return f"unusable: {exc}"
    return f"crc32 of each of the {tiles} decoded tile(s), checked on decode"
