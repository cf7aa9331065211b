"""`innrsic demo`: the main job (classical codecs at three rates on real aerial images, then
the shipped enhancers behind their codecs, decoded vs enhanced)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXAMPLES = """examples:
  innrsic demo --data ../shared/data --out demo-output
  innrsic demo --data my_images/ --out report/ --rates 0.2 0.4 0.8 --limit 10

--data is either a folder holding ucmerced/ (the UC Merced test split is used, --per-class
images of each class) or any folder of PNG/TIFF/JPEG images. Each enhancer shipped with
innrsic (`innrsic models`) then runs behind its codec on some of them at T = 0 to 1, against
decoded and the noise and unsharp controls tuned on UC Merced train images (PSNR, NIQE, and
LPIPS-squeeze, with the SqueezeNet backbone shipped with innrsic); those
sections open the page. Open OUT/index.html afterwards.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the demo command."""
    parser = subparsers.add_parser(
        "demo",
        help="run every classical codec at three rates and write an HTML report",
        epilog=EXAMPLES,
    )
    parser.add_argument("--data", type=Path, required=True, help="data folder (see below)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for the report")
    parser.add_argument(
        "--rates", type=float, nargs="+", help="target bpp values (default: 0.25 0.5 1.0)"
    )
    parser.add_argument("--per-class", type=int, default=1, help="UC-M test images per class")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many images")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="worker processes of the codec grid (default: all cores)"
    )
    parser.add_argument(
        "--weights-dir",
        type=Path,
        help="folder of metric weights; a squeeze.backbone.pth there replaces the shipped "
        "LPIPS backbone (default: $INNRSIC_WEIGHTS_DIR)",
    )
    parser.add_argument(
        "--no-enhancer", action="store_true", help="skip the shipped-enhancer section"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print what it wrote; 1 when a codec failed on an image."""
    from innrsic.evaluation.demo import (  # torch-heavy: only when the command runs
        DEFAULT_RATES,
        DemoEnhancers,
        run_demo,
    )

    rows = run_demo(
        args.data,
        args.out,
        tuple(args.rates or DEFAULT_RATES),
        args.per_class,
        args.limit,
        workers=args.workers,
        enhancers=None if args.no_enhancer else DemoEnhancers(),
        weights_dir=args.weights_dir,
    )
    failed = sum(1 for row in rows if str(row["status"]).startswith("failed"))
    unreachable = sum(1 for row in rows if str(row["status"]).startswith("unreachable"))
    print(
        f"wrote {args.out / 'index.html'}: {len(rows)} codec rows, {unreachable} target rates "
        f"out of a codec's reach, {failed} failed"
    )
    return 1 if failed else 0
