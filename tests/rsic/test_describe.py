"""What `innrsic info` shows of a georeferenced, tiled scene with nodata."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasterio.crs import CRS

from innrsic.cli import main
from innrsic.rsic.describe import crs_name, describe_file, description_lines


def test_georeferenced_scene_reads_as_words(
    scene: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 32, item 13: the CRS as its EPSG code, the transform, nodata and tile records in
    words, in aligned key: value lines; no dict repr, no WKT, no raw checksum string."""
    assert main(["info", str(scene["rsic"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    fields = dict(line.split(": ", 1) for line in lines)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    assert fields["tiles"] == "12 of 128 x 128 px"
    assert fields["tile records"] == "a CRC-32 and nodata mask per tile"
    assert fields["CRS"] == "EPSG:32633"
    assert fields["origin"] == "500000, 4.1e+06" and fields["pixel size"] == "0.5 x -0.5"
    assert fields["nodata"] == "0 (restored exactly)"
    assert fields["reconstruction"] == "crc32 of each of the 12 decoded tile(s), checked on decode"
    assert len({len(line) - len(line.split(": ", 1)[1].lstrip()) for line in lines}) == 1
    text = "\n".join(lines)
    assert "{" not in text and "PROJCS" not in text and "UTM" not in text


def test_crs_names() -> None:
    """A CRS with an EPSG code reads as it; one without, by its name."""
    assert crs_name(None) == "none"
    assert crs_name(CRS.from_epsg(4326).to_wkt()) == "EPSG:4326"
    assert crs_name('LOCAL_CS["my grid",UNIT["metre",1]]') == "my grid"


def test_unknown_metadata_is_shown_as_json(scene: dict[str, Path]) -> None:
    fields = describe_file(scene["rsic"])
    fields["metadata"] = {**fields["metadata"], "mission": {"name": "S2"}}
    assert 'mission:        {"name": "S2"}' in description_lines(fields)
