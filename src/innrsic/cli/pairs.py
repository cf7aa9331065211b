"""`innrsic pairs`: (ground truth, decoded) training pairs for a codec (INN-RSIC step I)."""

from __future__ import annotations

import argparse
from pathlib import Path

from innrsic.cli.options import add_cluster_options, add_data_root_option, progress_wanted

EXAMPLES = """examples:
  innrsic pairs --codec jpeg2000:bpp=0.1 --data ucmerced-train --data-root ../shared/data \\
      --out pairs/jpeg2000_bpp0.1/ucmerced-train
  innrsic pairs --codec jpeg2000:bpp=0.1 --data ucmerced-test --data-root ../shared/data \\
      --out pairs/jpeg2000_bpp0.1/ucmerced-test --workers 2
  innrsic pairs --codec heif:quality=30 --data my_images/ --out pairs/heif_q30/mine

--data is a split name (ucmerced-train: <class>00-45, ucmerced-test: <class>46-59,
dota-test: non-overlapping 256x256 DOTA crops with <= 10% zero pixels) or a folder of images
(use ./NAME for a folder that shares a split's name). Split names need --data-root (the shared
data folder holding ucmerced/ and dota/) or $INNRSIC_DATA_ROOT.

OUT gets gt/, decoded/, manifest.json and manifest.csv (payload bpp per image). Reruns skip
finished images; an OUT made with another codec is refused. Unreadable images are reported and
skipped, and the exit status is then 1.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the pairs command."""
    parser = subparsers.add_parser(
        "pairs",
        help="encode+decode a dataset with a codec into training pairs",
        epilog=EXAMPLES,
    )
    parser.add_argument("--codec", required=True, help="codec spec, e.g. jpeg2000:bpp=0.1")
    parser.add_argument("--data", required=True, help="split name or image folder (see below)")
    parser.add_argument("--out", type=Path, required=True, help="pairs directory to fill")
    add_data_root_option(parser)
    add_cluster_options(parser)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (none off a terminal either)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.cli.batch import batch_client
    from innrsic.compute.cluster import cluster_plan
    from innrsic.data.image_sets import image_set
    from innrsic.data.pairs import generate_pairs

    refs = image_set(args.data, args.data_root, args.limit)
    plan = cluster_plan(args.workers, args.scheduler, len(refs))
    remote = plan if plan.scheduler is not None else cluster_plan(1, None, len(refs))
    with batch_client(remote) as client:  # local workers: generate_pairs' own process pool
        result = generate_pairs(
            args.codec, refs, args.out, workers=plan.workers, progress=progress_wanted(args),
            executor=None if client is None else client.get_executor(pure=False),
        )
    print(
        f"{result.out_dir}: {result.codec}: {result.generated} generated, {result.skipped} "
        f"already done, {len(result.failures)} failed of {result.total} in "
        f"{result.seconds:.1f} s; mean payload {result.mean_bpp:.4f} bpp"
    )
    for name, message in result.failures:
        print(f"  failed: {name}: {message}")
    return 0 if result.ok else 1
