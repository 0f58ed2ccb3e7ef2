#!/usr/bin/env python3
"""Independent reference of the preprocessing rules (docs/preprocessing.md), used to
derive the expected counts asserted in tests/ingest_test.cc for the real
samples in ../shared/data. Plain Python, no dependencies:
    tests/tools/reference_preprocess.py ../shared/data/alibaba-v2022/raw-rows-sample.csv
"""
import csv, sys, collections

TYPES = {"http", "rpc", "mc", "db", "mq"}
MISSING = {"", "UNKNOWN", "UNAVAILABLE", "(?)", "?", "NAN", "nan", "NaN", "null", "NULL"}

def main(path, max_depth=15):
    rows = list(csv.DictReader(open(path, newline="")))
    drop = collections.Counter()
    traces_seen = []
    by_trace = collections.OrderedDict()
    for i, r in enumerate(rows):
        t = r["traceid"]
        if t not in by_trace:
            by_trace[t] = []
        if r["rpctype"].lower() not in TYPES: drop["bad_type"] += 1; continue
        if r["um"] in MISSING: drop["missing_caller"] += 1; continue
        if r["dm"] in MISSING: drop["missing_callee"] += 1; continue
        if r["rt"] in MISSING: drop["missing_rt"] += 1; continue
        by_trace[t].append(r)
    graphs = collections.Counter()
    kept = []
    seen = set()
    for t, rs in by_trace.items():
        if not rs: graphs["no_usable_rows"] += 1; continue
        one = {}
        for r in rs:
            if r["rpc_id"] in one: drop["duplicate_rpc_id"] += 1; continue
            one[r["rpc_id"]] = r
        t0 = min(int(r["timestamp"]) for r in one.values())
        e = {k: (r["um"], r["dm"], r["rpctype"].lower(), int(r["timestamp"]) - t0,
                 int(r["timestamp"]) - t0 + round(abs(float(r["rt"])))) for k, r in one.items()}
        reason = None
        if "0" not in e: reason = "missing_root"
        elif e["0"][0] != "USER": reason = "root_not_from_user"
        else:
            for k, v in e.items():
                if k == "0": continue
                p = k.rsplit(".", 1)[0] if "." in k else None
                if p is None or p not in e: reason = reason or "parent_missing"; continue
        if reason is None:
            for k, v in e.items():
                if k != "0" and e[k.rsplit(".", 1)[0]][1] != v[0]: reason = "caller_mismatch"
        if reason is None and max(len(k.split(".")) for k in e) > max_depth: reason = "too_deep"
        if reason is None:
            for k, v in e.items():
                if k != "0" and v[4] > e[k.rsplit(".", 1)[0]][4]: reason = "finish_after_parent"
        if reason is None:
            key = (one.get("0", rs[0])["service"], tuple(sorted(e.items())))
            if key in seen: reason = "duplicate_graph"
            seen.add(key)
        if reason: graphs[reason] += 1
        else: kept.append((t, len(e)))
    print("rows", len(rows), dict(drop))
    print("traces", len(by_trace), dict(graphs))
    print("kept", len(kept), "edges", sum(n for _, n in kept))

if __name__ == "__main__":
    main(sys.argv[1])
