"""Base-codec throughput: encode and decode MPix/s, rate, PSNR and peak memory per codec.

    python benchmarks/codecs.py --out benchmarks/results/codecs.csv
    python benchmarks/codecs.py --quick --out /tmp/codecs.csv

Every (codec, size) runs in its own subprocess (so ru_maxrss / VmHWM is that codec's peak):
`--rounds` encodes and decodes of a real-content image (UC Merced mosaic), median times.
Codecs: the classical ones through `innrsic.codecs.make_codec`, ELIC through
``make_codec("elic:weights=...")`` with the reference weights (random values in the authors'
layout: the speed is the real network's, the rate and quality are not meaningful), and, for
comparison, CompressAI's ``Elic2022Chandelier.compress``/``decompress`` called directly with
PyTorch's default threading (``elic-compressai-direct``; the codec itself runs its networks with
one intra-op thread, ``innrsic.codecs.learned_checkpoint.CODEC_THREADS``, so that encoder and
decoder compute bit-identical entropy parameters whatever the machine's thread count; the
direct call shows what that choice costs or saves).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

CLASSICAL = [
    "jpeg:quality=75",
    "jpeg2000:ratio=48",
    "webp:quality=75",
    "avif:quality=50",
    "heif:quality=30",
]
ELIC = "elic:weights={weights}"
ELIC_DIRECT = "elic-compressai-direct"
COLUMNS = [
    "codec", "size", "rounds", "encode_s", "decode_s", "encode_mpix_s", "decode_mpix_s", "bpp",
    "psnr_db", "peak_rss_mib", "rss_increase_mib", "load1_start", "load1_end", "error",
]  # fmt: skip


class DirectElic:
    """CompressAI's ELIC called directly (default backends); same padding as the codec."""

    def __init__(self, weights: Path) -> None:
        from innrsic.codecs.learned_checkpoint import load_elic_checkpoint

        self.model = load_elic_checkpoint(weights).eval()
        self.shape: Any = None
        self.size: tuple[int, int] = (0, 0)

    def encode(self, image: np.ndarray) -> Any:
        import torch
        import torch.nn.functional as F

        h, w = image.shape[:2]
        ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
        x = common.to_tensor(image)
        x = F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
        with torch.inference_mode():
            out = self.model.compress(x)
        self.shape, self.size = out["shape"], (h, w)
        return out["strings"]

    def decode(self, strings: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x_hat = self.model.decompress(strings, self.shape)["x_hat"]
        h, w = self.size
        array = x_hat[0, :, :h, :w].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
        return array.numpy()


def payload_bytes(payload: Any) -> int:
    if isinstance(payload, bytes | bytearray):
        return len(payload)
    return sum(payload_bytes(p) for p in payload)


def probe(args: argparse.Namespace) -> None:
    from innrsic.metrics import psnr

    image = common.mosaic(args.size, args.size)
    if args.codec == ELIC_DIRECT:
        codec: Any = DirectElic(common.elic_checkpoint())
    else:
        from innrsic.codecs import make_codec

        codec = make_codec(args.codec)
        codec.encode(image[:64, :64])  # loads learned weights outside the timing
    gc.collect()
    before = common.reset_peak_rss()
    load_start = common.load1()
    enc, dec = [], []
    payload, decoded = None, None
    for _ in range(args.rounds):
        wall, _, payload = common.timed(lambda: codec.encode(image))
        enc.append(wall)
        wall, _, decoded = common.timed(lambda p=payload: codec.decode(p))
        dec.append(wall)
    peak = common.peak_rss_since_reset()
    mpix = args.size * args.size / 1e6
    encode_s, decode_s = common.median(enc), common.median(dec)
    common.emit_probe(
        {
            "encode_s": encode_s,
            "decode_s": decode_s,
            "encode_mpix_s": mpix / encode_s,
            "decode_mpix_s": mpix / decode_s,
            "bpp": 8 * payload_bytes(payload) / (args.size * args.size),
            "psnr_db": psnr(image, decoded),
            "peak_rss_mib": peak,
            "rss_increase_mib": None if before is None or peak is None else peak - before,
            "load1_start": load_start,
            "load1_end": common.load1(),
            "encode_times_s": enc,
            "decode_times_s": dec,
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=common.RESULTS / "codecs.csv")
    parser.add_argument("--quick", action="store_true", help="one small image, one round")
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--codecs", default="", help="specs separated by ; (default: all)")
    parser.add_argument("--no-learned", action="store_true", help="classical codecs only")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--codec", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe(args)
        return 0
    if args.quick:
        args.sizes, args.rounds = "128", 1
    specs = [s for s in args.codecs.split(";") if s] if args.codecs else list(CLASSICAL)
    if not args.codecs and not args.no_learned:
        specs += [ELIC.format(weights=common.elic_checkpoint()), ELIC_DIRECT]
    rows: list[dict[str, Any]] = []
    script = Path(__file__).resolve()
    for size in (int(s) for s in args.sizes.split(",")):
        for spec in specs:
            print(f"  {spec} {size}px...", flush=True)
            probe_args = ["--probe", "--codec", spec, "--size", str(size)]
            result = common.run_probe(script, [*probe_args, "--rounds", str(args.rounds)])
            name = spec.split(":")[0] if spec.startswith("elic:") else spec
            rows.append({"codec": name, "size": size, "rounds": args.rounds, **result})
    common.print_table(rows, COLUMNS)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": common.machine(),
        "elic_weights": str(common.elic_checkpoint()),
        "notes": "ELIC weights are the reference checkpoint's (random values): speed only",
    }
    common.write_results(rows, args.out, meta, COLUMNS)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
