// Call graphs as Jaeger JSON, and back.
//
// Format: what Jaeger's query API returns (GET /api/traces) and its UI's
// "JSON File" upload loads:
//   {"data":[{"traceID":"<32 hex>","spans":[SPAN,...],
//     "processes":{"p1":{"serviceName":"MS_123","tags":[]},...},"warnings":null},...],
//    "total":0,"limit":0,"offset":0,"errors":null}
// One trace per graph (graphs without edges are not written), one process per
// distinct callee microservice ("p1", "p2", ... in order of first
// appearance), one span per edge, in edge order:
//   {"traceID","spanID","operationName":"<type> <caller>-><callee>",
//    "references":[{"refType":"CHILD_OF","traceID","spanID":<parent span>}]
//      (empty for a top-level edge or one whose parent is missing),
//    "startTime": (base_epoch_ms + start_ms) * 1000 (microseconds since the epoch),
//    "duration": (finish_ms - start_ms) * 1000 (microseconds; negative only for
//      an invalid graph whose edge finishes before it starts),
//    "tags":[{"key","type":"string","value"}],"logs":[],"processID":"pN",
//    "warnings":null,"flags":1}
// Ids, the base epoch and its range, and the attributes (as string tags) are
// those of the OTLP export (export/otlp.h): the same graph at the same index
// gets the same trace and span ids in both. One more tag: "span.kind" =
// "server" (http, rpc, db, mc), "consumer" (mq) or "internal" (unknown).
//
// Reading (parse_jaeger_json) rebuilds graphs from the tags alone (rpc.id,
// tracelm.caller/callee/type/service/trace_id); times = floor(us / 1000) -
// base_epoch_ms for the start and for start + duration. Spans are grouped into
// graphs by traceID (16 or 32 hex; graphs in order of first appearance);
// edges are sorted by rpc id, then content. Processes, references and
// operation names are checked for shape only. What is lost: as for OTLP.
// Errors are messages naming the span (JSON path and spanID), never thrown;
// nesting deeper than kMaxTraceJsonDepth is rejected before parsing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "export/otlp.h"

namespace tracelm {

std::string to_jaeger_json(const std::vector<CallGraph>& graphs,
                           int64_t base_epoch_ms = kDefaultBaseEpochMs);

// Streaming writer, as OtlpJsonWriter: add() appends one trace, finish()
// closes the document. Throws std::out_of_range for times outside the range.
class JaegerJsonWriter {
 public:
  explicit JaegerJsonWriter(int64_t base_epoch_ms = kDefaultBaseEpochMs);
  void add(const CallGraph& g, std::string& out);
  void finish(std::string& out);

 private:
  int64_t base_;
  uint64_t index_ = 0;
  bool started_ = false, any_ = false, finished_ = false;
};

// Reads one document (or several one after another); appends the graphs to
// *graphs. On failure returns false with *error set.
bool parse_jaeger_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                       int64_t base_epoch_ms = kDefaultBaseEpochMs);

}  // namespace tracelm
