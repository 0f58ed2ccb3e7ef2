#!/usr/bin/env bash
# Realism against the sampling temperature (`generate --temperature`).
# For the split and model that bench/realism.sh left in OUT (train.jsonl,
# val.jsonl, model/), generates one graph per held-out graph (`--like`) and
# as many open requests at each temperature and seed, evaluates every set
# against the held-out graphs, and prints bench/seed_summary.py's table
# (mean ± sd over seeds), with realism.sh's probabilistic-baseline sets of
# the same seeds when they are there. The same seeds at every temperature:
# a row compares temperatures on the same requests.
# Usage: OUT=/tmp/tracelm-realism [TEMPS="0.8 0.6 0.45"] [SEEDS="1 2 3"] bench/temperature.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/tracelm-realism}
bin=build/tracelm
for f in train.jsonl val.jsonl model; do
  if [ ! -e "$out/$f" ]; then
    echo "temperature: $out/$f not found (run bench/realism.sh with OUT=$out first)" >&2
    exit 2
  fi
done
temps=(${TEMPS:-0.8 0.6 0.45})
seeds=(${SEEDS:-1 2 3})
n_val=$(wc -l < "$out/val.jsonl")
args=()
for t in "${temps[@]}"; do
  echo "== temperature $t (${#seeds[@]} seeds x 2 protocols x $n_val graphs)"
  for s in "${seeds[@]}"; do
    $bin generate --model "$out/model" --like "$out/val.jsonl" --seed "$s" --temperature "$t" -q \
      -o "$out/temp-like-t$t-s$s.jsonl" 2>&1 | tail -1
    $bin generate --model "$out/model" -n "$n_val" --seed "$s" --temperature "$t" -q \
      -o "$out/temp-open-t$t-s$s.jsonl" 2>&1 | tail -1
    args+=(--synthetic "like-t$t-s$s=$out/temp-like-t$t-s$s.jsonl")
    args+=(--synthetic "open-t$t-s$s=$out/temp-open-t$t-s$s.jsonl")
  done
done
for s in "${seeds[@]}"; do
  for p in like open; do
    f="$out/probabilistic-$p-s$s.jsonl"
    if [ -f "$f" ]; then args+=(--synthetic "probabilistic-$p-s$s=$f"); fi
  done
done
$bin evaluate --real "$out/val.jsonl" --train "$out/train.jsonl" "${args[@]}" \
  --json "$out/temperature.json" -q
python3 bench/seed_summary.py "$out/temperature.json"
