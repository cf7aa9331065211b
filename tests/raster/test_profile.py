"""One raster output profile: every writer (GeoTIFF sink, COG, decompress, enhance output)
takes its block size and compression from `OUTPUT_PROFILE`."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import rasterio

from innrsic.raster import cog
from innrsic.raster.geotiff import OUTPUT_PROFILE, GeoTiffSink, open_sink
from innrsic.raster.tiling import Window


def test_profile_values_and_block_fallback() -> None:
    assert (OUTPUT_PROFILE.block, OUTPUT_PROFILE.compress) == (512, "deflate")
    assert OUTPUT_PROFILE.block_for(256) == 256
    assert OUTPUT_PROFILE.block_for(0) == OUTPUT_PROFILE.block
    assert OUTPUT_PROFILE.block_for(24) == OUTPUT_PROFILE.block
    assert OUTPUT_PROFILE.block_for(8192) == OUTPUT_PROFILE.block


def test_writers_default_to_the_profile() -> None:
    from innrsic.rsic.coding import decompress_file

    for function, names in ((GeoTiffSink.__init__, ("block", "compress")),
                            (open_sink, ("block", "compress")),
                            (decompress_file, ("tiff_compression",))):
        parameters = inspect.signature(function).parameters
        for name in names:
            expected = OUTPUT_PROFILE.block if name == "block" else OUTPUT_PROFILE.compress
            assert parameters[name].default == expected, (function, name)
    assert cog.creation_options()["BLOCKSIZE"] == str(OUTPUT_PROFILE.block)
    assert cog.creation_options()["COMPRESS"] == OUTPUT_PROFILE.compress.upper()
    assert inspect.signature(cog.write_cog).parameters["compress"].default == "deflate"


def test_geotiff_sink_writes_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "out.tif"
    with open_sink(path, 600, 520) as sink:
        sink.write(Window(0, 0, 600, 520), np.zeros((520, 600, 3), np.uint8), None)
    with rasterio.open(path) as dataset:
        assert dataset.block_shapes[0] == (OUTPUT_PROFILE.block, OUTPUT_PROFILE.block)
        assert dataset.compression.value.lower() == OUTPUT_PROFILE.compress


def test_cog_help_names_the_profile() -> None:
    import argparse

    from innrsic.cli.options import add_image_format_option

    parser = argparse.ArgumentParser()
    add_image_format_option(parser)
    (action,) = [a for a in parser._actions if a.dest == "format"]
    assert "DEFLATE lossless, 512 px blocks, overviews" in action.help
