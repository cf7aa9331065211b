"""`innrsic train enhancer`: train the INN-RSIC enhancer from a YAML config."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  innrsic train enhancer --config configs/enhancer/quick.yaml --set data.root=/tmp/pairs
  innrsic train enhancer --config configs/enhancer/jpeg2000_bpp0.1.yaml \\
      --set loss.feature_backbone=squeeze --set train.steps=20000 --run-dir runs/j2k-0.1
  innrsic train enhancer --config configs/enhancer/quick.yaml --resume
  torchrun --nproc_per_node=2 -m innrsic.train enhancer --config configs/enhancer/quick.yaml

Pairs directories come from `innrsic pairs`, e.g.
  innrsic pairs --codec jpeg2000:bpp=0.1 --data ucmerced-train --data-root ../shared/data \\
      --out pairs/jpeg2000_bpp0.1/ucmerced-train

A config file states only what differs from the paper's published values; --set overrides any
field (section.key=value, YAML scalar syntax: --set optim.lr=2e-4, --set 'data.train=[a, b]').
Weights for LPIPS and the squeeze feature loss are found via $INNRSIC_WEIGHTS_DIR (or
val.lpips_weights / loss.feature_weights). Outputs go to run_dir: checkpoints/, metrics.csv,
train_log.csv, best.safetensors, final.safetensors, tensorboard/.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the train command (target: enhancer)."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (the INN-RSIC enhancer) from a YAML config",
        description="Train a model. Targets: enhancer.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    enhancer = targets.add_parser(
        "enhancer",
        help="train the invertible enhancer on (ground truth, decoded) pairs",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    enhancer.add_argument("--config", type=Path, required=True, help="YAML config file")
    enhancer.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field, e.g. train.steps=1000 (repeatable)",
    )
    enhancer.add_argument("--run-dir", help="output directory (same as --set run_dir=DIR)")
    enhancer.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in run_dir"
    )
    enhancer.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    enhancer.set_defaults(handler=run_enhancer)


def run_enhancer(args: argparse.Namespace) -> int:
    from innrsic.config import config_to_yaml
    from innrsic.train import load_enhancer_config, train_enhancer

    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"run_dir={args.run_dir}")
    config = load_enhancer_config(args.config, overrides)
    if args.print_config:
        print(config_to_yaml(config), end="")
        return 0
    result = train_enhancer(config, resume=args.resume)
    best = (f", best {config.val.metric} {result.best_value:.4f} at step {result.best_step}"
            if result.best_value is not None else "")
    print(f"trained to step {result.step} in {result.run_dir}{best}")
    return 0
