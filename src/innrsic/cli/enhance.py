"""`innrsic enhance`: the INN-RSIC enhancer on decoded images (files or directories)."""

from __future__ import annotations

import argparse
from pathlib import Path

from innrsic.batch import plan_jobs, run_jobs
from innrsic.imageio import IMAGE_SUFFIXES

EXAMPLES = """examples:
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
        "--temperature", type=float, default=1.0, help="latent temperature T (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    parser.add_argument("--tile", type=int, default=512, help="enhancer tile size (0: whole)")
    parser.add_argument("--overlap", type=int, default=32, help="blended overlap in pixels")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    parser.set_defaults(weights_flag=weights_flag)


def add_existing_options(parser: argparse.ArgumentParser) -> None:
    """--force / --skip-existing: what a batch does with outputs that already exist."""
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="replace existing output files")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and do the rest (finishes an interrupted batch)",
    )


def load_enhancer(weights: Path, threads: int | None):
    """The enhancer from innrsic's safetensors file, in eval mode, with the thread setting."""
    import torch

    from innrsic.enhancer import INNEnhancer

    if threads is not None:
        torch.set_num_threads(threads)
    return INNEnhancer.load(weights).eval()


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
        "--weights", type=Path, required=True, help="enhancer weights (.safetensors)"
    )
    parser.add_argument(
        "--format", default="png", choices=["png", "tif", "jpg"], help="image format in dir mode"
    )
    add_existing_options(parser)
    add_enhancer_options(parser, "--weights")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.enhance import enhance_file

    net = load_enhancer(args.weights, args.threads)

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
