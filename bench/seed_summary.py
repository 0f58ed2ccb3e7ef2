#!/usr/bin/python3
"""Mean and standard deviation over seeds of `tracelm evaluate --json` metrics.

Sets named NAME-sN (N a seed) are grouped by NAME; sets without a seed suffix
(e.g. the training graphs) are one group of one. Prints one row per metric,
one column per group: "mean ± sd (n)", and which generator has the lower
(better) mean for each metric between tracelm and the probabilistic baseline
under each protocol.
Usage: bench/seed_summary.py metrics.json
"""
import json
import re
import statistics
import sys
from collections import OrderedDict


def metrics(s):
    out = OrderedDict()
    pc = s.get("popular_calls", {})
    if pc.get("defined"):
        out["popular calls KL"] = pc["kl"]
    for h in s.get("heavy_hitters", []):
        if h.get("accuracy") is not None:
            out["heavy hitters K=%d" % h["k"]] = 100.0 * h["accuracy"]
    for k, e in s.get("emd", {}).items():
        if e.get("defined"):
            out["EMD/mean " + k] = e["normalized"]
    return out


def main():
    m = json.load(open(sys.argv[1]))
    groups = OrderedDict()
    for s in m["synthetic"]:
        g = re.sub(r"-s\d+$", "", s["name"])
        groups.setdefault(g, []).append(metrics(s))
    names = list(groups)
    rows = OrderedDict()
    for g in names:
        for ms in groups[g]:
            for k in ms:
                rows.setdefault(k, None)
    width = 22
    print("%-26s" % "metric (mean ± sd over seeds)" + "".join("%*s" % (width, g) for g in names))
    for k in rows:
        line = "%-26s" % k
        for g in names:
            vals = [ms[k] for ms in groups[g] if k in ms]
            if not vals:
                cell = "n/a"
            elif len(vals) == 1:
                cell = "%.3f (1)" % vals[0]
            else:
                cell = "%.3f ± %.3f (%d)" % (statistics.mean(vals), statistics.stdev(vals), len(vals))
            line += "%*s" % (width, cell)
        print(line)
    # tracelm vs the probabilistic baseline, per protocol: the lower mean
    # wins, except heavy hitters (higher is better).
    for proto in ("like", "open"):
        a, b = "tracelm-" + proto, "probabilistic-" + proto
        if a not in groups or b not in groups:
            continue
        wins, losses = [], []
        for k in rows:
            va = [ms[k] for ms in groups[a] if k in ms]
            vb = [ms[k] for ms in groups[b] if k in ms]
            if not va or not vb:
                continue
            ma, mb = statistics.mean(va), statistics.mean(vb)
            better = ma > mb if k.startswith("heavy") else ma < mb
            (wins if better or ma == mb else losses).append(k)
        print("%s: tracelm at least as good as the probabilistic baseline on %d of %d metrics; "
              "loses on: %s" % (proto, len(wins), len(wins) + len(losses),
                                ", ".join(losses) if losses else "none"))


if __name__ == "__main__":
    main()
