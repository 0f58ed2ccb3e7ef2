#!/usr/bin/env bash
# The TVAE baseline against the probabilistic one on held-out real calls, in
# one run (issue: "the paper's fourth baseline"). TVAE makes calls, not
# graphs: it is compared on the metrics defined on calls (popular-call KL,
# heavy hitters, response-time EMD), as the paper compares it on popular
# calls only. Prints `tracelm evaluate`'s table, then the popular-call KLs and
# their ratio, next to the paper's figures (TVAE 0.74, probabilistic 3.84);
# then both KLs over 5 generation seeds (the KL of ~900 calls moves with the
# sample; one trained model each).
#   probabilistic-like: one graph per held-out graph (--like);
#   probabilistic-open: as many graphs from the training statistics;
#   tvae: as many calls as the held-out graphs have edges (--like);
#   training: the real training graphs themselves (the ceiling).
# Usage: bench/tvae.sh [TVAE_MINUTES=3] [DATA=../shared/data/alibaba-v2022/callgraphs-train.csv]
# Writes everything under ${OUT:-/tmp/tracelm-tvae}. Needs build/tracelm (with libtorch).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-3}
data=${2:-../shared/data/alibaba-v2022/callgraphs-train.csv}
out=${OUT:-/tmp/tracelm-tvae}
bin=build/tracelm
if [ ! -f "$data" ]; then
  echo "tvae: $data not found (the real data lives in ../shared/data)" >&2
  exit 2
fi
mkdir -p "$out"
echo "== ingest $data (20% held out by trace id, as bench/realism.sh)"
$bin ingest "$data" -o "$out/train.jsonl" --val-output "$out/val.jsonl" --val-fraction 0.2 2>&1 | tail -2
n_val=$(wc -l < "$out/val.jsonl")
n_calls=$(jq -s 'map(.num_edges) | add' "$out/val.jsonl")
seeds="1 2 3 4 5"
echo "== probabilistic baseline ($n_val graphs per protocol; --like with seeds $seeds)"
$bin baseline fit "$out/train.jsonl" -o "$out/prob.json" 2>&1 | tail -1
for s in $seeds; do
  $bin baseline generate "$out/prob.json" --like "$out/val.jsonl" --seed "$s" -q \
    -o "$out/probabilistic-like-$s.jsonl"
done
$bin baseline generate "$out/prob.json" -n "$n_val" -q -o "$out/probabilistic-open.jsonl"
echo "== TVAE: train (at most $minutes min, 300 epochs), generate $n_calls calls (seeds $seeds)"
$bin baseline tvae train "$out/train.jsonl" -o "$out/tvae" --minutes "$minutes" 2>&1 | tail -1
for s in $seeds; do
  $bin baseline tvae generate "$out/tvae" --like "$out/val.jsonl" --seed "$s" -q \
    -o "$out/tvae-calls-$s.csv"
done
echo "== evaluate against $n_val held-out real graphs ($n_calls calls); generation seed 1"
$bin evaluate --real "$out/val.jsonl" --train "$out/train.jsonl" \
  --synthetic probabilistic-like="$out/probabilistic-like-1.jsonl" \
  --synthetic probabilistic-open="$out/probabilistic-open.jsonl" \
  --synthetic training="$out/train.jsonl" \
  --calls tvae="$out/tvae-calls-1.csv" \
  --json "$out/metrics.json"
read -r kl_tvae kl_like kl_open kl_train < <(jq -r '
  [.synthetic[] | {key: .name, value: .popular_calls.kl}] | from_entries
  | [.tvae, .["probabilistic-like"], .["probabilistic-open"], .training] | @tsv' "$out/metrics.json")
printf 'popular-call KL (top 100 + other): tvae %.3f, probabilistic-like %.3f, probabilistic-open %.3f, training graphs (ceiling) %.3f\n' \
  "$kl_tvae" "$kl_like" "$kl_open" "$kl_train"
printf 'ratio tvae / probabilistic-like: %.3f (the paper: 0.74 / 3.84 = 0.193); tvae / ceiling: %.3f\n' \
  "$(awk -v a="$kl_tvae" -v b="$kl_like" 'BEGIN { print a / b }')" \
  "$(awk -v a="$kl_tvae" -v b="$kl_train" 'BEGIN { print a / b }')"
# The KL of ~900 calls moves with the sample: the same over every generation seed.
for s in $seeds; do
  $bin evaluate --real "$out/val.jsonl" -q --json "$out/metrics-$s.json" \
    --synthetic probabilistic-like="$out/probabilistic-like-$s.jsonl" \
    --calls tvae="$out/tvae-calls-$s.csv"
  jq -r '[.synthetic[] | {key: .name, value: .popular_calls.kl}] | from_entries
    | [.tvae, .["probabilistic-like"]] | @tsv' "$out/metrics-$s.json"
done | awk -v n="$(echo $seeds | wc -w)" '
  { t += $1; p += $2; if (NR == 1 || $1 < tmin) tmin = $1; if (NR == 1 || $1 > tmax) tmax = $1;
    if (NR == 1 || $2 < pmin) pmin = $2; if (NR == 1 || $2 > pmax) pmax = $2 }
  END { printf "over %d generation seeds: tvae KL mean %.3f (%.3f..%.3f), probabilistic-like mean %.3f (%.3f..%.3f), ratio of means %.3f\n",
        n, t / n, tmin, tmax, p / n, pmin, pmax, t / p }'
