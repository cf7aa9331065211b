"""Product path vs reference path at one image size, side by side in one process.

The product path is what every command runs: `innrsic.enhancer.apply.enhance_image` with the engine
`innrsic.enhancer.fast.engine_for` builds (fast float32 by default, bf16 with --precision).
The reference path is the same call with `ReferenceEngine` (the plain `INNEnhancer`). Both get
the same decoded uint8 image (a centre crop of DOTA P0168 through --codec) and the same seed;
every round runs every path once, in turn, so load changes hit them alike; the speed-up is the
median of the per-round ratios. The 8-bit outputs are compared exactly.

    .venv/bin/python benchmarks/product_path.py                  # 512x512, paper-size network
    .venv/bin/python benchmarks/product_path.py --weights enhancer-jpeg2000-bpp0.2 --size 1024
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from innrsic.codecs.registry import make_codec
from innrsic.enhancer import from_original_checkpoint, load_enhancer
from innrsic.enhancer.apply import enhance_image
from innrsic.enhancer.capability import bf16_convolution_supported
from innrsic.enhancer.fast import ReferenceEngine, engine_for
from innrsic.enhancer.temperature import GRID_TEMPERATURES
from innrsic.pretrained import resolve_enhancer
from innrsic.raster.image import read_image

COLUMNS = ["size", "temperature", "path", "threads", "rounds", "median_s", "mpix_s",
           "speedup_vs_reference", "same_8bit_as_reference"]


def decoded_crop(size: int, codec_spec: str) -> np.ndarray:
    """A size x size centre crop of DOTA P0168, encoded and decoded with `codec_spec`."""
    scene = read_image(common.shared_root() / "data" / "dota" / "P0168.png")
    top, left = (scene.shape[0] - size) // 2, (scene.shape[1] - size) // 2
    crop = np.ascontiguousarray(scene[top : top + size, left : left + size])
    codec = make_codec(codec_spec)
    return codec.decode(codec.encode(crop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights", default="", help="model name or file (default: the "
                        "authors' reference checkpoint layout, the paper-size network)")
    parser.add_argument("--codec", default="jpeg2000:bpp=0.2")
    parser.add_argument("--temperatures", type=float, nargs="+",
                        default=list(GRID_TEMPERATURES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "product_path.csv")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights:
        net = load_enhancer(resolve_enhancer(args.weights)[0]).eval()
    else:
        net = from_original_checkpoint(common.reference_checkpoint()).eval()
    image = decoded_crop(args.size, args.codec)
    engines = {"reference": ReferenceEngine(net), "product": engine_for(net)}
    if bf16_convolution_supported():
        engines["product-bf16"] = engine_for(net, "bfloat16")
    rows = []
    for temperature in args.temperatures:
        times: dict[str, list[float]] = {name: [] for name in engines}
        outputs: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, engine in engines.items():
                start = time.perf_counter()
                outputs[name] = enhance_image(image, engine, temperature, seed=0, tile=0)
                times[name].append(time.perf_counter() - start)
        reference = times["reference"]
        for name, values in times.items():
            med = common.median(values)
            rows.append({
                "size": args.size, "temperature": temperature, "path": name,
                "threads": torch.get_num_threads(), "rounds": args.rounds, "median_s": med,
                "mpix_s": args.size**2 / 1e6 / med,
                "speedup_vs_reference": common.median(
                    [r / v for r, v in zip(reference, values, strict=True)]
                ),
                "same_8bit_as_reference": bool(np.array_equal(outputs[name],
                                                              outputs["reference"])),
            })
    meta = {"machine": common.machine(), "command": sys.argv, "weights": args.weights or
            "reference checkpoint (paper size)", "codec": args.codec}
    common.write_results(rows, args.out, meta, COLUMNS)
    common.print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
