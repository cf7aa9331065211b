"""Enhancer throughput: reference vs fast paths, forward and inverse, whole images and tiled scenes.

    python benchmarks/enhancer.py --sizes 1024 --directions inverse \\
        --out benchmarks/results/enhancer_1024_inverse.csv          # the issue's target case
    python benchmarks/enhancer.py --out benchmarks/results/enhancer.csv   # 256, 1024, 4096 tiled
    python benchmarks/enhancer.py --quick --out /tmp/enhancer.csv      # tiny sizes, seconds

Input: a real decoded image, as the enhancer sees it in use: a centre crop of DOTA P0168
(2304x1792; larger sizes: a UC Merced mosaic) compressed and decoded with --codec (default
JPEG 2000 at 0.4 bpp), and z ~ N(0, T^2) with T = --temperature (default 0: the temperature the
CPU recipes train the reverse pass at and evaluate, configs/enhancer/cpu_*.yaml), fixed seed.
Network: the reference checkpoint converted from the authors' layout (random weights: its
inverse is not an image, see the README), or --weights. The timings do not depend on the
values; the accuracy columns do.

Whole-image sizes (<= --tile) are timed side by side in this process: every round runs every
variant once, in turn, so load changes hit all variants alike; the ratio to the reference is
the median of the per-round ratios. Larger sizes are tiled scenes and run one pass per variant
in a subprocess. Peak memory: one subprocess per case (VmHWM after a reset; the increase over
the process after setup is reported too). GFLOP/s counts the convolutions' multiply-adds
analytically (`innrsic.enhancer.cost.enhancer_macs`) as 2 FLOP each; the peak is an estimate from
/proc/cpuinfo (see the JSON `meta`).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from innrsic.compute.perf import peak_gflops, peak_rss_mib, uptime_line
from innrsic.enhancer import INNEnhancer, from_original_checkpoint, load_enhancer
from innrsic.enhancer.cost import enhancer_macs
from innrsic.enhancer.fast import FastEnhancer
from innrsic.enhancer.settings import ENHANCER_OVERLAP

VARIANTS: dict[str, dict[str, Any] | None] = {
    "reference": None,
    "fast": {},
    "fast-1worker": {"workers": 1},
    "fast-nhwc": {"channels_last": True},
    "fast-bf16": {"precision": "bfloat16"},
}
DEFAULT_VARIANTS = "reference,fast,fast-nhwc,fast-bf16"
DOTA_SCENE = "P0168.png"
COLUMNS = [
    "size", "mode", "direction", "variant", "threads", "rounds", "median_s", "min_s",
    "cpu_util", "mpix_s", "gflop_s", "pct_peak", "speedup_vs_reference",
    "max_abs_diff_vs_reference", "psnr_vs_reference_db", "psnr_image_vs_reference_db",
    "peak_rss_mib", "rss_increase_mib", "load1_start", "load1_end",
]  # fmt: skip


class Runner:
    """One variant: `forward(x)` and `inverse(y, z)` with the reference's signatures."""

    def __init__(self, name: str, net: INNEnhancer) -> None:
        options = VARIANTS[name]
        self.name = name
        self.bf16 = bool(options and options.get("precision") == "bfloat16")
        self.model: INNEnhancer | FastEnhancer = (
            net if options is None else FastEnhancer(net, **options)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat(self.model(x), dim=1)

    def inverse(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model.inverse(y, z)


def source_image(size: int) -> tuple[np.ndarray, str]:
    """A real HxWx3 uint8 image of `size` px: DOTA P0168's centre crop, else a UCM mosaic."""
    from innrsic.raster.image import read_image

    path = common.shared_root() / "data" / "dota" / DOTA_SCENE
    if path.exists():
        scene = read_image(path)
        height, width = scene.shape[:2]
        if size <= min(height, width):
            top, left = (height - size) // 2, (width - size) // 2
            crop = scene[top : top + size, left : left + size]
            return np.ascontiguousarray(crop), f"DOTA {DOTA_SCENE} centre {size}x{size}"
    return common.mosaic(size, size), f"UC Merced mosaic {size}x{size}"


def inputs(size: int, args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(decoded image, latent z at the temperature, description); deterministic."""
    image, what = source_image(size)
    if args.codec != "none":
        from innrsic.codecs import make_codec

        codec = make_codec(args.codec)
        image = codec.decode(codec.encode(image))
        what += f", {args.codec} decoded"
    x = common.to_tensor(image)
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(x.shape, generator=generator) * args.temperature
    return x, z, f"{what}; z ~ N(0, {args.temperature:g}^2), seed 0"


def innrsic_tiler() -> bool:
    """Whether `innrsic.enhancer.apply` (tiled enhancement, overlap, blending) is installed."""
    try:
        from innrsic.enhancer.apply import enhance_image  # noqa: F401
    except ImportError:
        return False
    return True


def tiles(t: torch.Tensor, tile: int) -> torch.Tensor:
    """(1, C, H, W) -> (n, C, tile, tile), row-major; H and W are multiples of `tile`."""
    c = t.shape[1]
    grid = t.unfold(2, tile, tile).unfold(3, tile, tile)  # 1, C, rows, cols, tile, tile
    return grid.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, tile, tile).contiguous()


def untile(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    _, c, h, w = t.shape
    grid = t.reshape(rows, cols, c, h, w).permute(2, 0, 3, 1, 4)
    return grid.reshape(1, c, rows * h, cols * w)


def tiled_mode(args: argparse.Namespace, direction: str) -> str:
    if direction == "inverse" and args.tiler == "innrsic" and innrsic_tiler():
        return f"tiled {args.tile}px+{args.overlap} innrsic.enhancer.apply"
    return f"tiled {args.tile}px x{args.tile_batch} batched"


def one_pass(
    runner: Runner,
    direction: str,
    x: torch.Tensor,
    z: torch.Tensor,
    args: argparse.Namespace,
) -> torch.Tensor:
    """One pass over the whole input, tiled above ``args.tile`` px.

    Tiled inverse: `innrsic.enhancer.apply.enhance_image` (tiles of tile + 2 overlap px, one at a
    time, blended; z from its own seeded noise; uint8 in and out) when installed and
    ``--tiler innrsic``; otherwise, and for the forward pass, batches of ``--tile-batch``
    non-overlapping tiles (outputs at tile edges differ from an untiled pass; speed only).
    """
    size, tile, batch = x.shape[-1], args.tile, args.tile_batch
    if size <= tile:
        return runner.inverse(x, z) if direction == "inverse" else runner.forward(x)
    if tiled_mode(args, direction).endswith("innrsic.enhancer.apply"):
        from innrsic.enhancer.apply import enhance_image

        image = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        out = enhance_image(image, runner.model, args.temperature, 0, tile, args.overlap)
        return torch.from_numpy(out)
    rows = cols = size // tile
    xt, zt = tiles(x, tile), tiles(z, tile)
    outs = []
    for start in range(0, xt.shape[0], batch):
        xb, zb = xt[start : start + batch], zt[start : start + batch]
        outs.append(runner.inverse(xb, zb) if direction == "inverse" else runner.forward(xb))
    return untile(torch.cat(outs), rows, cols)


def throughput(size: int, seconds: float, net: INNEnhancer, bf16: bool) -> dict[str, float]:
    macs = enhancer_macs(net.config, size, size)
    gflop_s = 2 * macs / seconds / 1e9
    peak = peak_gflops(bf16=bf16)["gflops"]
    return {
        "mpix_s": size * size / seconds / 1e6,
        "gflop_s": gflop_s,
        "pct_peak": 100 * gflop_s / peak if peak else None,
    }


def psnr(test: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB for peak 1."""
    mse = float((test - reference).double().pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def compare(out: torch.Tensor, ref: torch.Tensor, direction: str) -> dict[str, float | None]:
    """Max abs difference and PSNR (peak 1) of the raw outputs; for the inverse also the PSNR
    of the enhanced images (clamped to [0, 1], as `enhance` returns them)."""
    image = psnr(out.clamp(0, 1), ref.clamp(0, 1)) if direction == "inverse" else None
    return {
        "max_abs_diff_vs_reference": float((out - ref).abs().max()),
        "psnr_vs_reference_db": psnr(out, ref),
        "psnr_image_vs_reference_db": image,
    }


def output_stats(out: torch.Tensor) -> dict[str, float]:
    """Range of the reference output, and the share of its values outside [0, 1]."""
    return {
        "min": float(out.min()),
        "max": float(out.max()),
        "outside_0_1": float(((out < 0) | (out > 1)).float().mean()),
    }


def side_by_side(
    net: INNEnhancer,
    size: int,
    direction: str,
    names: list[str],
    args: argparse.Namespace,
    notes: dict[str, Any],
) -> list[dict[str, Any]]:
    x, z, what = inputs(size, args)
    notes[f"input {size}"] = what
    runners = [Runner(name, net) for name in names]
    if args.warmup if args.warmup is not None else size <= 256:
        for runner in runners:  # oneDNN creates its kernels per shape on first use
            one_pass(runner, direction, x, z, args)
    walls: dict[str, list[float]] = {r.name: [] for r in runners}
    cpus: dict[str, list[float]] = {r.name: [] for r in runners}
    first: dict[str, torch.Tensor] = {}
    load_start = common.load1()
    for round_index in range(args.rounds):
        for runner in runners:
            wall, cpu, out = common.timed(lambda r=runner: one_pass(r, direction, x, z, args))
            walls[runner.name].append(wall)
            cpus[runner.name].append(cpu)
            first.setdefault(runner.name, out)
        print(
            f"  {size}px {direction} round {round_index + 1}/{args.rounds}: "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in walls.items()),
            flush=True,
        )
    load_end = common.load1()
    rows = []
    for runner in runners:
        name = runner.name
        med = common.median(walls[name])
        row: dict[str, Any] = {
            "size": size,
            "mode": "whole",
            "direction": direction,
            "variant": name,
            "threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "median_s": med,
            "min_s": min(walls[name]),
            "cpu_util": sum(cpus[name]) / sum(walls[name]),
            "load1_start": load_start,
            "load1_end": load_end,
            "times_s": walls[name],
            **throughput(size, med, net, runner.bf16),
        }
        if "reference" in walls:
            ratios = [r / t for r, t in zip(walls["reference"], walls[name], strict=True)]
            row["speedup_vs_reference"] = common.median(ratios)
            row["speedups_per_round"] = ratios
            row.update(compare(first[name], first["reference"], direction))
        rows.append(row)
    if "reference" in first:
        notes[f"reference output {size} {direction}"] = output_stats(first["reference"])
    return rows


def probe(net: INNEnhancer, args: argparse.Namespace) -> None:
    """One case in this (fresh) process: setup, one pass, time and peak memory."""
    x, z, _ = inputs(args.size, args)
    runner = Runner(args.variant, net)
    gc.collect()
    before = common.reset_peak_rss()
    load_start = common.load1()
    wall, cpu, _ = common.timed(lambda: one_pass(runner, args.direction, x, z, args))
    peak = common.peak_rss_since_reset() if before is not None else peak_rss_mib()
    common.emit_probe(
        {
            "median_s": wall,
            "min_s": wall,
            "cpu_util": cpu / wall,
            "peak_rss_mib": peak,
            "rss_increase_mib": None if before is None else peak - before,
            "load1_start": load_start,
            "load1_end": common.load1(),
            **throughput(args.size, wall, net, runner.bf16),
        }
    )


def probe_args(args: argparse.Namespace, size: int, direction: str, variant: str) -> list[str]:
    extra = ["--quick"] if args.quick else []
    if args.threads:
        extra += ["--threads", str(args.threads)]
    if args.weights:
        extra += ["--weights", str(args.weights)]
    return [
        "--probe", "--size", str(size), "--direction", direction, "--variant", variant,
        "--tile", str(args.tile), "--tile-batch", str(args.tile_batch),
        "--overlap", str(args.overlap), "--tiler", args.tiler, "--codec", args.codec,
        "--temperature", str(args.temperature), *extra,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=common.RESULTS / "enhancer.csv")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--sizes", default="256,1024,4096", help="square sizes in px")
    parser.add_argument("--directions", default="inverse,forward")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--codec", default="jpeg2000:bpp=0.4", help="codec spec of the input, or 'none'"
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="latent temperature T")
    parser.add_argument(
        "--weights", type=Path, help="enhancer weights (INNEnhancer.save); default: reference"
    )
    parser.add_argument("--tile", type=int, default=1024, help="larger sizes are tiled")
    parser.add_argument("--tile-batch", type=int, default=4, help="tiles per call (batched)")
    parser.add_argument("--overlap", type=int, default=ENHANCER_OVERLAP, help="tile overlap (px)")
    parser.add_argument(
        "--tiler",
        choices=("innrsic", "batch"),
        default="innrsic",
        help="tiled inverse through innrsic.enhancer.apply.enhance_image (if installed) or batches",
    )
    parser.add_argument(
        "--reference-max-size", type=int, default=1024, help="skip the reference above this"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        choices=(0, 1),
        default=None,
        help="one untimed pass per variant first (default: 1 up to 256 px, 0 above)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--direction", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick and not args.probe:
        args.sizes, args.tile, args.tile_batch, args.rounds = "64,128", 64, 2, 1
        args.overlap = 16
        if args.variants == DEFAULT_VARIANTS:
            args.variants = "reference,fast,fast-bf16"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights:
        net = load_enhancer(args.weights).eval()
    else:
        net = from_original_checkpoint(common.reference_checkpoint()).eval()
    if args.probe:
        probe(net, args)
        return 0
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    directions = [d.strip() for d in args.directions.split(",") if d.strip()]
    machine = common.machine()  # uptime (load) at the start
    rows: list[dict[str, Any]] = []
    notes: dict[str, Any] = {}
    script = Path(__file__).resolve()
    for size in (int(s) for s in args.sizes.split(",")):
        if size > args.tile and size % args.tile:
            parser.error(f"tiled size {size} must be a multiple of --tile {args.tile}")
        for direction in directions:
            if size <= args.tile:
                case = side_by_side(net, size, direction, names, args, notes)
            else:
                case = []
                for name in names:
                    if name == "reference" and size > args.reference_max_size:
                        continue
                    print(f"  {size}px tiled {direction} {name} (subprocess)...", flush=True)
                    result = common.run_probe(script, probe_args(args, size, direction, name))
                    case.append(
                        {
                            "size": size,
                            "mode": tiled_mode(args, direction),
                            "direction": direction,
                            "variant": name,
                            "threads": args.threads or torch.get_num_threads(),
                            "rounds": 1,
                            **result,
                        }
                    )
            if not (args.no_memory or args.quick):  # quick: tiled probes only
                for row in case:
                    if row["mode"] == "whole":
                        result = common.run_probe(
                            script, probe_args(args, size, direction, row["variant"])
                        )
                        row["peak_rss_mib"] = result.get("peak_rss_mib")
                        row["rss_increase_mib"] = result.get("rss_increase_mib")
            rows.extend(case)
            common.print_table(case, COLUMNS)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "uptime_end": uptime_line(),
        "macs_per_256px": enhancer_macs(net.config, 256, 256),
        "config": net.config.to_dict(),
        "weights": str(args.weights) if args.weights else "reference checkpoint (random)",
        "inputs": notes,
        "notes": "times in seconds, wall clock; speedup = median over rounds of "
        "reference time / variant time in the same round; PSNR for peak 1; "
        "psnr_image: outputs clamped to [0, 1]",
    }
    common.write_results(rows, args.out, meta, COLUMNS)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
