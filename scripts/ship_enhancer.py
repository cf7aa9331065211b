"""Ship a trained enhancer into the package: float16 weights, JSON record and model card.

    python scripts/ship_enhancer.py --name enhancer-jpeg2000-bpp0.2 \\
        --run runs/enhancer/cpu_jpeg2000_bpp0.2_restoration --codec jpeg2000:bpp=0.2 \\
        --acceptance ACCEPTANCE/summary.json --label new --replaces shipped \\
        --recipe configs/enhancer/cpu_jpeg2000_bpp0.2_restoration.yaml

``--acceptance`` is the ``summary.json`` of ``benchmarks/enhancer_acceptance.py`` run with the
run's weights as ``--enhancer LABEL=WEIGHTS`` (and, with ``--replaces``, the shipped model it
would replace as a second ``--enhancer``), controls tuned on training images. Nothing is written
unless the model passes `innrsic.pretrained.card.refusals` (issue 15's rule: it restores at
T=0, beats the best trivial control in LPIPS-squeeze at its default temperature on every pairs
set, and is not worse than the model it replaces). The default temperature is
`choose_temperature`'s. float16 storage is used only if it changes no enhanced pixel by more
than 1/255 on the images checked; the weights file records the default temperature and codec.
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
from innrsic.data.manifest import read_pairs_manifest
from innrsic.enhancer import load_enhancer, save_enhancer
from innrsic.enhancer.apply import enhance_array
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.metrics import psnr
from innrsic.pretrained import PRETRAINED_DIR, resolve_enhancer
from innrsic.pretrained.card import (
    acceptance_table,
    choose_temperature,
    hardware_description,
    read_acceptance,
    refusals,
)
from innrsic.raster.image import read_image

HALF_CHECK_IMAGES = 6


def half_precision_check(weights: Path, pairs: Path, temperature: float) -> dict:
    """Enhance a few decoded images with float32 and float16-stored weights; compare pixels."""
    full = load_enhancer(weights).eval()
    with tempfile.TemporaryDirectory() as tmp:
        half_path = Path(tmp) / "half.safetensors"
        save_enhancer(full, half_path, half=True)
        half = load_enhancer(half_path).eval()
    entries = read_pairs_manifest(pairs).entries[:HALF_CHECK_IMAGES]
    worst, psnrs = 0, []
    for entry in entries:
        decoded = read_image(pairs / entry.decoded)
        a = enhance_array(decoded, full, EnhanceSettings(temperature))
        b = enhance_array(decoded, half, EnhanceSettings(temperature))
        worst = max(worst, int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()))
        psnrs.append(psnr(a, b))
    return {"images": len(entries), "max_abs_uint8": worst, "min_psnr_db": min(psnrs)}


def training_facts(run: Path, weights: Path) -> dict:
    """Steps, wall time (config written -> weights written), config of a training run."""
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    log = (run / "train_log.csv").read_text(encoding="utf-8").strip().splitlines()
    last_step = int(log[-1].split(",", 1)[0]) if len(log) > 1 else 0
    wall = weights.stat().st_mtime - (run / "config.yaml").stat().st_mtime
    return {"config": config, "steps": last_step, "wall_s": wall}


def acceptance_command(command: str) -> str:
    """The acceptance run's command from the script on (no interpreter path of this machine)."""
    script = "benchmarks/enhancer_acceptance.py"
    return command[command.index(script):] if script in command else command


def start_description(model: dict) -> str:
    """Where training started: the weights it was initialised from (with their sha256, read
    before this run replaces them), else the named initialisation."""
    if model.get("init_weights"):
        path, _ = resolve_enhancer(str(model["init_weights"]))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return f"the weights `{model['init_weights']}` (sha256 {digest[:16]}...)"
    init = model.get("init", "paper")
    gain = f" (latent gain {model['latent_gain']:g})" if init == "identity" else ""
    return f"`{init}`{gain}"


def render_card(args: argparse.Namespace, facts: dict, acceptance, temperature: float,
                half: dict, params: int) -> str:
    config = facts["config"]
    model, data, loss, optim, train = (config[k] for k in ("model", "data", "loss", "optim",
                                                           "train"))
    labels = {args.label: "this model"}
    if args.replaces:
        labels[args.replaces] = "previous model"
    lines = [
        f"# {args.name}",
        "",
        f"INN-RSIC enhancer trained behind `{args.codec}`. Use it with "
        f"`innrsic decompress FILE.rsic -o OUT.png --enhance {args.name}` or "
        f"`innrsic enhance DECODED.png -o OUT.png --weights {args.name}`. "
        f"Default temperature **{temperature:g}** (rule below); `--temperature 0` is the "
        "fidelity end (a restoration), `--temperature 1` the realism end.",
        "",
        "## Training",
        "",
        f"- codec: `{data['codec']}`; pairs from `innrsic pairs` on the UC Merced **train** "
        "split (the holdout never used)",
        f"- network: {model['blocks']} coupling blocks, DenseBlock growth {model['growth']}, "
        f"Gaussianisation growth {model['gaussian_growth']}, expansion k={model['expansion']}; "
        f"{params:,} parameters; start: {start_description(model)}",
        f"- {facts['steps']} steps, batch {train['batch_size']}, {data['crop_size']}x"
        f"{data['crop_size']} crops, AdamW lr {optim['lr']} (x{optim['gamma']} at "
        f"{optim['milestones']}), seed {train['seed']}; weights `{args.weights}`",
        f"- loss weights: forward {loss['forward_weight']}, latent {loss['latent_weight']}, "
        f"restore {loss.get('restore_weight', 0)}, reverse {loss['reverse_weight']}, feature "
        f"{loss['feature_weight']} ({loss['feature_backbone']}); sampled pass from "
        f"`{loss['reverse_source']}` at T={loss['reverse_temperature']}",
        f"- wall time {facts['wall_s'] / 60:.0f} min on {hardware_description()}",
        f"- weights: float16 safetensors with `default_temperature` and `codec` in the metadata "
        f"(vs float32 on {half['images']} images: max |Δ| {half['max_abs_uint8']}/255, min "
        f"PSNR {half['min_psnr_db']:.1f} dB)",
        "",
        "## Measured",
        "",
        "`benchmarks/enhancer_acceptance.py` (paired means with 95% CIs; controls tuned by "
        "minimum LPIPS-squeeze on UC-M **train** images; seed diff: mean absolute difference "
        "between two latent seeds, in levels; band err: |log2| of the enhanced/ground-truth "
        "luminance energy ratio in 1/16-1/4 cycle/pixel):",
        "",
        f"    {acceptance_command(acceptance.command)}",
        "",
    ]
    for pairs in acceptance.pairs:
        lines += [f"### {pairs}", "", acceptance_table(acceptance, pairs, labels)]
    lines += [
        "## Default temperature",
        "",
        f"{temperature:g}: the largest temperature of the sweep whose mean PSNR is not below the "
        f"decoded image's on {acceptance.pairs[0]}.",
        "",
    ]
    if args.recipe:
        recipe = args.recipe.read_text(encoding="utf-8").rstrip()
        lines += ["## Recipe", "", f"`{args.recipe}`:", "", "```yaml", recipe, "```", ""]
    lines += [f"Card written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by scripts/ship_enhancer.py.",
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--weights", default="best.safetensors", help="file in --run")
    parser.add_argument("--codec", required=True, help="codec spec it was trained behind")
    parser.add_argument("--covers", nargs="+", required=True, metavar="CODEC",
                        help="codec names it is chosen for (innrsic.pretrained.Coverage)")
    parser.add_argument("--covers-bpp", nargs=2, type=float, required=True,
                        metavar=("LOW", "HIGH"), help="payload rates [LOW, HIGH) it is chosen for")
    parser.add_argument("--acceptance", type=Path, required=True,
                        help="summary.json of benchmarks/enhancer_acceptance.py")
    parser.add_argument("--label", default="new", help="this model's --enhancer label there")
    parser.add_argument("--replaces", help="label there of the shipped model it replaces")
    parser.add_argument("--half-check-pairs", type=Path, required=True,
                        help="a pairs directory whose first decoded images check float16")
    parser.add_argument("--recipe", type=Path, help="training config to quote in the card")
    parser.add_argument("--summary", default="", help="one-line description")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    args = parser.parse_args(argv)

    weights = args.run / args.weights
    acceptance = read_acceptance(args.acceptance)
    temperature = choose_temperature(acceptance, args.label)
    reasons = refusals(acceptance, args.label, temperature, args.replaces)
    if reasons:
        print("not shipped:\n  " + "\n  ".join(reasons))
        return 1
    half = half_precision_check(weights, args.half_check_pairs, temperature)
    if half["max_abs_uint8"] > 1:
        print(f"float16 storage changes pixels by up to {half['max_abs_uint8']}/255: not shipped")
        return 1
    net = load_enhancer(weights)
    params = sum(p.numel() for p in net.parameters())
    card = render_card(args, training_facts(args.run, weights), acceptance, temperature, half,
                       params)

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.name}.safetensors"
    save_enhancer(net, target, half=True, default_temperature=temperature, codec=args.codec)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    write_bytes_atomic(args.out / f"{args.name}.md", card.encode("utf-8"))
    record = {
        "name": args.name,
        "kind": "enhancer",
        "codec": args.codec,
        "covers": {"codecs": args.covers, "bpp": args.covers_bpp},
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
