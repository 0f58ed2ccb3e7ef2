#!/usr/bin/env python3
"""downstream_swap.py LIKE GEN OUT_DIR: where does a synthetic training set
fall short, structure or latency? (docs/downstream.md, §5)

LIKE: the real graphs a generator was asked to imitate (`generate --like`);
GEN: its graphs, aligned with LIKE by trace id (bench/align_like.py). Writes
two training sets for `tracelm downstream anomaly --train NAME=FILE`:
  lat-real.jsonl     each generated graph with, for every call whose
                     (callee, type) also occurs in its real twin, the twin's
                     mean duration of that (callee, type): generated
                     structure, real latency where the structures agree;
  struct-real.jsonl  each real twin with, for every call whose (callee,
                     type) occurs in the generated graph, the generated mean
                     duration: real structure, generated latency.
A call keeps its start; its finish moves. Prints how many calls changed."""
import collections
import json
import os
import sys

like = {}
for line in open(sys.argv[1]):
    if line.strip():
        g = json.loads(line)
        like[g["trace_id"]] = g
gen = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]


def per_type(g):
    d = collections.defaultdict(list)
    for e in g["edges"]:
        d[(e["callee"], e["type"])].append(e["finish"] - e["start"])
    return {k: sum(v) / len(v) for k, v in d.items()}


def with_durations(g, dur):
    g = json.loads(json.dumps(g))
    n = 0
    for e in g["edges"]:
        k = (e["callee"], e["type"])
        if k in dur:
            e["finish"] = e["start"] + int(round(dur[k]))
            n += 1
    root = [e for e in g["edges"] if e["rpc_id"] == "0"][0]
    g["latency"] = root["finish"] - root["start"]
    return g, n


lat_real, struct_real = [], []
n1 = t1 = n2 = t2 = missing = 0
for g in gen:
    r = like.get(g.get("trace_id", ""))
    if r is None:
        missing += 1
        continue
    a, n = with_durations(g, per_type(r))
    lat_real.append(a)
    n1 += n
    t1 += len(g["edges"])
    b, n = with_durations(r, per_type(g))
    struct_real.append(b)
    n2 += n
    t2 += len(r["edges"])
if missing:
    print(f"{missing} generated graphs have no twin in {sys.argv[1]} (not aligned?): left out")
print(f"lat-real: {n1} of {t1} calls take the real twin's duration")
print(f"struct-real: {n2} of {t2} calls take the generated twin's duration")
os.makedirs(sys.argv[3], exist_ok=True)
for name, graphs in (("lat-real", lat_real), ("struct-real", struct_real)):
    with open(os.path.join(sys.argv[3], name + ".jsonl"), "w") as f:
        for g in graphs:
            f.write(json.dumps(g) + "\n")
