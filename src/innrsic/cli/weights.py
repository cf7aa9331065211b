"""`innrsic convert-checkpoint`: the authors' enhancer checkpoints into innrsic's format."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  innrsic convert-checkpoint 0.0008_G.pth -o enhancer-elic-0.0008.safetensors
  innrsic convert-checkpoint 0.0008_G.pth -o enhancer.safetensors --half

The source is a BasicSR `*_G.pth` state dict as released with INN-RSIC (a `module.` prefix
and the original `guassianize` key names are accepted); it is read with
torch.load(weights_only=True), so no code inside it can run. The configuration (coupling
blocks, DenseBlock growth, expansion factor) is inferred from the tensor shapes.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the convert-checkpoint command."""
    parser = subparsers.add_parser(
        "convert-checkpoint",
        help="convert an original INN-RSIC *_G.pth into innrsic's safetensors format",
        epilog=EXAMPLES,
    )
    parser.add_argument("source", type=Path, help="the authors' *_G.pth checkpoint")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".safetensors file")
    parser.add_argument("--half", action="store_true", help="store float16 weights")
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.enhancer import convert_original_checkpoint  # imports torch

    if args.output.exists() and not args.force:
        print(f"{args.output} exists (use --force to replace it)")
        return 1
    config = convert_original_checkpoint(args.source, args.output, half=args.half)
    print(f"wrote {args.output}: {config}")
    return 0
