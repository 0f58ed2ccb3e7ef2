#!/usr/bin/python3
"""The pandas peer of bench_span_ingest: the same span -> call-graph rule for
kind-less span tables (docs/span-import.md) written the way a user would:
pandas reads the CSV, derives services, groups by trace, and a Python function
builds each trace's calls. Prints 'rows N graphs G calls C seconds S'.

Usage: span_ingest_pandas.py FILE.csv[.gz]
"""
import re, sys, time
import pandas as pd

SQL = re.compile(r'^(SELECT|INSERT|UPDATE|DELETE|REPLACE|MERGE|UPSERT|CALL)( |$)|^sql\.')

def build(tr):
    spans = tr.sort_values('StartTimeUnixNano', kind='stable')
    ids = set(spans.SpanID)
    svc = dict(zip(spans.SpanID, spans.svc))
    kids = {}
    root = None
    for sid, par in zip(spans.SpanID, spans.ParentID):
        if par == 'root':
            if root is not None:
                return None  # several roots
            root = sid
        elif par not in ids:
            return None  # orphan
        else:
            kids.setdefault(par, []).append(sid)
    if root is None:
        return None
    row = {s: r for s, r in zip(spans.SpanID, spans.itertuples(index=False))}
    calls = [('USER', svc[root], row[root].StartTimeUnixNano, row[root].EndTimeUnixNano, -1)]
    stack = [(root, 0)]
    while stack:
        s, ci = stack.pop()
        cross = [x for x in kids.get(s, []) if svc[x] != svc[s]]
        parent = row[s].ParentID
        client = (parent != 'root' and svc.get(parent) == svc[s] and kids.get(s)
                  and len(cross) == len(kids[s]))
        for x in kids.get(s, []):
            if svc[x] != svc[s]:
                t = row[s] if client and len(cross) == 1 else row[x]
                calls.append((calls[ci][1], svc[x], t.StartTimeUnixNano, t.EndTimeUnixNano, ci))
                stack.append((x, len(calls) - 1))
            elif SQL.match(row[x].OperationName) and not any(svc[k] != svc[x] for k in kids.get(x, [])):
                calls.append((calls[ci][1], 'sql', row[x].StartTimeUnixNano, row[x].EndTimeUnixNano, ci))
            else:
                stack.append((x, ci))
    t0 = calls[0][2]
    out, ids_of = [], {0: '0'}
    order = sorted(range(1, len(calls)), key=lambda i: (calls[i][2], i))
    # Number children by start, parents first.
    by_parent = {}
    for i in order:
        by_parent.setdefault(calls[i][4], []).append(i)
    todo = [0]
    while todo:
        c = todo.pop()
        for k, i in enumerate(by_parent.get(c, []), 1):
            ids_of[i] = ids_of[c] + '.' + str(k)
            todo.append(i)
    for i, (um, dm, s, e, p) in enumerate(calls):
        out.append((ids_of[i], um, dm, (s - t0 + 500000) // 1000000, (e - t0 + 500000) // 1000000))
    return out

def main():
    t = time.time()
    df = pd.read_csv(sys.argv[1], dtype={'TraceID': str, 'SpanID': str, 'ParentID': str,
                                         'PodName': str, 'OperationName': str})
    df = df.drop_duplicates(subset=['TraceID', 'SpanID'])
    df['svc'] = df.PodName.str.rsplit('-', n=2).str[0]
    graphs = calls = 0
    for _, tr in df.groupby('TraceID', sort=False):
        g = build(tr)
        if g is not None:
            graphs += 1
            calls += len(g)
    print(f'rows {len(df)} graphs {graphs} calls {calls} seconds {time.time() - t:.3f}')

main()
