// Call graphs as Jaeger JSON, and back.
//
// Format: what Jaeger's query API returns (GET /api/traces) and its UI's
// "JSON File" upload loads:
//   {"data":[{"traceID":"<32 hex>","spans":[SPAN,...],
//     "processes":{"p1":{"serviceName":"MS_123","tags":[]},...},"warnings":null},...],
//    "total":0,"limit":0,"offset":0,"errors":null}
// One trace per graph (graphs without edges are not written). The spans are
// those of export/trace_layout.h, in its order, with the same ids, names,
// times and attributes as the OTLP export (export/otlp.h); one process per
// service ("p1", "p2", ... in order of first appearance):
//   {"traceID","spanID","operationName",
//    "references":[{"refType":"CHILD_OF","traceID","spanID":<parent span>}]
//      (empty for the root),
//    "startTime": epoch microseconds, "duration": microseconds,
//    "tags":[{"key","type":"string","value"}] (the attributes, then
//      "span.kind" = "server", "client", "producer" or "consumer"),
//    "logs":[],"processID":"pN","warnings":null,"flags":1}
//
// Reading back: parse_jaeger_json() reads Jaeger JSON through the span
// importer, as parse_otlp_json() reads OTLP (same guarantees).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "export/otlp.h"

namespace tracelm {

std::string to_jaeger_json(const std::vector<CallGraph>& graphs, const TraceTiming& timing = {});

// Streaming writer, as OtlpJsonWriter: add() appends one trace, finish()
// closes the document. add() throws as lay_out_trace() does.
class JaegerJsonWriter {
 public:
  explicit JaegerJsonWriter(TraceTiming timing = {});
  void add(const CallGraph& g, std::string& out);
  void finish(std::string& out);

 private:
  TraceTiming timing_;
  uint64_t index_ = 0;
  bool started_ = false, any_ = false, finished_ = false;
};

// Reads one document (or several one after another); appends the graphs to
// *graphs. On failure returns false with *error set.
bool parse_jaeger_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                       NodeMode node = NodeMode::kService);

}  // namespace tracelm
