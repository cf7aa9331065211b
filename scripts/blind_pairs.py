"""Training pairs for a blind enhancer: every classical codec at several rates, UC-M train.

    scripts/blind_pairs.py --data-root ../shared/data --out PAIRS --workers 2

For each codec spec of `--specs` (default `BLIND_SPECS`) this writes
``PAIRS/<spec as a folder name>/train`` from a spread subset of the UC-M train split without
the val42 images (names ending 03 or 25): spec number ``i`` of ``n`` takes every ``--every``-th
image from offset ``i mod --every``, so every image is seen behind some codec and rate while
the encoding time stays that of ``1/--every`` of the split per spec. ``--val-spec`` gets
``PAIRS/<spec>/val42`` (the 42 held-out images) for checkpoint selection. Each directory is an
ordinary `innrsic pairs` directory (cached and resumable; rerunning skips finished pairs).
The holdout split is never read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from innrsic.data.image_sets import image_set
from innrsic.data.pairs import generate_pairs

VAL_SUFFIXES = ("03", "25")
RATES = (0.1, 0.2, 0.4, 0.8)
JPEG_RATES = (0.25, 0.4, 0.6, 0.9)  # libjpeg's smallest files are about 0.15-0.25 bpp here
BLIND_SPECS = (
    *(f"jpeg:bpp={r}" for r in JPEG_RATES),
    *(f"{codec}:bpp={r}" for codec in ("webp", "avif", "heif", "jpeg2000") for r in RATES),
)


def folder_name(spec: str) -> str:
    """A folder name for a codec spec: ``jpeg2000:bpp=0.2`` -> ``jpeg2000_bpp0.2``."""
    return spec.replace(":", "_").replace("=", "").replace(",", "_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding ucmerced/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--specs", nargs="+", default=list(BLIND_SPECS))
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--val-spec", default="jpeg2000:bpp=0.2")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    refs = image_set("ucmerced-train", args.data_root, None)
    val = [ref for ref in refs if ref.name.endswith(VAL_SUFFIXES)]
    train = [ref for ref in refs if not ref.name.endswith(VAL_SUFFIXES)]
    failed = 0
    jobs = [(spec, "train", train[i % args.every :: args.every]) for i, spec in
            enumerate(args.specs)]
    jobs.append((args.val_spec, "val42", val))
    for spec, part, subset in jobs:
        result = generate_pairs(spec, subset, args.out / folder_name(spec) / part,
                                workers=args.workers, progress=False)
        failed += len(result.failures)
        print(f"{spec} {part}: {result.total} images, {result.generated} new, "
              f"{len(result.failures)} failed, mean {result.mean_bpp:.4f} bpp, "
              f"{result.seconds:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
