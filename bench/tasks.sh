#!/usr/bin/env bash
# Downstream tasks on real Alibaba traces (docs/tasks.md; paper §4.5, D.4).
#
# One split by graph for all four tasks (--train-fraction, default 0.5; the
# same seed and fractions give the same graphs every time): tracelm is
# pre-trained (small preset, time budget) on the train-side graphs only, so
# no test graph is ever seen in training. Then
#   infill-attribute, infill-call: tracelm fine-tuned on the train records,
#     the same architecture fine-tuned from random weights (no trace
#     pre-training), and the frequency baseline, on the test records;
#   predict-latency, predict-uncommon: a classifier head on the frozen
#     tracelm model trained on real task data, and one trained on task data
#     made from tracelm-generated graphs (requested like the real train
#     graphs, labelled with the real rules), both tested on the real test
#     records, with the per-service majority baseline.
# Prints one table per task (from `tracelm tasks eval`) and a summary beside
# the paper's figures; the JSON results stay in $OUT.
#
# Usage: bench/tasks.sh [CALLGRAPH_CSV]    (default: ../shared/data/alibaba-v2022/callgraphs-train.csv)
# Environment: OUT (bench-tasks), TRACELM (build/tracelm), SEED (1),
#   PRETRAIN_MIN (10: pre-training budget in minutes, shared by the four tasks),
#   FT_MIN (3: fine-tuning budget per model, minutes), FT_EPOCHS (3), FT_LR (1e-3),
#   HEAD_EPOCHS (1), HEAD_LR (1e-4), TRAIN_FRACTION (0.5), TASKS (all four).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/alibaba-v2022/callgraphs-train.csv}
OUT=${OUT:-bench-tasks}
BIN=${TRACELM:-build/tracelm}
SEED=${SEED:-1}
PRETRAIN_MIN=${PRETRAIN_MIN:-10}
FT_MIN=${FT_MIN:-3}
FT_EPOCHS=${FT_EPOCHS:-3}
FT_LR=${FT_LR:-1e-3}
HEAD_EPOCHS=${HEAD_EPOCHS:-1}
HEAD_LR=${HEAD_LR:-1e-4}
TRAIN_FRACTION=${TRAIN_FRACTION:-0.5}
TASKS=${TASKS:-"infill-attribute infill-call predict-latency predict-uncommon"}
if [ ! -f "$DATA" ]; then
  echo "bench/tasks.sh: $DATA not found (give an Alibaba CallGraph CSV)" >&2
  exit 2
fi
mkdir -p "$OUT"
t_start=$(date +%s)
stamp() { echo "[$(($(date +%s) - t_start)) s] $*" >&2; }

stamp "ingest $DATA"
"$BIN" ingest "$DATA" -o "$OUT/corpus.jsonl" 2> "$OUT/ingest.log"

for task in $TASKS; do
  "$BIN" tasks make "$task" "$OUT/corpus.jsonl" -o "$OUT/$task.jsonl" --seed "$SEED" \
    --train-fraction "$TRAIN_FRACTION" --val-fraction 0 --max-train 0 --max-test 0 \
    --train-graphs "$OUT/$task.train-graphs.jsonl" 2> "$OUT/$task.make.log"
  cat "$OUT/$task.make.log" >&2
done
first=$(echo $TASKS | cut -d' ' -f1)
for task in $TASKS; do  # one split for all tasks: the same train graphs
  cmp -s "$OUT/$first.train-graphs.jsonl" "$OUT/$task.train-graphs.jsonl" ||
    { echo "bench/tasks.sh: $task has other train graphs than $first" >&2; exit 1; }
done
cp "$OUT/$first.train-graphs.jsonl" "$OUT/train-graphs.jsonl"

if [ ! -f "$OUT/run/model.safetensors" ]; then
  # The demo's settings (context 256, batch 16, lr 2e-3), the small preset, longer.
  stamp "pre-train tracelm (small preset, $PRETRAIN_MIN min) on the train-side graphs"
  "$BIN" train --corpus "$OUT/train-graphs.jsonl" --preset small --time-budget "$PRETRAIN_MIN" \
    --context 256 --batch 16 --micro-batch 8 --lr 2e-3 --warmup 20 --epochs 1000 \
    --eval-every 100000 --save-every 100000 --seed "$SEED" -o "$OUT/run" \
    2> "$OUT/pretrain.log" || { tail "$OUT/pretrain.log"; exit 1; }
  tail -2 "$OUT/pretrain.log" >&2
fi

for task in $TASKS; do
  t0=$(date +%s)
  case "$task" in
    infill-*)
      stamp "$task: fine-tune tracelm and the un-pretrained architecture"
      "$BIN" tasks finetune "$OUT/$task.jsonl" --model "$OUT/run" -o "$OUT/$task.ft" --full \
        --lr "$FT_LR" --epochs "$FT_EPOCHS" --time-budget "$FT_MIN" --seed "$SEED" \
        2> "$OUT/$task.ft.log" || { tail "$OUT/$task.ft.log"; exit 1; }
      tail -1 "$OUT/$task.ft.log" >&2
      "$BIN" tasks finetune "$OUT/$task.jsonl" --model "$OUT/run" -o "$OUT/$task.ft0" --full \
        --from-scratch --lr "$FT_LR" --epochs "$FT_EPOCHS" --time-budget "$FT_MIN" --seed "$SEED" \
        2> "$OUT/$task.ft0.log" || { tail "$OUT/$task.ft0.log"; exit 1; }
      tail -1 "$OUT/$task.ft0.log" >&2
      stamp "$task: eval"
      "$BIN" tasks eval "$OUT/$task.jsonl" --model "tracelm=$OUT/$task.ft" \
        --model "un-pretrained=$OUT/$task.ft0" --prior-corpus "$OUT/train-graphs.jsonl" \
        --json "$OUT/$task.json" --answers-dir "$OUT/$task.answers" 2> "$OUT/$task.eval.log"
      ;;
    predict-*)
      # The synthetic graphs depend only on the model, the train graphs and the
      # rules (the two prediction tasks fit the same rules): made once.
      if cmp -s "$OUT/$task.rules.json" "$OUT/synthetic-graphs.rules.json" &&
        [ "$OUT/synthetic-graphs.jsonl" -nt "$OUT/run/model.safetensors" ]; then
        stamp "$task: synthetic training graphs: reusing $OUT/synthetic-graphs.jsonl (same rules)"
      else
        stamp "$task: synthetic training graphs like the real train graphs"
        "$BIN" tasks synthesize --model "$OUT/run" --like "$OUT/train-graphs.jsonl" \
          --rules "$OUT/$task.rules.json" -o "$OUT/synthetic-graphs.jsonl" --seed "$SEED" \
          2> "$OUT/$task.synthesize.log" || { tail "$OUT/$task.synthesize.log"; exit 1; }
        tail -1 "$OUT/$task.synthesize.log" >&2
        cp "$OUT/$task.rules.json" "$OUT/synthetic-graphs.rules.json"
      fi
      cp "$OUT/synthetic-graphs.jsonl" "$OUT/$task.synthetic-graphs.jsonl"
      "$BIN" tasks make "$task" "$OUT/$task.synthetic-graphs.jsonl" \
        -o "$OUT/$task.synthetic.jsonl" --rules-from "$OUT/$task.rules.json" --seed "$SEED" \
        2> "$OUT/$task.synthetic.make.log"
      cat "$OUT/$task.synthetic.make.log" >&2
      stamp "$task: classifier heads (real-trained, synthetic-trained)"
      for src in real synthetic; do
        f="$OUT/$task.jsonl"
        [ "$src" = synthetic ] && f="$OUT/$task.synthetic.jsonl"
        "$BIN" tasks finetune "$f" --model "$OUT/run" -o "$OUT/$task.head-$src" \
          --lr "$HEAD_LR" --epochs "$HEAD_EPOCHS" --seed "$SEED" 2> "$OUT/$task.head-$src.log" ||
          { tail "$OUT/$task.head-$src.log"; exit 1; }
        tail -1 "$OUT/$task.head-$src.log" >&2
      done
      "$BIN" tasks eval "$OUT/$task.jsonl" --model "real-trained=$OUT/$task.head-real" \
        --model "synthetic-trained=$OUT/$task.head-synthetic" --json "$OUT/$task.json" \
        --answers-dir "$OUT/$task.answers" 2> "$OUT/$task.eval.log"
      ;;
  esac
  echo "($task: $(($(date +%s) - t0)) s after pre-training)"
done

jsons=()
for task in $TASKS; do jsons+=("$OUT/$task.json"); done
"$BIN" tasks report "${jsons[@]}" -o "$OUT/tasks.html" 2>/dev/null

echo
echo "Summary (accuracy on the real test records; paper figures: Llama-2 7B backbone):"
python3 - "$OUT" $TASKS <<'EOF'
import json, sys
out, tasks = sys.argv[1], sys.argv[2:]
paper = {
    "infill-attribute": {"tracelm": "> 70%", "un-pretrained": "30-40 points lower",
                         "frequency baseline": "-"},
    "infill-call": {"tracelm": "66%", "un-pretrained": "24% (Llama-2 7B), 34% (Llama-3.1 405B)",
                    "frequency baseline": "-"},
    "predict-latency": {"real-trained": "68.3%", "synthetic-trained": "67.1%",
                        "frequency baseline": "-"},
    "predict-uncommon": {"real-trained": "65.3%", "synthetic-trained": "62.5%",
                         "frequency baseline": "-"},
}
print(f"{'task':<18} {'model':<20} {'n':>5} {'accuracy':>9} {'other':>22}   paper")
for t in tasks:
    r = json.load(open(f"{out}/{t}.json"))
    for x in r["results"]:
        other = ""
        if t == "infill-attribute" and "per_attribute" in x:
            pa = x["per_attribute"]
            other = " ".join(f"{a[:4]} {100*pa[a]['accuracy']:.1f}%" for a in sorted(pa))
        elif t == "infill-call":
            other = f"strict {100*x['strict_accuracy']:.1f}%"
        elif "balanced_accuracy" in x:
            other = f"balanced {100*x['balanced_accuracy']:.1f}%"
        print(f"{t:<18} {x['name']:<20} {x['n']:>5} {100*x['accuracy']:>8.1f}% {other:>22}   "
              f"{paper.get(t, {}).get(x['name'], '-')}")
    res = {x["name"]: x["accuracy"] for x in r["results"]}
    if "tracelm" in res and "un-pretrained" in res:
        print(f"{'':<18} tracelm - un-pretrained: {100*(res['tracelm']-res['un-pretrained']):+.1f} points")
    if "real-trained" in res and "synthetic-trained" in res:
        print(f"{'':<18} real - synthetic: {100*(res['real-trained']-res['synthetic-trained']):+.1f} points"
              f" (paper: {'1.2' if t == 'predict-latency' else '2.8'})")
EOF
echo "total: $(($(date +%s) - t_start)) s"
