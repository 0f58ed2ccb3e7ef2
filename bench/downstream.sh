#!/usr/bin/env bash
# Synthetic call graphs as training data (docs/downstream.md), on the real
# Alibaba train split: FIRM-style critical-component SVMs and a TraceVAE-style
# anomaly detector trained on real graphs, on tracelm's graphs and on the
# probabilistic baseline's graphs, all tested on the same real graphs.
# Prints both tables (mean ± sd over seeds, gap to real-trained, pass).
#
# Usage: bench/downstream.sh [OUT_DIR]        (default bench-out/downstream)
# Environment: TRACELM (binary, default build/tracelm), DATA (real CallGraph
# CSV or corpus), TRAIN_MINUTES (tracelm's training budget, default 8),
# PRESET (tiny, as the demo; small is slower), SEEDS (5), MODEL (an already
# trained run directory: skips training).
# Budget: 8 min training + ~6 min generation + ~2 min of downstream models
# on 2 busy cores (983 s measured; the script prints its own wall time).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${TRACELM:-build/tracelm}
DATA=${DATA:-../shared/data/alibaba-v2022/callgraphs-train.csv}
OUT=${1:-bench-out/downstream}
TRAIN_MINUTES=${TRAIN_MINUTES:-8}
PRESET=${PRESET:-tiny}
SEEDS=${SEEDS:-5}
if [ ! -f "$DATA" ]; then
  echo "downstream bench: real data $DATA not found (set DATA=...)" >&2
  exit 1
fi
mkdir -p "$OUT"
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 )) s"; }

echo "== real corpus: $DATA"
"$T" ingest "$DATA" -o "$OUT/real.jsonl" 2> "$OUT/ingest.log" || { cat "$OUT/ingest.log"; exit 1; }
n_real=$(wc -l < "$OUT/real.jsonl")
echo "   $n_real graphs"

# The instructions: one per real graph of the apps, chosen as `tracelm
# downstream` chooses them (services ranked by graphs with >= 2 calls; an app
# with < 70 such graphs pools the next services). Synthetic graphs made from
# them carry the real graph's trace id, so that each seed trains only on
# graphs made like its own real training pool ("aligned").
python3 - "$OUT/real.jsonl" "$OUT/like.jsonl" <<'PY'
import collections, json, sys
graphs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
graphs = [g for g in graphs if g["num_edges"] >= 2]
count = collections.Counter(g["service"] for g in graphs)
ranked = sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))
apps, i = [], 0
while len(apps) < 2 and i < len(ranked):
    app, n = [], 0
    while i < len(ranked) and (n < 70 or not app):
        app.append(ranked[i][0]); n += ranked[i][1]; i += 1
    apps.append(app)
members = {s for app in apps for s in app}
with open(sys.argv[2], "w") as f:
    for g in graphs:
        if g["service"] in members:
            f.write(json.dumps(g) + "\n")
for app in apps:
    print("   app:", "+".join(app), sum(count[s] for s in app), "graphs")
PY
n_like=$(wc -l < "$OUT/like.jsonl")

# align OUT: gives each graph of OUT the trace id of the instruction (graph
# of like.jsonl) it was made from (bench/align_like.py).
align() { python3 bench/align_like.py "$OUT/like.jsonl" "$1"; }

echo "== probabilistic baseline: fit on the real corpus, one graph per instruction"
"$T" baseline fit "$OUT/real.jsonl" -o "$OUT/prob.json" -q
"$T" baseline generate "$OUT/prob.json" --like "$OUT/like.jsonl" -o "$OUT/probabilistic.jsonl" --seed 1 -q
align "$OUT/probabilistic.jsonl"

if [ -n "${MODEL:-}" ]; then
  RUN=$MODEL
  echo "== tracelm: using the trained model $RUN"
else
  RUN=$OUT/run
  echo "== tracelm: train ($PRESET preset, $TRAIN_MINUTES min, as the demo trains)"
  "$T" train --corpus "$OUT/real.jsonl" --preset "$PRESET" --time-budget "$TRAIN_MINUTES" \
    --context 256 --batch 16 --micro-batch 8 --lr 2e-3 --warmup 20 --epochs 1000 \
    --eval-every 100000 --save-every 100000 -o "$RUN" -q
fi
echo "   $(elapsed)"
if "$T" generate --help 2>&1 | grep -q -- '--like'; then
  echo "== tracelm: generate --like (one graph per instruction: service, edges, depth, latency)"
  "$T" generate --model "$RUN" --like "$OUT/like.jsonl" --seed 1 -o "$OUT/tracelm.jsonl"
  align "$OUT/tracelm.jsonl"
else
  echo "== tracelm: this tracelm has no 'generate --like': one 'generate -n K' per distinct" \
       "instruction (service, edges, depth, latency) of K real graphs"
  python3 -c '
import collections, json, sys
c = collections.Counter()
for l in open(sys.argv[1]):
    if l.strip():
        g = json.loads(l)
        c[(g["service"], g["num_edges"], g["depth"], g["latency"])] += 1
for k, n in sorted(c.items()): print(*k, n)' "$OUT/like.jsonl" > "$OUT/instructions.txt"
  rm -rf "$OUT/gen" && mkdir -p "$OUT/gen"
  k=0
  while read -r svc edges depth latency n; do
    k=$((k + 1))
    "$T" generate --model "$RUN" --service "$svc" --edges "$edges" --depth "$depth" \
      --latency "$latency" -n "$n" --seed "$k" -o "$OUT/gen/$k.jsonl" 2>> "$OUT/generate.log" || true
  done < "$OUT/instructions.txt"
  # Give each generated graph the trace id of a real graph with its instruction.
  python3 - "$OUT/like.jsonl" "$OUT/instructions.txt" "$OUT/gen" "$OUT/tracelm.jsonl" <<'PY'
import collections, json, os, sys
ids = collections.defaultdict(list)
for l in open(sys.argv[1]):
    if l.strip():
        g = json.loads(l)
        ids[(g["service"], g["num_edges"], g["depth"], g["latency"])].append(g["trace_id"])
made = asked = 0
with open(sys.argv[4], "w") as out:
    for k, line in enumerate(open(sys.argv[2]), 1):
        svc, e, d, lat, n = line.split()
        key = (svc, int(e), int(d), int(lat))
        asked += int(n)
        path = os.path.join(sys.argv[3], f"{k}.jsonl")
        if not os.path.exists(path):
            continue
        for g, tid in zip((json.loads(l) for l in open(path) if l.strip()), ids[key]):
            g["trace_id"] = tid
            out.write(json.dumps(g) + "\n")
            made += 1
print(f"   {made} of {asked} instructions gave a graph (failed ones dropped); aligned by instruction")
PY
fi
echo "   $(wc -l < "$OUT/tracelm.jsonl") tracelm graphs; $(elapsed)"

for task in critical anomaly; do
  echo "== downstream $task"
  "$T" downstream "$task" --real "$OUT/real.jsonl" --train "tracelm=$OUT/tracelm.jsonl" \
    --train "probabilistic=$OUT/probabilistic.jsonl" --seeds "$SEEDS" --json "$OUT/$task.json" \
    --report "$OUT/$task.html" 2> "$OUT/$task.log" | tee "$OUT/$task.txt"
  echo "   $(elapsed)"
done
echo "== downstream critical, RBF SVM on standardized features (secondary)"
"$T" downstream critical --svm rbf --standardize --real "$OUT/real.jsonl" \
  --train "tracelm=$OUT/tracelm.jsonl" --train "probabilistic=$OUT/probabilistic.jsonl" \
  --seeds "$SEEDS" --json "$OUT/critical-rbf.json" 2> "$OUT/critical-rbf.log" | tee "$OUT/critical-rbf.txt"
"$T" evaluate --real "$OUT/like.jsonl" --synthetic "tracelm=$OUT/tracelm.jsonl" \
  --synthetic "probabilistic=$OUT/probabilistic.jsonl" --report "$OUT/report.html" \
  --downstream "$OUT/critical.json" --downstream "$OUT/critical-rbf.json" \
  --downstream "$OUT/anomaly.json" -q
echo "report: $OUT/report.html (realism + downstream); total $(elapsed)"
