"""What `innrsic info` tells about a `.rsic` file: header, sizes, rates and checksums, as
fields (JSON), as readable ``key: value`` lines, and as one row of a table over many files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from innrsic.errors import InnrsicError
from innrsic.metrics.rate import bits_per_pixel
from innrsic.rsic.coding import RECONSTRUCTION_KEY, reconstruction_checksums
from innrsic.rsic.container import FORMAT_VERSION, ContainerReader

TABLE_FIELDS = (
    "file", "codec", "width", "height", "tiles", "file_bytes", "payload_bytes", "bpp",
    "payload_bpp", "checksums",
)  # the columns of `info` over several files (text table and CSV)
_KNOWN_METADATA = ("samples", "nodata", "geo", RECONSTRUCTION_KEY)


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
    """The text form of `describe_file`'s fields: aligned ``key: value`` lines in words (the
    CRS as its EPSG code, the reconstruction checksums summed up, not listed)."""
    metadata = fields["metadata"]
    tiles = fields["tiles"]
    whole = fields["tile_width"] == 0 or (
        fields["tile_width"] >= fields["width"] and fields["tile_height"] >= fields["height"]
    )
    tiling = "1 (the whole image)" if tiles == 1 and whole else (
        f"{tiles} of {fields['tile_width']} x {fields['tile_height']} px"
    )
    records = "a CRC-32 and nodata mask per tile" if fields["tile_records"] else "none"
    pairs = [
        ("file", fields["file"]),
        ("format version", fields["format_version"]),
        ("codec", fields["codec"]),
        ("size", f"{fields['width']} x {fields['height']} px"),
        ("tiles", tiling),
        ("tile records", records),
        ("file size", f"{fields['file_bytes']} bytes, {fields['bpp']:.4f} bpp"),
        ("payload", f"{fields['payload_bytes']} bytes, {fields['payload_bpp']:.4f} bpp "
                    "(tiles as stored, what a bpp target caps; the rest is header and "
                    "metadata)"),
        ("checksums", fields["checksums"]),
        ("reconstruction", fields["reconstruction"]),
        *_metadata_pairs(metadata),
    ]
    width = max(len(key) for key, _ in pairs) + 2
    return [f"{key + ':':{width}s}{value}" for key, value in pairs]


def _metadata_pairs(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, text) for the sample mapping, nodata, georeferencing and any other metadata."""
    samples = metadata.get("samples")
    pairs = [("samples", "8-bit RGB, as coded" if samples is None else _samples_text(samples))]
    nodata = metadata.get("nodata")
    pairs.append(("nodata", "none" if nodata is None else f"{nodata:g} (restored exactly)"))
    geo = metadata.get("geo")
    if geo is None:
        pairs.append(("georeferencing", "none"))
    else:
        pairs.append(("CRS", crs_name(geo.get("crs"))))
        transform = geo.get("transform")
        if transform is not None:
            a, b, c, d, e, f = transform[:6]
            pairs.append(("origin", f"{c:g}, {f:g}"))
            pairs.append(("pixel size", f"{a:g} x {e:g}" + (" (rotated)" if b or d else "")))
        if geo.get("band_descriptions"):
            pairs.append(("band names", ", ".join(map(str, geo["band_descriptions"]))))
    pairs += [
        (key, json.dumps(value)) for key, value in metadata.items() if key not in _KNOWN_METADATA
    ]
    return pairs


def _samples_text(samples: dict[str, Any]) -> str:
    """How a stored sample mapping reads, e.g. ``uint16 bands 3,2,1, 0..4000 -> 0..255``."""
    bands = ",".join(str(band) for band in samples.get("bands", ()))
    text = f"{samples.get('dtype', 'uint8')} bands {bands}"
    scale = samples.get("scale")
    if scale is not None:
        text += f", {scale[0]:g}..{scale[1]:g} mapped to 0..255 (restored on decode)"
    return text


def crs_name(wkt: str | None) -> str:
    """A CRS as ``EPSG:NNNN`` when it has a code, else its name (`wkt`: as stored)."""
    if not wkt:
        return "none"
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        epsg = CRS.from_user_input(wkt).to_epsg()
    except CRSError:
        epsg = None
    if epsg is not None:
        return f"EPSG:{epsg}"
    return wkt.split('"')[1] if wkt.count('"') >= 2 else wkt[:60]


def table_row(fields: dict[str, Any]) -> dict[str, Any]:
    """The `TABLE_FIELDS` of `describe_file`'s fields."""
    return {key: fields[key] for key in TABLE_FIELDS}


def reconstruction_summary(metadata: dict[str, Any], tiles: int) -> str:
    """How the reconstruction checksum of a file with `tiles` tiles reads (coding module doc)."""
    if RECONSTRUCTION_KEY not in metadata:
        return "none (decoding cannot tell a platform that computes differently)"
    try:
        reconstruction_checksums(metadata, tiles)
    except InnrsicError as exc:
        return f"unusable: {exc}"
    return f"crc32 of each of the {tiles} decoded tile(s), checked on decode"
