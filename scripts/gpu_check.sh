#!/usr/bin/env bash
# Issue 34's GPU check in one command (under 5 minutes on one GPU): the enhancer and the exact
# learned decode on $DEVICE against the CPU.
#
#   scripts/gpu_check.sh [OUT]                    # on a GPU machine; OUT default:
#                                                 # benchmarks/results/gpu_check-<date>
#   DEVICE=cpu TINY=1 scripts/gpu_check.sh /tmp/x # CPU dry run: small crops and scene
#
# OUT gets summary.json, summary.md (the tables) and environment.txt (nvidia-smi, torch). Checks:
#   1. enhanced DOTA P0168 (enhancer-jpeg2000-bpp0.2 behind jpeg2000:bpp=0.2) on $DEVICE vs the
#      CPU: max and mean difference in 8-bit levels at T=0 (must be <= 1) and T=1 (reported);
#   2. MPix/s of the enhancer on $DEVICE and the CPU on P0168, and on $DEVICE on a synthetic
#      100 MPix scene (P0168 repeated; streamed through enhance_tiles, tiles of 512 px);
#   3. an ELIC .rsic file (the reference checkpoint) decoded on $DEVICE bit-identical to the CPU.
# Exit status 1 when a check fails. Needs the shared data ($DATA, default ../shared/data) and
# reference checkpoints ($REFERENCE, default ../shared/reference).
set -euo pipefail
OUT=${1:-benchmarks/results/gpu_check-$(date +%Y-%m-%d)}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-../shared/data}
REFERENCE=${REFERENCE:-../shared/reference}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
step() { echo "[$(date +%T)] $*" >&2; }

step "environment -> $OUT/environment.txt"
{
    date -Is
    git rev-parse HEAD 2>/dev/null || true
    nvidia-smi 2>/dev/null || echo "nvidia-smi: not available"
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), 'cudnn', torch.backends.cudnn.version())"
    grep -m1 "model name" /proc/cpuinfo || true
    echo "CPUs: $(getconf _NPROCESSORS_ONLN)"
} > "$OUT/environment.txt" 2>&1

step "checks on $DEVICE${TINY:+ (tiny)}"
DEVICE="$DEVICE" TINY="${TINY:-}" DATA="$DATA" REFERENCE="$REFERENCE" \
    "$PY" - "$OUT" <<'PYTHON'
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import innrsic
from innrsic.codecs import make_codec
from innrsic.codecs.learned_checkpoint import load_elic_checkpoint, save_learned_checkpoint
from innrsic.enhancer.apply import enhance_array, enhance_tiles
from innrsic.enhancer.fast import engine_for
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.rsic.container import read_container

out = Path(sys.argv[1])
device = os.environ["DEVICE"]
tiny = bool(os.environ["TINY"])
data, reference = Path(os.environ["DATA"]), Path(os.environ["REFERENCE"])
MODEL, SPEC = "enhancer-jpeg2000-bpp0.2", "jpeg2000:bpp=0.2"
SCENE_SIDE = 600 if tiny else 10000  # the synthetic scene: 0.36 or 100 MPix
ELIC_SIDE = 64 if tiny else 512
results: dict = {"device": device, "tiny": tiny, "model": MODEL, "codec": SPEC}
failures: list[str] = []


def log(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def synchronize() -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(call):
    synchronize()
    start = time.perf_counter()
    value = call()
    synchronize()
    return value, time.perf_counter() - start


# 1-2. P0168 enhanced on the device and on the CPU
scene = innrsic.read_image(data / "dota" / "P0168.png")
if tiny:
    scene = np.ascontiguousarray(scene[:256, :256])
decoded = innrsic.decompress(innrsic.compress(scene, SPEC))
mpix = decoded.shape[0] * decoded.shape[1] / 1e6
net = innrsic.load_enhancer(MODEL, device="cpu")
engines = {"cpu": engine_for(net, device="cpu"), device: engine_for(net, device=device)}
warm = np.ascontiguousarray(decoded[:600, :600])
enhance_array(warm, engines[device], EnhanceSettings(0.0, device=device))  # start-up, kernels
p0168 = {"width": decoded.shape[1], "height": decoded.shape[0], "mpix": round(mpix, 3)}
for temperature in (0.0, 1.0):
    outputs = {}
    for where in dict.fromkeys(("cpu", device)):
        settings = EnhanceSettings(temperature, device=where)
        outputs[where], seconds = timed(lambda w=where, s=settings: enhance_array(
            decoded, engines[w], s))
        p0168[f"{where}_t{temperature:g}_seconds"] = round(seconds, 3)
        p0168[f"{where}_t{temperature:g}_mpix_s"] = round(mpix / seconds, 3)
        log(f"P0168 T={temperature:g} on {where}: {seconds:.2f} s, {mpix / seconds:.2f} MPix/s")
    difference = np.abs(outputs[device].astype(np.int16) - outputs["cpu"].astype(np.int16))
    p0168[f"t{temperature:g}_max_levels"] = int(difference.max())
    p0168[f"t{temperature:g}_mean_levels"] = float(difference.mean())
    p0168[f"t{temperature:g}_share_differing"] = float((difference > 0).mean())
    log(f"P0168 T={temperature:g} {device} vs cpu: max {difference.max()} levels, mean "
        f"{difference.mean():.5f}")
if p0168["t0_max_levels"] > 1:
    failures.append(f"P0168 at T=0 differs by {p0168['t0_max_levels']} levels on {device}")
results["p0168"] = p0168

# 2. A synthetic scene, streamed (no output image kept), on the device
side = SCENE_SIDE
synthetic = np.tile(decoded, (-(-side // decoded.shape[0]), -(-side // decoded.shape[1]), 1))
synthetic = np.ascontiguousarray(synthetic[:side, :side])
settings = EnhanceSettings(0.0, device=device)


def stream() -> int:
    total = 0
    for _, values in enhance_tiles(lambda w: synthetic[w.slices], side, side, engines[device],
                                   settings):
        total += int(values[::64, ::64].sum())
    return total


_, seconds = timed(stream)
results["synthetic"] = {"side": side, "mpix": side * side / 1e6, "seconds": round(seconds, 3),
                        "mpix_s": round(side * side / 1e6 / seconds, 3)}
log(f"synthetic {side}x{side} on {device}: {seconds:.2f} s, "
    f"{side * side / 1e6 / seconds:.2f} MPix/s")

# 3. An ELIC file decoded on the device, bit for bit the CPU's
weights = out / "work" / "elic.safetensors"
weights.parent.mkdir(parents=True, exist_ok=True)
save_learned_checkpoint(
    load_elic_checkpoint(reference / "elic_original_checkpoint.pth.tar.xz"), "elic", weights)
codec = make_codec(f"elic:weights={weights}")
crop = np.ascontiguousarray(scene[:ELIC_SIDE, :ELIC_SIDE])
rsic = out / "work" / "elic.rsic"
rsic.write_bytes(innrsic.compress(crop, codec))
(payload,) = read_container(rsic.read_bytes()).payloads
on_cpu, cpu_seconds = timed(lambda: codec.decode(payload))
codec.decode(payload, device=device)  # the copy to the device, start-up
on_device, device_seconds = timed(lambda: codec.decode(payload, device=device))
identical = bool(np.array_equal(on_cpu, on_device))
same_as_file = bool(np.array_equal(on_cpu, innrsic.decompress(rsic.read_bytes())))
results["elic"] = {"side": ELIC_SIDE, "identical": identical, "cpu_seconds": round(cpu_seconds, 3),
                   f"{device}_seconds": round(device_seconds, 3), "file_decode_same": same_as_file}
log(f"ELIC {ELIC_SIDE}px decode: cpu {cpu_seconds:.2f} s, {device} {device_seconds:.2f} s, "
    f"identical {identical}")
if not (identical and same_as_file):
    failures.append(f"ELIC decode on {device} is not the CPU's")

results["failures"] = failures
(out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
p, s, e = results["p0168"], results["synthetic"], results["elic"]
rows = [
    f"# GPU check on {device}{' (tiny)' if tiny else ''}",
    "",
    "| check | value |",
    "| --- | --- |",
    f"| P0168 {p['width']}x{p['height']} T=0, {device} vs cpu | max {p['t0_max_levels']} "
    f"levels, mean {p['t0_mean_levels']:.5f} |",
    f"| P0168 T=1, {device} vs cpu | max {p['t1_max_levels']} levels, mean "
    f"{p['t1_mean_levels']:.5f} |",
    f"| P0168 T=0 MPix/s | {device} {p[f'{device}_t0_mpix_s']}, cpu {p['cpu_t0_mpix_s']} |",
    f"| synthetic {s['side']}x{s['side']} T=0 MPix/s on {device} | {s['mpix_s']} |",
    f"| ELIC {e['side']} px decode, {device} vs cpu | identical: {e['identical']} "
    f"({e[f'{device}_seconds']} s vs {e['cpu_seconds']} s) |",
    "",
    "failures: " + ("; ".join(failures) or "none"),
]
(out / "summary.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
sys.exit(1 if failures else 0)
PYTHON
step "done: $OUT/summary.md"
