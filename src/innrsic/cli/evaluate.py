"""`innrsic evaluate`: codec x enhancer x temperature grids over a dataset, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from innrsic.cli.options import (
    add_cluster_options,
    add_data_root_option,
    add_device_option,
    natural,
    positive_int,
    progress_wanted,
    stream_spec,
    temperature,
)

if TYPE_CHECKING:
    from distributed import Client

    from innrsic.data.splits import ImageRef
    from innrsic.evaluation import EvaluationResult, EvaluationSettings
    from innrsic.evaluation.controls import ControlSettings

EXAMPLES = """examples:
  innrsic evaluate --data ucmerced-test --data-root ../shared/data --out eval/ \\
      --codec jpeg2000:bpp=0.2 jpeg2000:bpp=0.4 heif:bpp=0.2 heif:bpp=0.4 \\
      --weights-dir ../shared/weights
  innrsic evaluate --data ucmerced-test --data-root ../shared/data --out eval/ \\
      --codec jpeg2000:bpp=0.2 jpeg2000:bpp=0.4 --enhancer enh.safetensors --temperature 0 1
  innrsic evaluate ... --workers 4                  # four worker processes here
  innrsic evaluate ... --scheduler tcp://head:8786   # on a dask.distributed cluster
  innrsic evaluate ... --shard 0/2 &  innrsic evaluate ... --shard 1/2   # two processes
  innrsic evaluate ... --enhancer enh.safetensors --control-data ucmerced-train --control-images 42
  innrsic evaluate --out eval/ --report-only --anchor heif

--data is a split name (ucmerced-train, ucmerced-test, dota-test; needs --data-root or
$INNRSIC_DATA_ROOT) or a folder of images. Every codec spec is run, then every enhancer at
every temperature on its decoded image. Bitstreams, decoded and enhanced images and result rows
are cached under OUT: a rerun, or a rerun with more codecs, enhancers or temperatures, computes
only what is missing, and an interrupted run resumes. --shard i/n (or torchrun's RANK and
WORLD_SIZE) processes images[i::n]; the shard that completes the grid writes the report, or
run --report-only. --workers N / --scheduler run the grid as shards on a dask.distributed
cluster (one shard per worker, rows in the same shard files, so rows of earlier runs and of
--shard runs merge with them) and write the report once all are done.
Curves: one per codec family (the spec without its rate parameter) and
enhancer/temperature; BD-rate and BD-PSNR are against --anchor (remembered in OUT/grid.json;
default: the first codec family).
Controls (on by default when --enhancer is given; --controls / --no-controls): for every codec
spec, decoded + white Gaussian noise and decoded + unsharp mask, each at the strength with the
lowest mean LPIPS-squeeze on validation images coded with that spec: --control-images images
spread evenly over --control-data (default: ucmerced-train under the data root). They are rows
like the enhancers' and every table and plot shows them; perceptual claims are made against
the best control. The tuning is cached in OUT/controls.json. Tuning on evaluated images or on
the holdout is refused. NIQE and band-energy ratios are computed for every row.
LPIPS-squeeze uses the SqueezeNet backbone shipped with innrsic (or squeeze.backbone.pth in
--weights-dir or $INNRSIC_WEIGHTS_DIR); other perceptual metrics need their weights there and
are listed as unavailable with what is missing. Open OUT/index.html.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the evaluate command (its options in the order --help lists them)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate codecs (and enhancers) on a dataset: tables, BD-rates, plots, HTML",
        epilog=EXAMPLES,
    )
    _add_grid_options(parser)
    _add_output_options(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed every image is enhanced with (as innrsic enhance --seed)",
    )
    parser.add_argument(
        "--weights-dir",
        type=Path,
        default=None,
        help="folder of metric weights (default: $INNRSIC_WEIGHTS_DIR)",
    )
    _add_control_options(parser)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only merge the row files under OUT and rebuild the report",
    )
    _add_engine_options(parser)
    parser.add_argument(
        "--limit", type=natural, default=None, help="use only the first N images"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none off a terminal either)"
    )
    parser.set_defaults(handler=run)


def _add_grid_options(parser: argparse.ArgumentParser) -> None:
    """What is evaluated: the images, the codec specs, the enhancers and their temperatures."""
    parser.add_argument("--data", help="split name or image folder (see below)")
    add_data_root_option(parser)
    parser.add_argument(
        "--codec",
        nargs="+",
        default=[],
        metavar="SPEC",
        help="codec specs, e.g. jpeg2000:bpp=0.2 heif:bpp=0.2 (repeats add to the list)",
    )
    parser.add_argument(
        "--enhancer",
        nargs="+",
        default=[],
        metavar="W",
        help="enhancer weights files (.safetensors) or shipped model names (innrsic models)",
    )
    parser.add_argument(
        "--temperature",
        nargs="+",
        type=temperature,
        default=None,
        metavar="T",
        help="sampling temperatures of the enhancers (default: each enhancer's own, recorded "
        "with its weights, else 1; others than an enhancer's own are warned about)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """Where the rows and the report go, the BD anchor, and where the grid runs (shards)."""
    parser.add_argument("--out", type=Path, required=True, help="output and cache folder")
    parser.add_argument(
        "--anchor",
        default=None,
        help="codec family (or a spec of it) the BD deltas are against "
        "(default: the last --anchor given for OUT, else the first family)",
    )
    add_cluster_options(parser, default="1").add_argument(
        "--shard",
        default=None,
        metavar="i/n",
        help="process images[i::n] in this process (default: torchrun's RANK/WORLD_SIZE, or "
        "all)",
    )


def _add_control_options(parser: argparse.ArgumentParser) -> None:
    """The decoded + noise / unsharp controls and the validation images they are tuned on."""
    parser.add_argument(
        "--controls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the decoded+noise and decoded+unsharp controls per codec spec (default: on "
        "when --enhancer is given)",
    )
    parser.add_argument(
        "--control-data",
        default=None,
        metavar="SPLIT_OR_FOLDER",
        help="validation images the controls are tuned on: a split name or an image folder "
        "(default: ucmerced-train under the data root)",
    )
    parser.add_argument(
        "--control-images",
        type=positive_int,
        default=21,
        metavar="N",
        help="tune on N images spread evenly over --control-data (default 21: one per class "
        "of ucmerced-train)",
    )


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    """How the enhancers run: device, torch threads, precision."""
    from innrsic.enhancer.fast import DEFAULT_PRECISION, PRECISIONS

    add_device_option(parser)
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch threads per process (default 1; use shards for parallelism)",
    )
    parser.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default=DEFAULT_PRECISION,
        help=f"enhancer network precision (default {DEFAULT_PRECISION}; bfloat16 needs "
        "AVX512-BF16/AMX)",
    )


def run(args: argparse.Namespace) -> int:
    from innrsic.cli.batch import batch_client
    from innrsic.compute.cluster import cluster_plan
    from innrsic.data.image_sets import describe_image_set, image_set
    from innrsic.enhancer.settings import resolve_device
    from innrsic.enhancer.temperature import grid_enhancers
    from innrsic.errors import ConfigError
    from innrsic.evaluation import EvaluationSettings, build_report, run_evaluation
    from innrsic.evaluation.grid import check_temperatures, parse_shard

    if args.report_only:
        report = build_report(args.out, anchor=args.anchor, weights_dir=args.weights_dir)
        print(
            f"wrote {args.out / 'index.html'}: {report.rows} rows, {report.combinations} "
            f"combinations, BD anchor {report.anchor}"
        )
        return 0
    # the parser reads numbers; the rule is `innrsic.pretrained.check_temperature`
    given = None if args.temperature is None else check_temperatures(args.temperature)
    if not args.data or not args.codec:
        raise ConfigError("--data and --codec are required (unless --report-only)")
    device = resolve_device(args.device)  # cuda where there is none: refused before any work
    refs = image_set(args.data, args.data_root, args.limit)
    enhancers, temperatures = grid_enhancers(args.enhancer, given)
    _warn_codec_mismatches(args.enhancer, enhancers, args.codec)
    controls = _controls(args, bool(enhancers))
    settings = EvaluationSettings(
        codecs=tuple(args.codec),
        enhancers=enhancers,
        temperatures=temperatures,
        seed=args.seed,
        weights_dir=args.weights_dir,
        anchor=args.anchor,
        device=device,
        threads=args.threads,
        precision=args.precision,
        data_label=describe_image_set(args.data, args.data_root, len(refs)),
        controls=controls,
    )
    shard = parse_shard(args.shard) if args.shard else None
    plan = cluster_plan(args.workers, args.scheduler, len(refs))
    if shard is None and plan.distributed:
        with batch_client(plan) as client:
            return _run_distributed(client, refs, args, settings)
    result = run_evaluation(refs, args.out, settings, shard=shard, progress=progress_wanted(args))
    return _print_result(args, result)


def _run_distributed(
    client: Client, refs: list[ImageRef], args: argparse.Namespace, settings: EvaluationSettings
) -> int:
    """The grid as one shard per worker of `client`'s cluster, then the report here."""
    from distributed import as_completed
    from tqdm import tqdm

    from innrsic.evaluation import build_report, run_evaluation

    count = max(1, min(len(refs), len(client.scheduler_info()["workers"])))
    futures = [
        client.submit(run_evaluation, refs, args.out, settings, shard=(index, count),
                      progress=False, build_report=False, pure=False)
        for index in range(count)
    ]
    status = 0
    try:
        for future in tqdm(as_completed(futures), total=count, desc="evaluate", unit="shard",
                           disable=not progress_wanted(args)):
            result = future.result()
            result.report_written = False
            status = max(status, _print_result(args, result, report=False))
    except KeyboardInterrupt:
        client.cancel(futures)
        raise
    build_report(args.out, anchor=args.anchor, weights_dir=args.weights_dir)
    print(f"wrote {args.out / 'index.html'}")
    return status


def _print_result(args: argparse.Namespace, result: EvaluationResult, report: bool = True) -> int:
    """Print what one shard did; its exit status."""
    index, count = result.shard
    print(
        f"shard {index}/{count}: {result.images} images; rows: {result.rows_computed} new, "
        f"{result.rows_updated} with metrics added, {result.rows_reused} reused; "
        f"{result.bitstreams_encoded} encoded, {result.images_enhanced} enhanced; "
        f"{len(result.failures)} failed"
    )
    for image, codec, message in result.failures:
        print(f"  failed: {image} {codec}: {message}")
    if result.report_written:
        print(f"wrote {args.out / 'index.html'}")
    elif report:
        print(
            f"report not written: {result.missing_rows} rows of other shards missing; the "
            f"shard completing the grid writes it, or run --report-only"
        )
    return 0 if result.ok else 1


def _warn_codec_mismatches(names: list[str], paths: tuple[Path, ...], specs: list[str]) -> None:
    """Warn once per enhancer and codec spec that is not the one it was trained behind
    (`innrsic.enhancer.apply.check_codec`), before any work."""
    from innrsic.enhancer.apply import check_codec
    from innrsic.enhancer.weights_file import load_enhancer

    streams = dict.fromkeys(stream_spec(spec) for spec in specs)
    for name, path in dict(zip(names, paths, strict=True)).items():
        trained_behind = load_enhancer(path).codec
        for spec in streams:
            check_codec(trained_behind, spec, name)


def _controls(args: argparse.Namespace, enhancers: bool) -> ControlSettings | None:
    """The controls' validation images, or None when the controls are off."""
    from innrsic.data.image_sets import data_root, describe_image_set, image_set
    from innrsic.errors import ConfigError
    from innrsic.evaluation.controls import ControlSettings, check_not_reserved, subsample

    if not (enhancers if args.controls is None else args.controls):
        if args.control_data:
            raise ConfigError("--control-data given but the controls are off (--no-controls, "
                              "or no --enhancer: add --controls)")
        return None
    data = args.control_data
    if data is None:
        if not data_root(args.data_root):
            raise ConfigError("the controls need validation images: give --control-data (a "
                              "split or an image folder), or --data-root for the default "
                              "(ucmerced-train), or --no-controls")
        data = "ucmerced-train"
    else:
        check_not_reserved(Path(data))  # before listing the folder
    refs = subsample(image_set(data, args.data_root), args.control_images)
    return ControlSettings(tuple(refs), describe_image_set(data, args.data_root, len(refs)))
