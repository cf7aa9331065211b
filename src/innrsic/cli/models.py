"""`innrsic models`: the enhancers shipped inside the package."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  innrsic models                          # table of installed models
  innrsic models --json
  innrsic models enhancer-jpeg2000-bpp0.1 # print that model's card
  innrsic decompress scene.rsic -o scene.png --enhance enhancer-jpeg2000-bpp0.1

A shipped model's name works wherever an enhancer weights file is expected; its default
temperature is then used unless --temperature is given. `decompress --enhance auto` (and
`enhance --codec SPEC`) picks the model whose coverage ("chosen by auto for": codecs and payload
bpp range) holds the file's codec and rate, the most specialised where several do.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the models command."""
    parser = subparsers.add_parser(
        "models",
        help="list the enhancers shipped with innrsic, or show one's model card",
        epilog=EXAMPLES,
    )
    parser.add_argument("name", nargs="?", help="print this model's card")
    parser.add_argument("--json", action="store_true", help="machine-readable listing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.pretrained import find_model, installed_models

    if args.name:
        print(find_model(args.name).card.read_text(encoding="utf-8"), end="")
        return 0
    models = installed_models()
    if args.json:
        listing = [
            {
                "name": m.name,
                "kind": m.kind,
                "codec": m.codec,
                "covers": {"codecs": list(m.covers.codecs), "bpp": list(m.covers.bpp)},
                "default_temperature": m.default_temperature,
                "weights": str(m.weights),
                "bytes": m.weights.stat().st_size,
                "card": str(m.card),
                "summary": m.summary,
            }
            for m in models
        ]
        print(json.dumps(listing, indent=2))
        return 0
    if not models:
        print("no models installed")
        return 0
    rows = [("name", "trained behind", "chosen by auto for", "default T", "size", "summary")]
    rows += [
        (m.name, m.codec, m.covers.text(), f"{m.default_temperature:g}",
         f"{m.weights.stat().st_size / 1024:.0f} KiB", m.summary)
        for m in models
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*padded, row[5]]))
    return 0
