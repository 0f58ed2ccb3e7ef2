#!/usr/bin/env python3
"""align_like.py LIKE OUT: gives each graph of OUT (generated `--like` LIKE)
the trace id of the instruction (graph of LIKE) it was made from, so that
`tracelm downstream` trains each seed only on graphs made like its own real
training pool ("aligned", docs/downstream.md).

One graph per instruction: by order. Fewer (a generator that drops failed
graphs, keeping the order): each graph goes to the next instruction with its
service, edges and depth. Else OUT is left unaligned (`tracelm downstream`
then samples training sets) and this says so. Rewrites OUT in place."""
import json
import sys

like = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
key = lambda g: (g["service"], g["num_edges"], g["depth"])
ids = []
if len(like) == len(out):
    ids = [a.get("trace_id", "") for a in like]
else:
    i = 0
    for g in out:
        while i < len(like) and key(like[i]) != key(g):
            i += 1
        if i == len(like):
            ids = None
            break
        ids.append(like[i].get("trace_id", ""))
        i += 1
if ids is None:
    print(f"   {len(out)} graphs for {len(like)} instructions, not in instruction order: not aligned")
    sys.exit(0)
for g, t in zip(out, ids):
    g["trace_id"] = t
with open(sys.argv[2], "w") as f:
    for g in out:
        f.write(json.dumps(g) + "\n")
print(f"   aligned {len(out)} graphs with their instructions ({len(like)} instructions)")
