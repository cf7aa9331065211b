"""Ship a trained enhancer into the package: float16 weights, JSON record and model card.

    python scripts/ship_enhancer.py --name enhancer-jpeg2000-bpp0.1 \
        --run runs/enhancer/cpu_jpeg2000_bpp0.1 --codec jpeg2000:bpp=0.1 \
        --eval "UC-M test=eval/ucm-j2k0.1" --eval "DOTA crops=eval/dota-j2k0.1" \
        --recipe configs/enhancer/cpu_jpeg2000_bpp0.1.yaml

Each --eval folder is an ``innrsic evaluate`` output for this codec spec with the run's weights
at several temperatures. The default temperature is chosen on the first evaluation (best
LPIPS-squeeze with PSNR at most 0.5 dB below decoded). Nothing is written unless, at that
temperature, LPIPS-squeeze improves by more than the 95% confidence intervals on every
evaluation: a model that makes images worse is not shipped. float16 storage is used only if
it changes no enhanced pixel by more than 1/255 on the evaluation images checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from innrsic.atomic import write_bytes_atomic
from innrsic.enhancer import load_enhancer, save_enhancer
from innrsic.enhancer.apply import enhance_image
from innrsic.metrics import psnr
from innrsic.pretrained import PRETRAINED_DIR
from innrsic.pretrained.card import (
    choose_temperature,
    evaluation_stats,
    hardware_description,
    lpips_gain_is_significant,
    stats_table,
)
from innrsic.raster.image import list_images, read_image

HALF_CHECK_IMAGES = 8


def _parse_eval(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--eval needs LABEL=FOLDER, got {text!r}")
    return label, Path(folder)


def half_precision_check(weights: Path, decoded_dir: Path, temperature: float) -> dict:
    """Enhance a few decoded images with float32 and float16-stored weights; compare pixels."""
    full = load_enhancer(weights).eval()
    with tempfile.TemporaryDirectory() as tmp:
        half_path = Path(tmp) / "half.safetensors"
        save_enhancer(full, half_path, half=True)
        half = load_enhancer(half_path).eval()
    images = list_images(decoded_dir)[:HALF_CHECK_IMAGES]
    worst, psnrs = 0, []
    for path in images:
        decoded = read_image(path)
        a = enhance_image(decoded, full, temperature, seed=0)
        b = enhance_image(decoded, half, temperature, seed=0)
        worst = max(worst, int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()))
        psnrs.append(psnr(a, b))
    return {"images": len(images), "max_abs_uint8": worst, "min_psnr_db": min(psnrs)}


def training_facts(run: Path, weights: Path) -> dict:
    """Steps, wall time (config written -> weights written), config of a training run."""
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    log = (run / "train_log.csv").read_text(encoding="utf-8").strip().splitlines()
    last_step = int(log[-1].split(",", 1)[0]) if len(log) > 1 else 0
    wall = weights.stat().st_mtime - (run / "config.yaml").stat().st_mtime
    return {"config": config, "steps": last_step, "wall_s": wall}


def render_card(args: argparse.Namespace, facts: dict, tables: list[tuple[str, str]],
                temperature: float, half: dict, params: int) -> str:
    config = facts["config"]
    model, data, loss, optim, train = (config[k] for k in ("model", "data", "loss", "optim",
                                                           "train"))
    recipe = args.recipe.read_text(encoding="utf-8") if args.recipe else ""
    lines = [
        f"# {args.name}",
        "",
        f"INN-RSIC enhancer trained behind `{args.codec}`. Use it with "
        f"`innrsic decompress FILE.rsic -o OUT.png --enhance {args.name}` or "
        f"`innrsic enhance DECODED.png -o OUT.png --weights {args.name}`. "
        f"Default temperature **{temperature:g}** (chosen as below).",
        "",
        "## Training",
        "",
        f"- codec: `{data['codec']}`; pairs from `innrsic pairs` on the UC Merced **train** "
        "split (966 images; test split and holdout never trained on)",
        f"- network: {model['blocks']} coupling blocks, DenseBlock growth {model['growth']}, "
        f"Gaussianisation growth {model['gaussian_growth']}, expansion k={model['expansion']}; "
        f"{params:,} parameters",
        f"- {facts['steps']} steps, batch {train['batch_size']}, {data['crop_size']}x"
        f"{data['crop_size']} crops, AdamW lr {optim['lr']} (x{optim['gamma']} at "
        f"{optim['milestones']}), seed {train['seed']}",
        f"- loss weights: forward {loss['forward_weight']}, latent {loss['latent_weight']}, "
        f"reverse {loss['reverse_weight']}, feature {loss['feature_weight']} "
        f"({loss['feature_backbone']}); reverse pass from `{loss['reverse_source']}` with "
        f"z' ~ N(0, {loss['reverse_temperature']}^2)",
        f"- wall time {facts['wall_s'] / 60:.0f} min on {hardware_description()}",
        f"- weights: float16 safetensors (vs float32 on {half['images']} images: max "
        f"|Δ| {half['max_abs_uint8']}/255, min PSNR {half['min_psnr_db']:.1f} dB)",
        "",
        "## Measured (innrsic evaluate, LPIPS-squeeze, seed 0)",
        "",
        "Means ± 95% CI half-width over images; Δ = enhanced − decoded, paired per image.",
        "",
    ]
    for label, table in tables:
        lines += [f"### {label}", "", table]
    lines += [
        "## Default temperature",
        "",
        f"{temperature:g}: the lowest mean LPIPS-squeeze among temperatures whose mean PSNR "
        f"is at most 0.5 dB below the decoded image's, on {tables[0][0]}.",
        "",
    ]
    if recipe:
        lines += ["## Recipe", "", "```yaml", recipe.rstrip(), "```", ""]
    lines += [f"Card written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by scripts/ship_enhancer.py.",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--weights", default="final.safetensors", help="file in --run")
    parser.add_argument("--codec", required=True, help="codec spec it was trained behind")
    parser.add_argument("--eval", type=_parse_eval, action="append", required=True,
                        help="LABEL=FOLDER of an innrsic evaluate output (repeatable)")
    parser.add_argument("--recipe", type=Path, help="training config to quote in the card")
    parser.add_argument("--summary", default="", help="one-line description")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    args = parser.parse_args(argv)

    weights = args.run / args.weights
    stats = {
        label: evaluation_stats(folder / "rows.csv", args.codec) for label, folder in args.eval
    }
    first = args.eval[0][0]
    temperature = choose_temperature(stats[first])
    if temperature is None:
        print(f"not shipped: no temperature keeps PSNR within 0.5 dB of decoded on {first}")
        return 1
    failing = [label for label, s in stats.items()
               if not lpips_gain_is_significant(s, temperature)]
    if failing:
        print(f"not shipped: at T={temperature:g} the LPIPS gain is not beyond the 95% "
              f"intervals on {', '.join(failing)}")
        for label, s in stats.items():
            print(f"{label}\n{stats_table(s)}")
        return 1
    decoded_dir = args.eval[0][1] / "cache" / "decoded"
    half = half_precision_check(weights, decoded_dir, temperature)
    if half["max_abs_uint8"] > 1:
        print(f"float16 storage changes pixels by up to {half['max_abs_uint8']}/255: not shipped")
        return 1
    net = load_enhancer(weights)
    params = sum(p.numel() for p in net.parameters())
    tables = [(label, stats_table(s)) for label, s in stats.items()]
    facts = training_facts(args.run, weights)
    card = render_card(args, facts, tables, temperature, half, params)

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.name}.safetensors"
    save_enhancer(net, target, half=True)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    write_bytes_atomic(args.out / f"{args.name}.md", card.encode("utf-8"))
    record = {
        "name": args.name,
        "kind": "enhancer",
        "codec": args.codec,
        "default_temperature": temperature,
        "weights": target.name,
        "card": f"{args.name}.md",
        "sha256": digest,
        "summary": args.summary or f"INN-RSIC enhancer behind {args.codec}",
    }
    write_bytes_atomic(args.out / f"{args.name}.json",
                       (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    print(card)
    return 0


if __name__ == "__main__":
    sys.exit(main())
