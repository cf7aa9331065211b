"""`innrsic train enhancer|codec`: train the INN-RSIC enhancer or a learned codec from YAML."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from innrsic.train import TrainResult

ENHANCER_EXAMPLES = """examples:
  innrsic train enhancer --config configs/enhancer/quick.yaml --set data.root=/tmp/pairs
  innrsic train enhancer --config configs/enhancer/jpeg2000_bpp0.1.yaml \\
      --set loss.feature_backbone=squeeze --set train.steps=20000 --run-dir runs/j2k-0.1
  innrsic train enhancer --config configs/enhancer/quick.yaml --resume
  torchrun --nproc_per_node=2 -m innrsic train enhancer --config configs/enhancer/quick.yaml

Pairs directories come from `innrsic pairs`, e.g.
  innrsic pairs --codec jpeg2000:bpp=0.1 --data ucmerced-train --data-root ../shared/data \\
      --out pairs/jpeg2000_bpp0.1/ucmerced-train

A config file states only what differs from the paper's published values; --set overrides any
field (section.key=value, YAML scalar syntax: --set optim.lr=2e-4, --set 'data.train=[a, b]').
LPIPS and the squeeze feature loss use the SqueezeNet backbone shipped with innrsic (or
$INNRSIC_WEIGHTS_DIR, val.lpips_weights / loss.feature_weights). Outputs go to run_dir:
checkpoints/, metrics.csv, train_log.csv, best.safetensors, final.safetensors, tensorboard/.
"""

CODEC_EXAMPLES = """examples:
  innrsic train codec --config configs/codec/quick.yaml --set data.root=../shared/data
  innrsic train codec --config configs/codec/elic_0.0008.yaml --run-dir runs/elic-0.0008
  innrsic train codec --config configs/codec/elic_0.0008.yaml --resume
  torchrun --nproc_per_node=4 -m innrsic train codec --config configs/codec/elic_0.0008.yaml

Split names in data.train / data.val (ucmerced-train, ucmerced-test, dota-test) are found in
data.root or $INNRSIC_DATA_ROOT; other entries are image folders. Loss: lambda * 255^2 * MSE +
bpp, with CompressAI's auxiliary loss on a second optimizer. Validation codes real bitstreams
(val/bpp_actual from the bytes, val/psnr of the decoded image, val/bpp_estimated from the
likelihoods); the lowest val/rd_loss picks best.safetensors. Outputs go to run_dir:
checkpoints/, metrics.csv, train_log.csv, best.safetensors, final.safetensors, tensorboard/.
The weights files work as codecs directly:
  innrsic compress image.png -o image.rsic --codec elic:weights=RUN/best.safetensors
or, copied to $INNRSIC_MODEL_DIR as elic-lambda<X>.safetensors, as --codec elic:lambda=<X>.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the train command (targets: enhancer, codec)."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (the INN-RSIC enhancer or a learned codec) from a YAML config",
        description="Train a model. Targets: enhancer, codec.",
        epilog=ENHANCER_EXAMPLES + "\n" + CODEC_EXAMPLES,
    )
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    _add_target(
        targets,
        "enhancer",
        "train the invertible enhancer on (ground truth, decoded) pairs",
        ENHANCER_EXAMPLES,
        run_enhancer,
    )
    _add_target(
        targets,
        "codec",
        "train a learned codec (ELIC or another CompressAI model) on images",
        CODEC_EXAMPLES,
        run_codec,
    )


def _add_target(
    targets: argparse._SubParsersAction,
    name: str,
    help_text: str,
    examples: str,
    handler: Callable[[argparse.Namespace], int],
) -> None:
    parser = targets.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=examples,
    )
    parser.add_argument("--config", type=Path, required=True, help="YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. train.steps=1000 (repeatable)",
    )
    parser.add_argument("--run-dir", help="output directory (same as --set run_dir=DIR)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in run_dir"
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    parser.set_defaults(handler=handler)


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"run_dir={args.run_dir}")
    return overrides


def run_enhancer(args: argparse.Namespace) -> int:
    from innrsic.train import load_enhancer_config, train_enhancer
    from innrsic.train.outputs import run_summary

    trained = _train(args, load_enhancer_config, train_enhancer)
    if trained is not None:
        config, result = trained
        print(run_summary(result, config.val.metric))
    return 0


def run_codec(args: argparse.Namespace) -> int:
    from innrsic.train.codec import load_codec_config, train_codec
    from innrsic.train.outputs import reports_here, run_summary

    trained = _train(args, load_codec_config, train_codec)
    if trained is None or not reports_here():
        return 0
    config, result = trained
    print(run_summary(result, "val/rd_loss"))
    weights = result.weights
    if weights.is_file():
        print(
            f"use it: innrsic compress IMAGE -o OUT.rsic --codec "
            f"{config.model.arch}:weights={weights}"
        )
    return 0


def _train(
    args: argparse.Namespace, load_config: Callable[..., Any], train: Callable[..., TrainResult]
) -> tuple[Any, TrainResult] | None:
    """The config from --config with the overrides, and the run trained with it (--resume);
    None after printing the config instead (--print-config)."""
    from innrsic.train.config import config_to_yaml

    config = load_config(args.config, _overrides(args))
    if args.print_config:
        print(config_to_yaml(config), end="")
        return None
    return config, train(config, resume=args.resume)
