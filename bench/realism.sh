#!/usr/bin/env bash
# Realism on held-out real traces, both protocols, with the baselines and the
# ceiling (issue: "more realistic than the baselines"). Prints `tracelm
# evaluate`'s table for:
#   tracelm-like / probabilistic-like: one request per held-out graph (its
#     service, edges, depth, latency: the paper's protocol, --like);
#   tracelm-open / probabilistic-open: as many open requests, drawn from the
#     training statistics;
#   training: the real training graphs themselves (the ceiling);
#   training-sample: as many real training graphs as held-out ones, drawn
#     per seed (the ceiling at the synthetic sets' size: popular-call KL
#     and heavy hitters depend on how many edges a set has);
#   *-like-xR (R = LIKE_REPEAT, default 4; 0: none): R graphs per held-out
#     request, so a set has about as many edges as the training graphs, and
#     *-open-xR, R times as many open requests, both with training-sample-xR
#     (R times as many real training graphs);
#   tvae: TVAE's calls (not graphs; trained for ${TVAE_MINUTES:-3} min), as
#     many as the held-out graphs have edges: popular calls, heavy hitters and
#     response time only (bench/tvae.sh runs it alone).
# Usage: bench/realism.sh [TRAIN_MINUTES=10] [PRESET=small] [DATA=../shared/data/alibaba-v2022/callgraphs-train.csv]
# Writes everything under ${OUT:-/tmp/tracelm-realism}. Needs build/tracelm.
# MODEL=DIR evaluates a model trained earlier on the same split instead of
# training one. GEN_ARGS: extra arguments to every `tracelm generate` (e.g.
# "--any-layers" for an A/B). SEEDS (default "1 2 3 4 5"): generation seeds; the table is
# the first seed's, then bench/seed_summary.py prints every metric's mean and
# sd over the seeds and where tracelm loses to the probabilistic baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
preset=${2:-small}
data=${3:-../shared/data/alibaba-v2022/callgraphs-train.csv}
out=${OUT:-/tmp/tracelm-realism}
bin=build/tracelm
if [ ! -f "$data" ]; then
  echo "realism: $data not found (the real data lives in ../shared/data)" >&2
  exit 2
fi
mkdir -p "$out"
if [ -n "${MODEL:-}" ] && [ $# -lt 3 ]; then
  echo "realism: MODEL=$MODEL is evaluated on the default split of $data;" \
    "pass its corpus as the third argument if it was trained on another" >&2
fi
echo "== ingest $data (20% held out by trace id)"
$bin ingest "$data" -o "$out/train.jsonl" --val-output "$out/val.jsonl" --val-fraction 0.2 2>&1 | tail -2
n_val=$(wc -l < "$out/val.jsonl")
if [ -n "${MODEL:-}" ]; then
  # A model trained earlier on this split (e.g. by this script): no training.
  # Its stats.json is computed again from this split's training graphs, so that a model
  # trained by an older tracelm gets today's keys (e.g. the subtree caps' depth and width).
  echo "== model $MODEL (MODEL set: not trained here; stats.json refreshed)"
  model=$(realpath "$MODEL")
  if [ "$model" != "$(realpath -m "$out/model")" ]; then
    rm -rf "$out/model" && mkdir -p "$out/model"
    for f in "$model"/*; do ln -s "$f" "$out/model/"; done
    rm -f "$out/model/stats.json"
  fi
  $bin stats "$out/train.jsonl" --trained-stats "$out/model/stats.json" > /dev/null
else
  echo "== train the $preset preset for $minutes min"
  # Epochs high enough that the time budget ends the run (the schedule is fitted
  # to the budget); batch 16 and lr 1e-3 suit a corpus of ~1,000 graphs.
  $bin train --corpus "$out/train.jsonl" --val "$out/val.jsonl" --preset "$preset" \
    --time-budget "$minutes" --epochs 1000 --batch 16 --micro-batch 8 --lr 1e-3 --warmup 50 \
    -q -o "$out/model" 2>&1 | tail -1
fi
seeds=(${SEEDS:-1 2 3 4 5})
gen_args=(${GEN_ARGS:-})
repeat=${LIKE_REPEAT:-4}
if [ "$repeat" -gt 0 ]; then
  for ((i = 0; i < repeat; i++)); do cat "$out/val.jsonl"; done > "$out/val-x$repeat.jsonl"
fi
# Real training graphs drawn per seed (GNU shuf with a seeded byte stream).
sample_train() {  # sample_train N SEED OUT
  shuf -n "$1" --random-source=<(yes "$2") "$out/train.jsonl" > "$3"
}
echo "== generate ($n_val requests per protocol, seeds ${seeds[*]})"
t0=$(date +%s.%N)
for s in "${seeds[@]}"; do
  $bin generate --model "$out/model" --like "$out/val.jsonl" --seed "$s" -q "${gen_args[@]}" \
    -o "$out/tracelm-like-s$s.jsonl" 2>&1 | tail -3
  $bin generate --model "$out/model" -n "$n_val" --seed "$s" -q "${gen_args[@]}" \
    -o "$out/tracelm-open-s$s.jsonl" 2>&1 | tail -3
  if [ "$repeat" -gt 0 ]; then
    $bin generate --model "$out/model" --like "$out/val-x$repeat.jsonl" --seed "$s" -q "${gen_args[@]}" \
      -o "$out/tracelm-like-x$repeat-s$s.jsonl" 2>&1 | tail -3
    $bin generate --model "$out/model" -n "$((repeat * n_val))" --seed "$s" -q "${gen_args[@]}" \
      -o "$out/tracelm-open-x$repeat-s$s.jsonl" 2>&1 | tail -3
  fi
done
t1=$(date +%s.%N)
$bin baseline fit "$out/train.jsonl" -o "$out/prob.json" 2>&1 | tail -1
for s in "${seeds[@]}"; do
  $bin baseline generate "$out/prob.json" --like "$out/val.jsonl" --seed "$s" -q \
    -o "$out/probabilistic-like-s$s.jsonl"
  $bin baseline generate "$out/prob.json" -n "$n_val" --seed "$s" -q \
    -o "$out/probabilistic-open-s$s.jsonl"
  sample_train "$n_val" "$s" "$out/training-sample-s$s.jsonl"
  if [ "$repeat" -gt 0 ]; then
    $bin baseline generate "$out/prob.json" --like "$out/val-x$repeat.jsonl" --seed "$s" -q \
      -o "$out/probabilistic-like-x$repeat-s$s.jsonl"
    $bin baseline generate "$out/prob.json" -n "$((repeat * n_val))" --seed "$s" -q \
      -o "$out/probabilistic-open-x$repeat-s$s.jsonl"
    sample_train "$((repeat * n_val))" "$s" "$out/training-sample-x$repeat-s$s.jsonl"
  fi
done
s0=${seeds[0]}
for set in tracelm-like tracelm-open probabilistic-like probabilistic-open; do
  cp "$out/$set-s$s0.jsonl" "$out/$set.jsonl"
  cp "$out/$set-s$s0.jsonl.provenance.json" "$out/$set.jsonl.provenance.json"
done
$bin baseline tvae train "$out/train.jsonl" -o "$out/tvae" --minutes "${TVAE_MINUTES:-3}" -q
$bin baseline tvae generate "$out/tvae" --like "$out/val.jsonl" -q -o "$out/tvae-calls.csv"
echo "tracelm generation: $(echo "$t1 - $t0" | bc) s for $(((2 + 2 * repeat) * n_val * ${#seeds[@]})) graphs"
echo "== evaluate against $n_val held-out real graphs (seed $s0)"
$bin evaluate --real "$out/val.jsonl" --train "$out/train.jsonl" \
  --synthetic tracelm-like="$out/tracelm-like.jsonl" \
  --synthetic probabilistic-like="$out/probabilistic-like.jsonl" \
  --synthetic tracelm-open="$out/tracelm-open.jsonl" \
  --synthetic probabilistic-open="$out/probabilistic-open.jsonl" \
  --synthetic training="$out/train.jsonl" \
  --synthetic training-sample="$out/training-sample-s$s0.jsonl" \
  --calls tvae="$out/tvae-calls.csv" \
  --json "$out/metrics.json" --report "$out/report.html"
echo "== over seeds ${seeds[*]}: mean ± sd (popular-call KL moves with single graphs: docs/generation.md)"
args=()
sets=(tracelm-like probabilistic-like tracelm-open probabilistic-open training-sample)
[ "$repeat" -gt 0 ] &&
  sets+=(tracelm-like-x$repeat probabilistic-like-x$repeat tracelm-open-x$repeat
    probabilistic-open-x$repeat training-sample-x$repeat)
for set in "${sets[@]}"; do
  for s in "${seeds[@]}"; do args+=(--synthetic "$set-s$s=$out/$set-s$s.jsonl"); done
done
$bin evaluate --real "$out/val.jsonl" --train "$out/train.jsonl" "${args[@]}" \
  --synthetic training="$out/train.jsonl" --json "$out/metrics-seeds.json" > /dev/null
bench/seed_summary.py "$out/metrics-seeds.json"
