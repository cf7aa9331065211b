"""`innrsic compress`, `decompress` and `info`."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from innrsic.cli.batch import BatchReport, batch_client, refuse_existing, run_batch, run_jobs
from innrsic.cli.enhance import (
    add_enhancer_options,
    reject_enhancer_options,
    run_enhancing_batch,
)
from innrsic.cli.options import (
    IMAGE_OUTPUT_HELP,
    add_cluster_options,
    add_existing_options,
    add_image_format_option,
    add_input_output,
    add_sample_options,
    image_target,
    plan_image_outputs,
    plan_outputs,
)
from innrsic.codecs import describe_codecs, make_codec
from innrsic.codecs.spec import CodecSpec
from innrsic.compute.cluster import cluster_plan, worker_cached
from innrsic.errors import InnrsicError, UsageError, WeightsError
from innrsic.raster.geotiff import open_source
from innrsic.raster.image import IMAGE_SUFFIXES
from innrsic.raster.tiling import TileGrid, Window
from innrsic.rsic.coding import (
    CONTAINER_TILE,
    WHOLE_IMAGE_MAX_SIDE,
    BatchEncoder,
    CompressResult,
    compress_file,
    decompress_file,
    resolve_tile,
)
from innrsic.rsic.container import SUFFIX, ContainerReader
from innrsic.rsic.describe import TABLE_FIELDS, describe_file, description_lines, table_row
from innrsic.rsic.tile_parallel import cluster_encoder

if TYPE_CHECKING:
    from innrsic.codecs import Codec
    from innrsic.enhancer.session import EnhancerSession

COMPRESS_EXAMPLES = """examples:
  innrsic compress scene.png -o scene.rsic --codec jpeg2000:bpp=0.2
  innrsic compress scene.tif -o out/ --codec jpeg:quality=20
  innrsic compress images/ -o bitstreams/ --codec heif:bpp=0.3 --force
  innrsic compress scene.tif -o scene.rsic --codec jpeg2000:ratio=40 --tile 1024
  innrsic compress ms.tif -o ms.rsic --codec jpeg:quality=80 --bands 3,2,1 --scale auto
  innrsic compress dota.png -o dota.rsic --codec jpeg:quality=60 --nodata 0

codec specs are NAME or NAME:KEY=VALUE[,KEY=VALUE]; every codec takes its quality knob
or a target rate bpp=X (the knob is searched to land at or below X bits per pixel; with
tiles, each tile is searched on its own).

large scenes: give a GeoTIFF/TIFF; it is read, coded and written one tile at a time
(PNG/JPEG are read whole). CRS, geotransform, nodata and band descriptions are stored and
written back by `decompress -o out.tif`. Nodata pixels are restored exactly.
16-bit, float and multispectral rasters need --bands and/or --scale (lossy: 256 levels
over the range, restored on decode); without them they are refused.

reconstruction checksum: each file stores the CRC-32 of every tile as decoded on this
machine, so a decoder whose floating point (or codec library) differs reports it instead of
returning wrong pixels (costs one extra decode for classical codecs; --no-checksum omits it).

batches: a file that fails is listed at the end and the exit status is 1; Ctrl-C or SIGTERM
stops after removing the file in progress (exit status 130 / 143), and --skip-existing
finishes the rest. --skip-existing refuses to start (exit status 2) when an existing output
was made with another codec spec than --codec: use --force to redo those, or another -o.
"""

DECOMPRESS_EXAMPLES = """examples:
  innrsic decompress scene.rsic -o scene.png --enhance enhancer.safetensors --temperature 0.5
  innrsic decompress scene.rsic -o scene.png --enhance enhancer-jpeg2000-bpp0.1
  innrsic decompress scene.rsic -o scene.png --enhance auto
  innrsic decompress scene.rsic -o scene.png
  innrsic decompress bitstreams/ -o decoded/ --format tif
  innrsic decompress scene.rsic -o part.tif --region 4096,2048,1024,1024

--region x,y,w,h decodes only the tiles that region touches. A .tif output keeps the
georeferencing (moved to the region's corner), nodata and the source sample type; PNG and
JPEG outputs are 8-bit RGB without georeferencing.

Files with a reconstruction checksum (`innrsic info` shows it) are checked tile by tile: a
tile that decodes to other pixels than on the encoding machine (different floating point or
codec library) fails the file with a message naming the tile; --no-verify decodes anyway.
"""

INFO_EXAMPLES = """examples:
  innrsic info scene.rsic
  innrsic info scene.rsic --json
  innrsic info a.rsic b.rsic          # a table, one row per file
  innrsic info streams/ --csv > rates.csv

One file: its header, sizes, rates (bpp of the whole file and of the codec payload alone),
checksums and metadata. Several files or a folder (searched recursively for .rsic files): one
row per file (--json: a list of the objects one file gives); a file that cannot be read is
reported on stderr and the exit status is 1.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the coding commands."""
    _register_compress(subparsers)
    _register_decompress(subparsers)
    _register_info(subparsers)


def _register_compress(subparsers: argparse._SubParsersAction) -> None:
    """Add `compress`."""
    codecs = "\n".join(f"  {name:10s} {text}" for name, text in describe_codecs().items())
    compress = subparsers.add_parser(
        "compress",
        help="encode images into .rsic files",
        epilog=f"{COMPRESS_EXAMPLES}\ncodecs:\n{codecs}",
    )
    add_input_output(compress, "image file or directory of images", ".rsic file or directory")
    compress.add_argument("--codec", required=True, help="codec spec, e.g. jpeg2000:bpp=0.2")
    compress.add_argument(
        "--tile",
        type=_tile_size,
        default="auto",
        metavar="N",
        help=f"code in independently decodable NxN tiles (a multiple of 16, >= 64; 0: whole "
        f"image; default auto: whole up to {WHOLE_IMAGE_MAX_SIDE} px per side, else "
        f"{CONTAINER_TILE})",
    )
    add_sample_options(
        compress,
        "TIFF bands to code, 1-based, in RGB order (one or three), e.g. 3,2,1",
        "map TIFF samples in MIN..MAX (or the data's range: auto) linearly to 8 bit; "
        "the range is stored and decode restores it (lossy)",
    )
    compress.add_argument(
        "--nodata",
        type=float,
        metavar="V",
        help="pixels whose bands all equal V are nodata, restored exactly (overrides a "
        "GeoTIFF's own nodata value; e.g. 0 for the black borders of a PNG scene)",
    )
    compress.add_argument(
        "--no-checksum",
        dest="checksum",
        action="store_false",
        help="store no reconstruction checksum (saves one decode per tile for classical codecs)",
    )
    add_existing_options(
        compress, "; refused when an existing output was made with another codec spec"
    )
    add_cluster_options(compress)
    compress.add_argument(
        "--json", action="store_true",
        help="print every file's sizes and rates, the failures and the rate summary as JSON "
        "(without it a batch ends with the summary line; -v adds a table of the files)",
    )
    compress.set_defaults(handler=run_compress)


def _register_decompress(subparsers: argparse._SubParsersAction) -> None:
    """Add `decompress`."""
    decompress = subparsers.add_parser(
        "decompress",
        help="decode .rsic files into images",
        epilog=DECOMPRESS_EXAMPLES,
    )
    add_input_output(decompress, ".rsic file or directory of them", IMAGE_OUTPUT_HELP)
    add_image_format_option(decompress)
    decompress.add_argument(
        "--region", type=_region, metavar="X,Y,W,H", help="decode only this region (pixels)"
    )
    decompress.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not check decoded tiles against the file's reconstruction checksum",
    )
    decompress.add_argument(
        "--weights",
        type=Path,
        metavar="PATH",
        help="learned codecs: the weights file (or a directory of them) to look in first; "
        "files name their weights by fingerprint, also searched for in $INNRSIC_MODEL_DIR",
    )
    add_existing_options(decompress)
    add_cluster_options(decompress)
    decompress.add_argument(
        "--enhance",
        metavar="MODEL",
        help="enhance the decoded image with this INN-RSIC enhancer: a shipped model's name "
        "(see `innrsic models`), weights (.safetensors), or auto: the shipped model covering "
        "each file's codec and payload bpp (refused before any work where none does)",
    )
    add_enhancer_options(decompress)
    decompress.set_defaults(handler=run_decompress)


def _register_info(subparsers: argparse._SubParsersAction) -> None:
    """Add `info`."""
    info = subparsers.add_parser(
        "info",
        help="show the header and rates of .rsic files",
        epilog=INFO_EXAMPLES,
    )
    info.add_argument("input", type=Path, nargs="+", help=".rsic files or folders of them")
    form = info.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print JSON instead of text")
    form.add_argument("--csv", action="store_true", help="print CSV, one row per file")
    info.set_defaults(handler=run_info)


@dataclass(frozen=True)
class Compressed:
    """One compressed file: its line (``str``) and its row of the batch's table."""

    target: Path
    result: CompressResult
    spec: str

    def __str__(self) -> str:
        result = self.result
        tiles = f", {result.tiles} tiles of {result.tile_size}" if result.tile_size else ""
        chosen = f" (rate search chose {result.knob})" if result.knob else ""
        return (
            f"{self.target}: {result.width}x{result.height}{tiles}, {result.file_bytes} bytes, "
            f"{result.bpp:.4f} bpp ({result.payload_bpp:.4f} bpp payload), {self.spec}{chosen}"
        )

    def row(self) -> dict[str, Any]:
        """The file's sizes and rates (JSON)."""
        result = self.result
        return {
            "file": str(self.target), "width": result.width, "height": result.height,
            "tiles": result.tiles, "file_bytes": result.file_bytes,
            "payload_bytes": result.payload_bytes, "bpp": result.bpp,
            "payload_bpp": result.payload_bpp, "knob": result.knob,
        }


def run_compress(args: argparse.Namespace) -> int:
    spec = _codec(args.codec).spec
    jobs = plan_outputs(args.input, args.output, IMAGE_SUFFIXES, [SUFFIX], SUFFIX)
    refuse_existing(jobs, args.force, args.skip_existing)
    if args.skip_existing:
        _check_existing_codec(jobs, spec)
    summary = partial(_print_rates, args, spec)

    def compress_one(source: Path, target: Path, encoder: BatchEncoder | None = None) -> Compressed:
        result = compress_file(
            source,
            target,
            _codec(args.codec),
            args.tile,
            bands=args.bands,
            scale=args.scale,
            nodata=args.nodata,
            progress=True,
            checksum=args.checksum,
            encoder=encoder,
        )
        return Compressed(target, result, spec)

    if len(jobs) == 1:
        plan = cluster_plan(args.workers, args.scheduler, _tile_count(args, jobs[0][0]))
        if plan.distributed:  # one large scene: its tiles are the units of work
            with batch_client(plan) as client:
                encoder = cluster_encoder(client, args.codec)
                report = run_jobs(
                    jobs, partial(compress_one, encoder=encoder), "compress", args.force,
                    args.skip_existing, echo=not args.json,
                )
            report.print_summary("compressed")
            summary(report)
            return report.exit_code
    return run_batch(args, jobs, compress_one, "compress", "compressed", summary)


def _print_rates(args: argparse.Namespace, spec: str, report: BatchReport) -> None:
    """After a compress batch: with --json every file's row, the failures and the rate
    summary; else, for several files, the summary line, after a table of the files on -v."""
    rows = [report.results[source].row() for source, _ in report.done if source in report.results]
    summary = _rate_summary(rows, CodecSpec.parse(spec).params.get("bpp"))
    if args.json:
        failed = [{"file": str(source), "reason": reason} for source, reason in report.failed]
        print(json.dumps({"files": rows, "failed": failed, "summary": summary}, indent=2))
        return
    if len(rows) < 2 and len(report.done) + len(report.failed) < 2:
        return  # one file: its line says it all
    if args.verbose:
        _print_table(rows, ("file", "width", "height", "tiles", "file_bytes", "bpp",
                            "payload_bpp", "knob"))
    if rows:
        target = summary["target_bpp"]
        over = f"; {summary['over_target']} over the {target:g} bpp target" if target else ""
        print(
            f"rates of {len(rows)} file(s): payload mean {summary['payload_bpp_mean']:.4f} bpp "
            f"(min {summary['payload_bpp_min']:.4f}, max {summary['payload_bpp_max']:.4f}), "
            f"whole file mean {summary['bpp_mean']:.4f} bpp{over}"
        )


def _rate_summary(rows: list[dict[str, Any]], target: str | None) -> dict[str, Any]:
    """Mean/min/max payload bpp, mean file bpp and the count of payloads over `target`."""
    payload = [row["payload_bpp"] for row in rows]
    limit = float(target) if target is not None else None
    return {
        "files": len(rows),
        "payload_bpp_mean": statistics.fmean(payload) if rows else None,
        "payload_bpp_min": min(payload, default=None),
        "payload_bpp_max": max(payload, default=None),
        "bpp_mean": statistics.fmean(row["bpp"] for row in rows) if rows else None,
        "target_bpp": limit,
        "over_target": None if limit is None else sum(value > limit for value in payload),
    }


def _print_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """`rows` as an aligned text table of `columns` (floats to 4 decimals)."""
    cells = [list(columns)] + [
        [f"{row[key]:.4f}" if isinstance(row[key], float) else str(row[key]) for key in columns]
        for row in rows
    ]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
              .rstrip())


def _tile_count(args: argparse.Namespace, source: Path) -> int:
    """How many tiles `compress` would cut `source` into (1 if it cannot be read: the batch
    then reports why)."""
    try:
        with open_source(source, args.bands, args.scale, args.nodata) as raster:
            size = resolve_tile(args.tile, raster.width, raster.height)
            return len(TileGrid(raster.width, raster.height, size, size))
    except (InnrsicError, OSError):
        return 1


def _codec(spec: str) -> Codec:
    """The codec of `spec`, made once per process (each worker's, and this one's)."""
    return worker_cached(("codec", spec), lambda: make_codec(spec))


def _check_existing_codec(jobs: list[tuple[Path, Path]], spec: str) -> None:
    """UsageError when an output --skip-existing would keep is not a `spec` .rsic file."""
    other = []
    for _, target in jobs:
        if not target.exists():
            continue
        try:
            with ContainerReader(target) as container:
                found = container.codec_spec
        except (InnrsicError, OSError) as exc:
            found = f"unreadable ({exc})"
        if found != spec:
            other.append(f"{target} ({found})")
    if other:
        raise UsageError(
            f"--skip-existing would keep {len(other)} output(s) not made with {spec}, e.g. "
            f"{other[0]}; use --force to redo them, or another -o"
        )


def run_decompress(args: argparse.Namespace) -> int:
    if args.enhance is None:
        reject_enhancer_options(args)
    jobs = plan_image_outputs(args, [SUFFIX])
    _check_weights(jobs, args.weights)
    if args.enhance is not None:
        return _run_decompress_enhanced(args, jobs)

    def decompress_one(source: Path, target: Path) -> str:
        with image_target(target, args.format) as written:
            result = decompress_file(
                source, written, region=args.region, progress=True, verify=args.verify,
                weights=args.weights,
            )
        text = f"{target}: {result.width}x{result.height}"
        if args.region is not None:
            text += f" (region {args.region}, {result.tiles_decoded} of "
            text += f"{result.tiles_total} tiles decoded)"
        if result.georeference_dropped:
            text += "; georeferencing not written (write a .tif to keep it)"
        return text

    return run_batch(args, jobs, decompress_one, "decompress", "decompressed")


def _check_weights(jobs: list[tuple[Path, Path]], weights: Path | None) -> None:
    """WeightsError (exit 2, before any work) when a learned codec's weights are not found."""
    specs = set()
    for source, _ in jobs:
        try:
            with ContainerReader(source) as container:
                specs.add(container.codec_spec)
        except (InnrsicError, OSError):
            continue  # the file's own job reports it
    for spec in sorted(specs):
        try:
            make_codec(spec, weights)
        except WeightsError:
            raise
        except InnrsicError:
            continue  # the file's own job reports it


def _run_decompress_enhanced(args: argparse.Namespace, jobs: list[tuple[Path, Path]]) -> int:
    def decompress_one(enhancer: EnhancerSession, source: Path, target: Path) -> str:
        with image_target(target, args.format) as written:
            result = enhancer.decompress_file(
                source, written, region=args.region, progress=True, verify=args.verify,
                weights=args.weights,
            )
        return f"{target}: {result.width}x{result.height}, enhanced at T={enhancer.temperature}"

    return run_enhancing_batch(
        args, jobs, args.enhance, decompress_one, "decompress+enhance", "decompressed and enhanced",
        streams=True,
    )


def run_info(args: argparse.Namespace) -> int:
    paths = rsic_files(args.input)
    if len(args.input) == 1 and args.input[0].is_file():
        fields = describe_file(paths[0])  # one file: its errors are the command's (exit 2)
        if args.json:
            print(json.dumps(fields, indent=2))
        elif args.csv:
            _print_csv([table_row(fields)])
        else:
            print("\n".join(description_lines(fields)))
        return 0
    described, failed = [], 0
    for path in paths:
        try:
            described.append(describe_file(path))
        except (InnrsicError, OSError) as exc:
            failed += 1
            print(f"innrsic info: {exc if str(path) in str(exc) else f'{path}: {exc}'}",
                  file=sys.stderr)
    if args.json:
        print(json.dumps(described, indent=2))
    elif args.csv:
        _print_csv([table_row(fields) for fields in described])
    else:
        _print_table([table_row(fields) for fields in described], TABLE_FIELDS)
    return 1 if failed else 0


def rsic_files(inputs: list[Path]) -> list[Path]:
    """The .rsic files of `inputs` (files, and folders searched recursively), or UsageError."""
    paths: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        found = sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file()) if path.is_dir() else [
            path
        ]
        if not found:
            raise UsageError(f"{path}: no {SUFFIX} files found in it or its subfolders")
        paths += found
    return paths


def _print_csv(rows: list[dict[str, Any]]) -> None:
    """`rows` as CSV with a header line, on stdout."""
    writer = csv.DictWriter(sys.stdout, fieldnames=list(TABLE_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _tile_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return resolve_tile(int(text), 1, 1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _region(text: str) -> Window:
    try:
        return Window.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

