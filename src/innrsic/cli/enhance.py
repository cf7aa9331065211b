"""`innrsic enhance`: the INN-RSIC enhancer on decoded images (files or directories)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from innrsic.batch import plan_jobs, run_jobs
from innrsic.imageio import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

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
        type=float,
        default=None,
        help="latent temperature T (default: a shipped model's default temperature, else 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    parser.add_argument("--tile", type=int, default=512, help="enhancer tile size (0: whole)")
    parser.add_argument("--overlap", type=int, default=32, help="blended overlap in pixels")
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
        type=int,
        default=None,
        help="threads for the network (default: torch's, one per core)",
    )


def add_existing_options(parser: argparse.ArgumentParser) -> None:
    """--force / --skip-existing: what a batch does with outputs that already exist."""
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="replace existing output files")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and do the rest (finishes an interrupted batch)",
    )


def load_enhancer(args: argparse.Namespace, weights: str):
    """The engine (`FastEnhancer`) of the enhancer named by `weights` (a shipped model's name
    or a safetensors file), with the precision and thread settings; sets ``args.temperature``
    when it was not given."""
    import torch

    from innrsic.enhancer import INNEnhancer
    from innrsic.enhancer.capability import require_precision
    from innrsic.enhancer.fast import engine_for
    from innrsic.errors import ConfigError
    from innrsic.pretrained import resolve_enhancer

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    require_precision(args.precision)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    path, default_temperature = resolve_enhancer(weights)
    if args.temperature is None:
        args.temperature = default_temperature if default_temperature is not None else 1.0
    elif default_temperature is not None and args.temperature != default_temperature:
        log.warning(
            "%s was chosen for temperature %g; at %g its output can be far worse (its card, "
            "`innrsic models %s`, measures other temperatures)",
            weights, default_temperature, args.temperature, weights,
        )
    return engine_for(INNEnhancer.load(path).eval(), args.precision, args.threads)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the enhance command."""
    parser = subparsers.add_parser(
        "enhance",
        help="restore texture in decoded images with an INN-RSIC enhancer",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="decoded image file or directory")
    parser.add_argument("-o", "--output", type=Path, required=True, help="image file or dir")
    parser.add_argument(
        "--weights",
        required=True,
        help="a shipped model's name (see `innrsic models`) or enhancer weights (.safetensors)",
    )
    parser.add_argument(
        "--format", default="png", choices=["png", "tif", "jpg"], help="image format in dir mode"
    )
    add_existing_options(parser)
    add_enhancer_options(parser, "--weights")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.enhance import enhance_file

    net = load_enhancer(args, args.weights)

    def enhance_one(source: Path, target: Path) -> str:
        result = enhance_file(
            source,
            target,
            net,
            args.temperature,
            args.seed,
            args.tile,
            args.overlap,
            progress=True,
        )
        return f"{target}: {result.width}x{result.height}, T={args.temperature}, seed {args.seed}"

    jobs = plan_jobs(args.input, args.output, IMAGE_SUFFIXES, f".{args.format}")
    report = run_jobs(jobs, enhance_one, "enhance", args.force, args.skip_existing)
    report.print_summary("enhanced")
    if not jobs:
        print(f"no input images found at {args.input}")
        return 1
    return report.exit_code
