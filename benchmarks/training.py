"""Enhancer training speed: optimizer steps/s for the quick config (configs/enhancer/quick.yaml).

    python benchmarks/training.py --out benchmarks/results/training.csv
    python benchmarks/training.py --quick --out /tmp/training.csv

One full training step as the enhancer recipe runs it: forward and inverse pass
(`EnhancerTrainingPass`, QM on y), the INN-RSIC loss (`EnhancerLoss`, with the SqueezeNet feature
term when ``squeeze.backbone.pth`` is in the shared weights folder, else without it), backward,
gradient clipping and an AdamW step. The batch (ground-truth crops of UC Merced images and
their JPEG 2000 0.1 bpp decodings, as the quick config's pairs) is made once before timing, so
data loading is not measured. Runs in a subprocess for its peak memory.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

COLUMNS = [
    "config", "blocks", "growth", "gaussian_growth", "batch", "crop", "feature_loss", "steps",
    "threads", "median_step_s", "steps_s", "samples_s", "peak_rss_mib", "rss_increase_mib",
    "load1_start", "load1_end", "error",
]  # fmt: skip


def make_batch(batch: int, crop: int, codec_spec: str) -> dict[str, Any]:
    """Ground-truth crops and their decodings (each whole image coded, then cropped)."""
    import numpy as np

    from innrsic.codecs import make_codec

    codec = make_codec(codec_spec)
    gts, decs = [], []
    for path in common.ucm_tiles(batch):
        from innrsic.raster.image import read_image

        image = read_image(path)
        decoded = codec.decode(codec.encode(image))
        gts.append(image[:crop, :crop])
        decs.append(decoded[:crop, :crop])
    import torch

    return {
        "gt": torch.cat([common.to_tensor(np.asarray(g)) for g in gts]),
        "decoded": torch.cat([common.to_tensor(np.asarray(d)) for d in decs]),
    }


def probe(args: argparse.Namespace) -> None:
    import torch

    from innrsic.enhancer import EnhancerConfig, INNEnhancer
    from innrsic.train import load_enhancer_config
    from innrsic.train.enhancer import EnhancerTrainingPass
    from innrsic.train.losses import EnhancerLoss, build_feature_extractor, sample_reverse_noise

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_enhancer_config(common.REPO / "configs" / "enhancer" / "quick.yaml")
    model = config.model
    net = INNEnhancer(
        EnhancerConfig(
            blocks=model.blocks,
            growth=model.growth,
            gaussian_growth=model.gaussian_growth,
            expansion=model.expansion,
            clamp=model.clamp,
        )
    )
    weights = common.shared_root() / "weights" / "squeeze.backbone.pth"
    backbone = config.loss.feature_backbone if weights.is_file() else "none"
    features = build_feature_extractor(backbone, weights if backbone != "none" else None)
    loss_fn = EnhancerLoss(config.loss, features)
    module = EnhancerTrainingPass(
        net,
        config.loss.quantize_y,
        config.loss.reverse_source,
        restore=config.loss.restore_weight > 0,
    )
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=config.optim.lr,
        betas=tuple(config.optim.betas),
        weight_decay=config.optim.weight_decay,
    )
    batch_size = args.batch or config.train.batch_size
    crop = args.crop or config.data.crop_size
    batch = make_batch(batch_size, crop, config.data.codec)
    generator = torch.Generator().manual_seed(0)

    def step() -> float:
        noise = sample_reverse_noise(
            config.loss, batch["gt"].shape, net.config.latent_channels, generator
        )
        y, z, _, reverse, restored = module(
            batch["gt"], batch["decoded"], noise.y_noise, noise.z
        )
        terms = loss_fn(batch["gt"], batch["decoded"], y, z, reverse, restored)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.optim.grad_clip)
        optimizer.step()
        return float(terms["total"].detach())

    step()  # warm-up: kernels, optimizer state
    gc.collect()
    before = common.reset_peak_rss()
    load_start = common.load1()
    times = [common.timed(step)[0] for _ in range(args.steps)]
    peak = common.peak_rss_since_reset()
    med = common.median(times)
    common.emit_probe(
        {
            "config": "configs/enhancer/quick.yaml",
            "blocks": model.blocks,
            "growth": model.growth,
            "gaussian_growth": model.gaussian_growth,
            "batch": batch_size,
            "crop": crop,
            "feature_loss": backbone,
            "steps": args.steps,
            "threads": torch.get_num_threads(),
            "median_step_s": med,
            "steps_s": 1.0 / med,
            "samples_s": batch_size / med,
            "peak_rss_mib": peak,
            "rss_increase_mib": None if before is None or peak is None else peak - before,
            "load1_start": load_start,
            "load1_end": common.load1(),
            "step_times_s": times,
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=common.RESULTS / "training.csv")
    parser.add_argument("--quick", action="store_true", help="3 steps of a batch of 2")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 1 warm-up)")
    parser.add_argument("--batch", type=int, default=0, help="0: the config's batch size")
    parser.add_argument("--crop", type=int, default=0, help="0: the config's crop size")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe(args)
        return 0
    if args.quick:
        args.steps, args.batch = 3, args.batch or 2
    forwarded = ["--probe", "--steps", str(args.steps), "--batch", str(args.batch)]
    forwarded += ["--crop", str(args.crop), "--threads", str(args.threads)]
    result = common.run_probe(Path(__file__).resolve(), forwarded)
    rows = [result]
    common.print_table(rows, [c for c in COLUMNS if c in result or c == "error"])
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": common.machine(),
    }
    common.write_results(rows, args.out, meta, COLUMNS)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
