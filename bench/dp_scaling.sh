#!/usr/bin/env bash
# Data-parallel scaling of `tracelm train` on this machine: tokens/s with 1
# and 2 processes (Gloo all-reduce of the gradients after every step), the
# same global batch and steps, one libtorch/OpenBLAS thread per process; and
# one process with 2 threads (the other way to use two cores). Prints the
# figures and the ratios measured in this run.
# Usage: bench/dp_scaling.sh [--preset tiny|small|base] [--steps N] [--lora]
#   (BIN: the tracelm binary, default build/tracelm; --lora: LoRA on a random
#   base of the preset's shape, the paper's setting, instead of full training)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-build/tracelm}
preset=small steps=30 lora=0
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=$2; shift ;;
    --steps) steps=$2; shift ;;
    --lora) lora=1 ;;
    *) echo "dp_scaling: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" sample -o "$tmp/s.csv" --traces 3000 >/dev/null 2>&1
"$bin" ingest "$tmp/s.csv" -o "$tmp/c.jsonl" -q >/dev/null 2>&1
"$bin" encode "$tmp/c.jsonl" --format recursive -o "$tmp/t.txt" >/dev/null 2>&1
"$bin" tokenizer train "$tmp/t.txt" -o "$tmp/tok.model" --vocab 2048 >/dev/null 2>&1
start=(--preset "$preset" --tokenizer "$tmp/tok.model")
if [ "$lora" = 1 ]; then
  # A random base of the preset's shape: a short from-scratch run writes one.
  "$bin" train --corpus "$tmp/c.jsonl" "${start[@]}" --max-steps 1 --batch 2 --micro-batch 2 \
    -q -o "$tmp/base" >/dev/null 2>&1
  start=(--base "$tmp/base")
fi
run() {  # run NAME THREADS NPROC
  local out="$tmp/$1"
  OMP_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 "$bin" train --corpus "$tmp/c.jsonl" "${start[@]}" \
    --max-steps "$steps" --batch 16 --micro-batch 4 --context 256 --eval-every 0 --save-every 0 \
    --log-every 1 -q --nproc "$3" -o "$out" >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  # tokens/s over the steps after the first (warm-up): from metrics.jsonl
  python3 - "$out/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
a, b = rows[0], rows[-1]
t_a, t_b = a["tokens"] / a["tokens_per_s"], b["tokens"] / b["tokens_per_s"]
print(f'{(b["tokens"] - a["tokens"]) / (t_b - t_a):.0f}')
PY
}
one=$(run one 1 1)
two=$(run two 1 2)
wide=$(run wide 2 1)
mode=$([ "$lora" = 1 ] && echo "LoRA (q,k r 8) on a random $preset base" || echo "full training, preset $preset")
echo "data-parallel scaling, $mode, $steps steps of 16 x 256 tokens, $(nproc) cores:"
echo "  1 process  x 1 thread : $one tokens/s"
echo "  2 processes x 1 thread: $two tokens/s  ($(python3 -c "print(f'{$two/$one:.2f}')")x the 1-process run)"
echo "  1 process  x 2 threads: $wide tokens/s  (2 processes are $(python3 -c "print(f'{$two/$wide:.2f}')")x this)"
