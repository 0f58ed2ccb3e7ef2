#!/usr/bin/env bash
# One GPU session's end-to-end check, in one command (a lent GPU machine is
# short of time, not of memory): build the CUDA programs, train a `small`
# model from scratch on the GPU, generate with it on the GPU, evaluate, then
# bench/gpu/run.sh (7B-shaped LoRA fine-tuning and generation, tracelm vs
# Hugging Face + PEFT). Every stage writes under $WORK (default /tmp/tracelm-gpu)
# and a failing stage does not stop the later ones that do not need it.
#
# Usage: bench/gpu/check.sh [DEBS]
#   DEBS      packages from `scripts/build-offline fetch DEBS` (a bare GPU
#             server without Debian's -dev packages); without it scripts/build.
# Environment: CORPUS, VAL (graph JSON lines; default: the 22-graph
#   tasks fixture), TRAIN_MINUTES (default 1.5), WORK, SKIP_BENCH=1; DEVICE=cpu
#   with NO_BUILD=1 runs the stages after the build with build/ (checks this script).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${WORK:-/tmp/tracelm-gpu}
mkdir -p "$out"
debs=${1:-}
corpus=${CORPUS:-tests/data/tasks/corpus.jsonl}
val=${VAL:-$corpus}
minutes=${TRAIN_MINUTES:-1.5}
dev=${DEVICE:-cuda}
B=build-cuda/tracelm
[ "$dev" = cuda ] || B=build/tracelm
stage() { echo "== $(date +%T) $*"; }

stage "machine"
nvidia-smi -L || true
g++ --version | head -1; cmake --version | head -1; nvcc --version | tail -1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI, torch.cuda.is_available() and torch.cuda.get_device_name(0))' || true

stage "build (tracelm, bench_gpu_lora) against the CUDA PyTorch"
export TRACELM_BUILD_DIR=build-cuda TRACELM_TARGETS="tracelm bench_gpu_lora"
t0=$SECONDS
if [ "${NO_BUILD:-0}" = 1 ]; then
  echo "(NO_BUILD: not built)" > "$out/build.log"
elif [ -n "$debs" ]; then
  scripts/build-offline build "$debs" --cuda -DTRACELM_TESTS=OFF > "$out/build.log" 2>&1
else
  scripts/build --cuda -DTRACELM_TESTS=OFF > "$out/build.log" 2>&1
fi
rc=$?
echo "build rc $rc in $((SECONDS - t0)) s"; tail -25 "$out/build.log"
[ "$rc" = 0 ] || exit 1

stage "train the small preset on $dev for $minutes min ($corpus)"
rm -rf "$out/model"
$B train --corpus "$corpus" --val "$val" --preset small --time-budget "$minutes" --epochs 1000 \
  --batch 16 --micro-batch 8 --lr 1e-3 --warmup 50 --device "$dev" -q -o "$out/model" 2>&1 | tail -5
if [ -f "$out/model/metrics.jsonl" ]; then
  python3 - "$out/model/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tr = [r for r in rows if "tokens_per_s" in r]
va = [r for r in rows if "val_loss" in r]
print(f"steps {rows[-1]['step']}, last train loss {tr[-1]['loss']:.3f}, "
      f"tokens/s {sum(r['tokens_per_s'] for r in tr[-5:]) / len(tr[-5:]):.0f} (last 5 logs), "
      f"val loss first {va[0]['val_loss']:.3f} last {va[-1]['val_loss']:.3f} min {min(r['val_loss'] for r in va):.3f}")
PY
  rm -rf "$out/model/checkpoint"
  tar -C "$out" -czf "$out/model-small-cuda.tgz" model
fi

stage "generate on $dev (torch engine) and on the CPU engine, same model"
for d in "$dev" cpu; do
  /usr/bin/time -f "$d: %e s wall, %U s user" $B generate --model "$out/model" --device "$d" \
    -n 200 --seed 1 -q -o "$out/gen-$d.jsonl" 2>&1 | tail -3
done
$B evaluate --real "$val" --synthetic "$dev=$out/gen-$dev.jsonl" --synthetic cpu-engine="$out/gen-cpu.jsonl" \
  2>&1 | head -20

if [ "${SKIP_BENCH:-0}" != 1 ]; then
  stage "bench/gpu/run.sh: 7B-shaped LoRA, tracelm vs HF + PEFT"
  timeout 300 bench/gpu/run.sh 2>&1
fi
stage "done"
