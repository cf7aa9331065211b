"""Pairs for a blind enhancer: every classical codec at several rates, UC-M train (training) or
the test sets (acceptance).

    scripts/blind_pairs.py --data-root ../shared/data --out PAIRS --workers 2
    scripts/blind_pairs.py --data-root ../shared/data --out ACC --acceptance --every 4 \\
        --specs jpeg:bpp=0.3 heif:bpp=0.3

Training (default): for each codec spec of `--specs` (default `BLIND_SPECS`) this writes
``PAIRS/<spec as a folder name>/train`` from a spread subset of the UC-M train split without
the val42 images (names ending 03 or 25): spec number ``i`` takes every ``--every``-th image
from offset ``i mod --every``, so every image is seen behind some codec and rate while the
encoding time stays that of ``1/--every`` of the split per spec. ``--val-spec`` gets
``PAIRS/<spec>/val42`` (the 42 held-out images) for checkpoint selection.

``--acceptance``: for each spec, ``ACC/<spec>/ucmerced-test`` and ``ACC/<spec>/dota-test``
(every ``--every``-th image of the two test splits) and ``ACC/<spec>/val42`` (train images the
training never saw, for tuning the controls of `benchmarks/enhancer_acceptance.py`).

Each directory is an ordinary `innrsic pairs` directory (cached and resumable: rerunning skips
finished pairs). The holdout split is never read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from innrsic.data.image_sets import image_set
from innrsic.data.pairs import generate_pairs
from innrsic.data.splits import ImageRef

VAL_SUFFIXES = ("03", "25")
RATES = (0.1, 0.2, 0.4, 0.8)
JPEG_RATES = (0.25, 0.4, 0.6, 0.9)  # libjpeg's smallest files are about 0.15-0.25 bpp here
BLIND_SPECS = (
    *(f"jpeg:bpp={r}" for r in JPEG_RATES),
    *(f"{codec}:bpp={r}" for codec in ("webp", "avif", "heif", "jpeg2000") for r in RATES),
    # other encoder settings users' files have (appended: the offsets above stay as they were)
    "jpeg:bpp=0.4,subsampling=444",
    "jpeg:bpp=0.9,subsampling=444",
    "jpeg:bpp=0.6,tables=flat",
    "jpeg2000:bpp=0.2,wavelet=53",
    "jpeg2000:bpp=0.4,tile=128,codeblock=32",
    "avif:bpp=0.4,subsampling=444",
    "heif:bpp=0.2,chroma=444",
)


def folder_name(spec: str) -> str:
    """A folder name for a codec spec: ``jpeg2000:bpp=0.2`` -> ``jpeg2000_bpp0.2``."""
    return spec.replace(":", "_").replace("=", "").replace(",", "_")


def training_jobs(args: argparse.Namespace) -> list[tuple[str, str, list[ImageRef]]]:
    """(spec, folder, images) of the training pairs and the val42 pairs of `--val-spec`."""
    refs = image_set("ucmerced-train", args.data_root, None)
    val = [ref for ref in refs if ref.name.endswith(VAL_SUFFIXES)]
    train = [ref for ref in refs if not ref.name.endswith(VAL_SUFFIXES)]
    jobs = [(spec, "train", train[i % args.every :: args.every])
            for i, spec in enumerate(args.specs)]
    return [*jobs, (args.val_spec, "val42", val)]


def acceptance_jobs(args: argparse.Namespace) -> list[tuple[str, str, list[ImageRef]]]:
    """(spec, folder, images) of the test sets (every `--every`-th image) and val42."""
    val = [ref for ref in image_set("ucmerced-train", args.data_root, None)
           if ref.name.endswith(VAL_SUFFIXES)]
    tests = {name: image_set(name, args.data_root, None)[:: args.every]
             for name in ("ucmerced-test", "dota-test")}
    return [(spec, name, refs) for spec in args.specs
            for name, refs in [*tests.items(), ("val42", val)]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding ucmerced/ and dota/")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--specs", nargs="+", default=list(BLIND_SPECS))
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--val-spec", default="jpeg2000:bpp=0.2")
    parser.add_argument("--acceptance", action="store_true", help="test-set pairs (see above)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    jobs = acceptance_jobs(args) if args.acceptance else training_jobs(args)
    failed = 0
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
