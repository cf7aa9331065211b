"""Split a pairs directory in two by image name: a validation set held out of training.

    scripts/split_pairs.py PAIRS/ucmerced-train --holdout-suffix 03 25 \
        --out PAIRS/train-minus-val42 --held-out PAIRS/val42

Entries whose name (without extension) ends with one of the suffixes go to ``--held-out``,
the others to ``--out``; both get their own manifest and hard links (or copies) of the files,
so checkpoint selection can use images the model never trained on and that no acceptance
measurement uses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from innrsic.data.manifest import (
    PairEntry,
    PairsManifest,
    read_pairs_manifest,
    write_pairs_manifest,
)


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write(source_dir: Path, target_dir: Path, codec: str, entries: list[PairEntry]) -> None:
    for entry in entries:
        for relative in (entry.gt, entry.decoded):
            _place(source_dir / relative, target_dir / relative)
    write_pairs_manifest(target_dir, PairsManifest(codec, entries))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", type=Path, help="pairs directory to split")
    parser.add_argument("--holdout-suffix", nargs="+", required=True,
                        help="name endings (before the extension) that go to --held-out")
    parser.add_argument("--out", type=Path, required=True, help="pairs directory of the rest")
    parser.add_argument("--held-out", type=Path, required=True, help="pairs directory held out")
    args = parser.parse_args(argv)
    for target in (args.out, args.held_out):
        if target.exists():
            print(f"error: {target} exists; choose a new directory", file=sys.stderr)
            return 2
    manifest = read_pairs_manifest(args.pairs)
    held = [e for e in manifest.entries if Path(e.name).stem.endswith(tuple(args.holdout_suffix))]
    if not held or len(held) == len(manifest.entries):
        print(f"error: the suffixes select {len(held)} of {len(manifest.entries)} pairs",
              file=sys.stderr)
        return 2
    rest = [e for e in manifest.entries if e not in held]
    _write(args.pairs, args.held_out, manifest.codec, held)
    _write(args.pairs, args.out, manifest.codec, rest)
    print(f"{len(rest)} pairs in {args.out}, {len(held)} held out in {args.held_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
