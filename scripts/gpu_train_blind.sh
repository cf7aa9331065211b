#!/usr/bin/env bash
# Issue 30's GPU recipe in one command: blind training pairs, the paper-size enhancer trained
# on one GPU (configs/enhancer/gpu_blind_paper.yaml) and an acceptance table.
#
#   scripts/gpu_train_blind.sh OUT                   # on a GPU machine: about 8 minutes
#   STEPS=4 EVERY=64 ACC_EVERY=64 DEVICE=cpu TINY=1 scripts/gpu_train_blind.sh /tmp/gpu_dry
#                                    # CPU dry run: a 1-block network, 2 validation images
#
# OUT gets pairs/ (scripts/blind_pairs.py, every $EVERY-th UC-M train image per spec),
# run/ (checkpoints, best.safetensors, logs), acc-pairs/ and acceptance/ (the acceptance table
# of benchmarks/enhancer_acceptance.py at $ACC_SPECS on every $ACC_EVERY-th test image).
# Needs the shared data ($DATA, default ../shared/data).
set -euo pipefail
OUT=${1:?usage: scripts/gpu_train_blind.sh OUT}
DATA=${DATA:-../shared/data}
EVERY=${EVERY:-4}
STEPS=${STEPS:-3000}
DEVICE=${DEVICE:-cuda}
ACC_EVERY=${ACC_EVERY:-8}
ACC_SPECS=${ACC_SPECS:-jpeg:bpp=0.3 webp:bpp=0.3 avif:bpp=0.3 heif:bpp=0.3 jpeg2000:bpp=0.3}
PY=${PY:-.venv/bin/python}
tiny=()
acc_tiny=()
if [ -n "${TINY:-}" ]; then
    tiny=(--set model.blocks=1 --set model.growth=4 --set model.gaussian_growth=4
          --set val.max_images=2 --set data.crop_size=64 --set data.workers=1)
    acc_tiny=(--limit 2 --val-limit 4)
fi
WORKERS=$(getconf _NPROCESSORS_ONLN)  # nproc would follow OMP_NUM_THREADS
mkdir -p "$OUT"
step() { echo "[$(date +%T)] $*" >&2; }

step "training pairs ($WORKERS workers)"
"$PY" scripts/blind_pairs.py --data-root "$DATA" --out "$OUT/pairs" --every "$EVERY" \
    --workers "$WORKERS" || true   # unreachable rates (e.g. webp at 0.1 bpp) are skipped
step "training: $STEPS steps on $DEVICE"
M1=$((STEPS * 8 / 10 > 0 ? STEPS * 8 / 10 : 1))
M2=$((STEPS * 9 / 10 > M1 ? STEPS * 9 / 10 : M1 + 1))
"$PY" -m innrsic train enhancer --config configs/enhancer/gpu_blind_paper.yaml \
    --set data.root="$OUT/pairs" --set run_dir="$OUT/run" --set train.steps="$STEPS" \
    --set train.device="$DEVICE" --set "optim.milestones=[$M1,$M2]" \
    --set val.every="$STEPS" "${tiny[@]}"
step "acceptance pairs"
# shellcheck disable=SC2086
"$PY" scripts/blind_pairs.py --data-root "$DATA" --out "$OUT/acc-pairs" --acceptance \
    --every "$ACC_EVERY" --workers "$WORKERS" --specs $ACC_SPECS || true
args=()
for spec in $ACC_SPECS; do
    folder=$("$PY" -c "import sys; sys.path.insert(0, 'scripts'); import blind_pairs as b; print(b.folder_name('$spec'))")
    args+=(--pairs "$OUT/acc-pairs/$folder/ucmerced-test" --val-pairs "$OUT/acc-pairs/$folder/val42")
done
step "acceptance table"
"$PY" benchmarks/enhancer_acceptance.py --enhancer "gpu=$OUT/run/best.safetensors" \
    "${args[@]}" --temperatures 0 1 --seeds 0 1 --out "$OUT/acceptance" "${acc_tiny[@]}"
step "done: $OUT/run/best.safetensors, $OUT/acceptance/summary.csv"
