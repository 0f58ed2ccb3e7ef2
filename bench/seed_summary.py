#!/usr/bin/python3
"""Mean and standard deviation over seeds of `tracelm evaluate --json` metrics.

Sets named NAME-sN (N a seed) are grouped by NAME; sets without a seed suffix
(e.g. the training graphs) are one group of one. Prints one row per metric,
one column per group: "mean ± sd (n)", and, under each protocol, the metrics
where tracelm's mean is worse than the probabilistic baseline's and worse
than real training graphs of the same count (group training-sample, if
present: bench/realism.sh draws as many training graphs as held-out ones,
per seed), how far (in standard errors of the difference over the seeds),
whether the baseline also beats those real graphs there (a
metric where it does measures how the held-out graphs differ from the
training graphs), and tracelm's popular-call KL and heavy hitters against the
ceilings (all training graphs; training-sample).
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
    fl = s.get("caller_flows", {})
    if fl.get("defined"):
        out["caller flows JS"] = fl["js"]
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
    def mean(g, k):
        v = [ms[k] for ms in groups.get(g, []) if k in ms]
        return statistics.mean(v) if v else None

    def gap(k, a, b):  # "0.020 (1.3 se)": |mean a - mean b| and that in standard errors
        va = [ms[k] for ms in groups[a] if k in ms]
        vb = [ms[k] for ms in groups[b] if k in ms]
        d = abs(statistics.mean(va) - statistics.mean(vb))
        if len(va) < 2 or len(vb) < 2:
            return "%.3f" % d
        se = (statistics.variance(va) / len(va) + statistics.variance(vb) / len(vb)) ** 0.5
        return "%.3f (%s)" % (d, "%.1f se" % (d / se) if se > 0 else "sd 0")

    def better_or_equal(k, a, b):  # heavy hitters: higher is better; else lower
        return a >= b if k.startswith("heavy") else a <= b

    # Protocols: like, open, like-xR and open-xR (R times the requests; their
    # same-size real sample is training-sample-xR).
    for a in [g for g in names if g.startswith("tracelm-")]:
        proto = a[len("tracelm-"):]
        rep = re.search(r"-x\d+$", proto)
        sample = "training-sample" + (rep.group(0) if rep else "")
        for ref, what in (("probabilistic-" + proto, "the probabilistic baseline"),
                          (sample, "real training graphs of the same count")):
            if ref not in groups:
                continue
            wins, losses = [], []
            for k in rows:
                ma, mb = mean(a, k), mean(ref, k)
                if ma is None or mb is None:
                    continue
                (wins if better_or_equal(k, ma, mb) else losses).append(k)
            print("%s: tracelm at least as good as %s on %d of %d metrics; worse on: %s" %
                  (proto, what, len(wins), len(wins) + len(losses),
                   ", ".join(losses) if losses else "none"))
            # How far each loss is, in standard errors of the difference of the two
            # means over the seeds (unpaired): under 2, the seeds cannot tell them apart.
            if losses and ref.startswith("probabilistic"):
                print("  by: " + ", ".join(
                    "%s %s" % (k, gap(k, a, ref)) for k in losses))
            # Where the baseline beats tracelm, does it beat real training graphs of the
            # same count too? Then the metric measures how the held-out graphs differ
            # from the training graphs, which no model of the training graphs can close.
            if ref.startswith("probabilistic") and losses and sample in groups:
                beaten = [k for k in losses if mean(sample, k) is not None and
                          not better_or_equal(k, mean(sample, k), mean(ref, k))]
                if beaten:
                    print("  of those, the baseline beats real training graphs of the same"
                          " count too on: %s" % ", ".join(
                              "%s (real %.3f, baseline %.3f, tracelm %.3f)" %
                              (k, mean(sample, k), mean(ref, k), mean(a, k)) for k in beaten))
        # The target: within 10% of the ceiling on popular-call KL and heavy hitters.
        for k in rows:
            if not (k == "popular calls KL" or k.startswith("heavy")):
                continue
            cells = []
            for ref in ("training", sample):
                mt, mr = mean(a, k), mean(ref, k)
                if mt is None or mr is None or mr == 0:
                    continue
                ok = mt <= 1.1 * mr if not k.startswith("heavy") else mt >= 0.9 * mr
                cells.append("%s %.3f (%s)" % (ref, mr, "within 10%" if ok else "NOT within 10%"))
            if cells:
                print("  %s %s: tracelm %.3f; ceiling %s" % (proto, k, mean(a, k), "; ".join(cells)))

if __name__ == "__main__":
    main()
