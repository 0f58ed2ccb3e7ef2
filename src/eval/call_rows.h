// Calls as table rows: the unit of the tabular baseline TVAE
// (baseline/tvae.h), which makes calls, not graphs, and the realism metrics
// that are defined on calls alone (docs/metrics.md, "Calls-only sets").
//
// Contract:
//  - CallRow is one edge of a call graph on its own: caller, callee, type,
//    depth (components of its rpc id, >= 1), start (ms from its trace's
//    start) and response time (finish - start, ms).
//  - call_rows(g): one row per edge of g, in edge order. count_calls(path):
//    the edges of all graphs of a corpus, read as `evaluate --real` reads it.
//  - The calls CSV: the header line "caller,callee,type,depth,start_ms,
//    response_ms", then one call per line (type: http, rpc, mc, db, mq).
//    write_calls_csv() writes atomically (io/atomic_file.h);
//    read_calls_csv() throws InputError naming the file, the line and what
//    was expected on a wrong header, a wrong field count, an unknown type, a
//    number that is not an integer, a depth < 1 or a response time < 0.
//  - add_calls(p, rows) counts rows into a GraphSetProfile as edges (edges,
//    calls, callee_calls, response_time), nothing about graphs (graphs stays
//    0; degrees, depth, fan-out, stats stay empty).
//  - calls_report() is RealismReport::compute() for a calls-only set: the
//    popular-call KL, caller flows, heavy hitters (with options.runs:
//    consecutive parts of the rows) and the response-time EMD, by the same
//    functions as for graphs; every other EMD is undefined, validity, structure and
//    memorization are not computed, calls_only is true (the summary table
//    shows those rows as n/a). The real side is a GraphSetProfile of graphs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/call_graph.h"
#include "eval/metrics.h"

namespace tracelm {

struct CallRow {
  std::string caller, callee;
  CallType type = CallType::kHttp;
  int depth = 1;
  int64_t start_ms = 0;
  int64_t response_ms = 0;
  bool operator==(const CallRow&) const = default;
};

std::vector<CallRow> call_rows(const CallGraph& g);
// Edges of all graphs of a corpus (any graph input, as `evaluate --real` reads it).
uint64_t count_calls(const std::string& corpus);

inline constexpr const char* kCallsCsvHeader = "caller,callee,type,depth,start_ms,response_ms";
void write_calls_csv(const std::string& path, const std::vector<CallRow>& rows);
std::vector<CallRow> read_calls_csv(const std::string& path);

void add_calls(GraphSetProfile& p, const std::vector<CallRow>& rows);

RealismReport calls_report(std::string name, const GraphSetProfile& real,
                           const std::vector<CallRow>& synthetic, const RealismOptions& opt = {});

}  // namespace tracelm
