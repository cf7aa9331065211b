"""`innrsic compress`, `decompress` and `info`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from innrsic.batch import plan_jobs, run_jobs
from innrsic.codecs import describe_codecs, make_codec
from innrsic.coding import compress_file, decompress_file
from innrsic.container import FORMAT_VERSION, SUFFIX, read_container_file
from innrsic.imageio import IMAGE_SUFFIXES
from innrsic.metrics.rate import bits_per_pixel

COMPRESS_EXAMPLES = """examples:
  innrsic compress scene.png -o scene.rsic --codec jpeg2000:bpp=0.2
  innrsic compress scene.tif -o out/ --codec jpeg:quality=20
  innrsic compress images/ -o bitstreams/ --codec heif:bpp=0.3 --force

codec specs are NAME or NAME:KEY=VALUE[,KEY=VALUE]; every codec takes its quality knob
or a target rate bpp=X (the knob is searched to land at or below X bits per pixel).
"""

DECOMPRESS_EXAMPLES = """examples:
  innrsic decompress scene.rsic -o scene.png
  innrsic decompress bitstreams/ -o decoded/ --format tif
"""

INFO_EXAMPLES = """examples:
  innrsic info scene.rsic
  innrsic info scene.rsic --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the coding commands."""
    codecs = "\n".join(f"  {name:10s} {text}" for name, text in describe_codecs().items())
    compress = subparsers.add_parser(
        "compress",
        help="encode images into .rsic files",
        epilog=f"{COMPRESS_EXAMPLES}\ncodecs:\n{codecs}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compress.add_argument("input", type=Path, help="image file or directory of images")
    compress.add_argument(
        "-o", "--output", type=Path, required=True, help=".rsic file or directory"
    )
    compress.add_argument("--codec", required=True, help="codec spec, e.g. jpeg2000:bpp=0.2")
    compress.add_argument("--force", action="store_true", help="replace existing output files")
    compress.set_defaults(handler=run_compress)

    decompress = subparsers.add_parser(
        "decompress",
        help="decode .rsic files into images",
        epilog=DECOMPRESS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decompress.add_argument("input", type=Path, help=".rsic file or directory of them")
    decompress.add_argument("-o", "--output", type=Path, required=True, help="image file or dir")
    decompress.add_argument(
        "--format", default="png", choices=["png", "tif", "jpg"], help="image format in dir mode"
    )
    decompress.add_argument("--force", action="store_true", help="replace existing output files")
    decompress.set_defaults(handler=run_decompress)

    info = subparsers.add_parser(
        "info",
        help="show the header of a .rsic file",
        epilog=INFO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("input", type=Path, help=".rsic file")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(handler=run_info)


def run_compress(args: argparse.Namespace) -> int:
    codec = make_codec(args.codec)

    def compress_one(source: Path, target: Path) -> str:
        result = compress_file(source, target, codec)
        return (
            f"{target}: {result.width}x{result.height}, {result.file_bytes} bytes, "
            f"{result.bpp:.4f} bpp ({result.payload_bpp:.4f} bpp payload), {codec.spec}"
        )

    jobs = plan_jobs(args.input, args.output, IMAGE_SUFFIXES, SUFFIX)
    report = run_jobs(jobs, compress_one, "compress", overwrite=args.force)
    report.print_summary("compressed")
    return report.exit_code if jobs else _no_inputs(args.input)


def run_decompress(args: argparse.Namespace) -> int:
    def decompress_one(source: Path, target: Path) -> str:
        image = decompress_file(source, target)
        return f"{target}: {image.shape[1]}x{image.shape[0]}"

    jobs = plan_jobs(args.input, args.output, [SUFFIX], f".{args.format}")
    report = run_jobs(jobs, decompress_one, "decompress", overwrite=args.force)
    report.print_summary("decompressed")
    return report.exit_code if jobs else _no_inputs(args.input)


def run_info(args: argparse.Namespace) -> int:
    container = read_container_file(args.input)
    file_bytes = args.input.stat().st_size
    fields = {
        "file": str(args.input),
        "format_version": FORMAT_VERSION,
        "codec": container.codec_spec,
        "width": container.width,
        "height": container.height,
        "tile_width": container.tile_width,
        "tile_height": container.tile_height,
        "tiles": len(container.payloads),
        "file_bytes": file_bytes,
        "payload_bytes": container.payload_size,
        "bpp": bits_per_pixel(file_bytes, container.height, container.width),
        "payload_bpp": bits_per_pixel(container.payload_size, container.height, container.width),
        "checksums": "ok",
        "metadata": container.metadata,
    }
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        for key, value in fields.items():
            print(f"{key:14s} {value:.4f}" if isinstance(value, float) else f"{key:14s} {value}")
    return 0


def _no_inputs(source: Path) -> int:
    print(f"no input files found at {source}")
    return 1
