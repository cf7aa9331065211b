"""`innrsic enhance`: the INN-RSIC enhancer on decoded images (files or directories)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from innrsic.batch import run_jobs
from innrsic.cli.options import (
    add_image_format_option,
    even_natural,
    image_target,
    natural,
    plan_image_outputs,
    positive_int,
    temperature,
)
from innrsic.imageio import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from innrsic.enhancer import INNEnhancer
    from innrsic.enhancer.fast import FastEnhancer

EXAMPLES = """examples:
  innrsic enhance decoded.png -o enhanced.png --weights enhancer-jpeg2000-bpp0.1
  innrsic enhance decoded.png -o enhanced.png --weights enhancer.safetensors
  innrsic enhance decoded/ -o enhanced/ --weights enhancer.safetensors --temperature 0.5 --seed 7
  innrsic enhance scene.tif -o scene_enhanced.tif --weights enhancer.safetensors --tile 512

The enhancer samples its latent z ~ N(0, T^2) (--temperature T; 0 is deterministic) from
--seed as a function of pixel position, so the same seed gives the same image, whatever the
tile size. Large GeoTIFF scenes are processed tile by tile with blended overlaps in bounded
memory and keep their georeferencing. The bitrate is the codec's: the enhancer adds no bits.
"""


def add_enhancer_options(parser: argparse.ArgumentParser, weights_flag: str) -> None:
    """The options shared by `enhance` and `decompress --enhance`."""
    parser.add_argument(
        "--temperature",
        type=temperature,
        default=None,
        help="latent temperature T (default: the model's own, recorded with its weights, else "
        "1; another value than a model's own is warned about)",
    )
    parser.add_argument("--seed", type=natural, default=0, help="latent seed")
    parser.add_argument(
        "--tile", type=natural, default=512, help="enhancer tile size (even, >= 16; 0: whole)"
    )
    parser.add_argument(
        "--overlap", type=even_natural, default=32, help="blended overlap in pixels (even)"
    )
    add_engine_options(parser)
    parser.set_defaults(weights_flag=weights_flag)


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--precision / --threads: how the enhancer's network is computed."""
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="network precision (default float32, the reference's pixels exactly; bfloat16 "
        "needs a CPU with AVX512-BF16/AMX and is refused elsewhere)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for the network (default: torch's, one per core)",
    )


def add_existing_options(parser: argparse.ArgumentParser, skip_help: str = "") -> None:
    """--force / --skip-existing: what a batch does with outputs that already exist."""
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="replace existing output files")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and do the rest (finishes an interrupted batch)"
        + skip_help,
    )


def check_enhancer_settings(args: argparse.Namespace) -> None:
    """The tile/overlap checks of `innrsic.enhance`, before the model is loaded."""
    from innrsic.enhance import check_settings

    check_settings(args.tile, args.overlap)


def load_enhancer(args: argparse.Namespace, weights: str) -> tuple[FastEnhancer, INNEnhancer]:
    """The engine (`FastEnhancer`) of the enhancer named by `weights` (a shipped model's name
    or a safetensors file), with the precision and thread settings, and the network itself
    (its `codec` and `default_temperature`); sets ``args.temperature`` to the model's default
    when not given, and warns about another value."""
    import torch

    from innrsic.enhance import model_temperature
    from innrsic.enhancer import INNEnhancer
    from innrsic.enhancer.capability import require_precision
    from innrsic.enhancer.fast import engine_for

    require_precision(args.precision)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    net = INNEnhancer.load(weights).eval()
    args.temperature = model_temperature(net, args.temperature, weights)
    return engine_for(net, args.precision, args.threads), net


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the enhance command."""
    parser = subparsers.add_parser(
        "enhance",
        help="restore texture in decoded images with an INN-RSIC enhancer",
        epilog=EXAMPLES,
    )
    parser.add_argument("input", type=Path, help="decoded image file or directory")
    parser.add_argument(
        "-o", "--output", required=True, help="image file (.png, .tif, .jpg) or directory"
    )
    parser.add_argument(
        "--weights",
        required=True,
        help="a shipped model's name (see `innrsic models`) or enhancer weights (.safetensors)",
    )
    add_image_format_option(parser)
    add_existing_options(parser)
    add_enhancer_options(parser, "--weights")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.enhance import enhance_file

    jobs = plan_image_outputs(args, IMAGE_SUFFIXES)
    if not jobs:
        print(f"no input images found at {args.input}")
        return 1
    check_enhancer_settings(args)
    net, _ = load_enhancer(args, args.weights)

    def enhance_one(source: Path, target: Path) -> str:
        with image_target(target, args.format) as written:
            result = enhance_file(
                source,
                written,
                net,
                args.temperature,
                args.seed,
                args.tile,
                args.overlap,
                progress=True,
            )
        return f"{target}: {result.width}x{result.height}, T={args.temperature}, seed {args.seed}"

    report = run_jobs(jobs, enhance_one, "enhance", args.force, args.skip_existing)
    report.print_summary("enhanced")
    return report.exit_code
