#!/usr/bin/env python3
"""twin_stats.py LIKE NAME=GEN...: how close are graphs generated `--like`
LIKE to the real graph each was made like (its twin: same trace id, as
bench/align_like.py sets it)? Per set: graphs whose (callee, type) set equals
the twin's; mean Jaccard similarity of those sets; graphs with a (callee,
type) that no graph of LIKE has; median |root latency - twin's|; and for the
six most frequent non-root (callee, type) of LIKE, the count and mean
duration in the set and in LIKE (docs/downstream.md, §5 and §6)."""
import collections
import json
import statistics
import sys

like = {}
for line in open(sys.argv[1]):
    if line.strip():
        g = json.loads(line)
        like[g["trace_id"]] = g


def types(g):
    return {(e["callee"], e["type"]) for e in g["edges"]}


def durations(graphs):
    d = collections.defaultdict(list)
    for g in graphs:
        for e in g["edges"]:
            if e["rpc_id"] != "0":
                d[(e["callee"], e["type"])].append(e["finish"] - e["start"])
    return d


real_types = set().union(*(types(g) for g in like.values()))
real_d = durations(like.values())
top = sorted(real_d, key=lambda k: -len(real_d[k]))[:6]
for spec in sys.argv[2:]:
    name, path = spec.split("=", 1)
    gen = [json.loads(l) for l in open(path) if l.strip()]
    gen = [g for g in gen if g.get("trace_id") in like]
    if not gen:
        print(f"{name}: no graph aligned with {sys.argv[1]}")
        continue
    same = sum(types(g) == types(like[g["trace_id"]]) for g in gen)
    jac = statistics.mean(
        len(types(g) & types(like[g["trace_id"]])) / len(types(g) | types(like[g["trace_id"]]))
        for g in gen)
    foreign = sum(bool(types(g) - real_types) for g in gen)
    root = statistics.median(abs(g["latency"] - like[g["trace_id"]]["latency"]) for g in gen)
    print(f"{name}: {len(gen)} graphs; (callee, type) set equal to the twin's: {same}; "
          f"mean Jaccard {jac:.2f}; with a (callee, type) absent from every graph of LIKE: "
          f"{foreign}; median |root latency - twin's| {root:.0f} ms")
    d = durations(gen)
    for k in top:
        g, r = d.get(k, []), real_d[k]
        gm = f"{statistics.mean(g):7.1f}" if g else "    n/a"
        print(f"   {k[0] + '/' + k[1]:<40} {name} n={len(g):5d} mean {gm} ms   "
              f"real n={len(r):5d} mean {statistics.mean(r):7.1f} ms")
