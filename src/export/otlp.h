// Call graphs as OpenTelemetry OTLP JSON, and back.
//
// Format: the protobuf JSON mapping of ExportTraceServiceRequest, as the
// OpenTelemetry collector's OTLP/HTTP receiver (POST /v1/traces) and its file
// exporter use it (trace and span ids in hex, int64 as decimal strings, enums
// as integers):
//   {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",
//     "value":{"stringValue":"MS_123"}}]},
//     "scopeSpans":[{"scope":{"name":"tracelm"},"spans":[SPAN,...]}]},...]}
// "OTLP JSON Lines" is one such request per graph, one per line (what the
// collector's file exporter writes).
//
// The spans of a graph are those of export/trace_layout.h (CLIENT and SERVER
// halves of each call on the caller's and the callee's resource, database
// calls as CLIENT spans, semantic-convention attributes, traces spread over
// time); docs/export.md shows a worked example. Per graph one resourceSpans
// per service (in order of first appearance) with one scope "tracelm";
// graphs follow one another in input order; a graph without edges writes
// nothing (its index still counts). Span: traceId, spanId, parentSpanId
// (absent for the root), name, kind (OTLP enum integer), startTimeUnixNano,
// endTimeUnixNano (decimal strings), attributes (stringValue).
//
// Reading back: parse_otlp_json() reads OTLP JSON (one request, several, or
// one per line) through the span importer (ingest/spans, docs/span-import.md,
// --node service unless told), so it reads any producer's spans, tracelm's included:
// parse(to_otlp_json(gs)) gives back the graphs of gs that are valid
// (core/validate.h) without clock skew (no call starting before its parent),
// the same content and trace ids, with start_unix_ns = the trace's start.
// A trace the importer rejects, a bad span or a bad line is an error naming
// it; never throws on bad input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "export/trace_layout.h"
#include "ingest/spans/span_graph.h"

namespace tracelm {

// One request holding all graphs.
std::string to_otlp_json(const std::vector<CallGraph>& graphs, const TraceTiming& timing = {});
// OTLP JSON Lines: one request per graph, each line ending in '\n'.
std::string to_otlp_json_lines(const std::vector<CallGraph>& graphs,
                               const TraceTiming& timing = {});

// Streaming writer: add() appends a graph's spans to `out` (the caller writes
// `out` away as it grows); finish() closes the request. Graph k of the stream
// gets the same ids and times as graph k of to_otlp_json(). add() throws
// std::out_of_range / std::invalid_argument as lay_out_trace() does.
class OtlpJsonWriter {
 public:
  enum class Mode { kOneRequest, kLines };
  explicit OtlpJsonWriter(TraceTiming timing = {}, Mode mode = Mode::kOneRequest);
  void add(const CallGraph& g, std::string& out);
  void finish(std::string& out);

 private:
  TraceTiming timing_;
  Mode mode_;
  uint64_t index_ = 0;
  bool started_ = false, any_ = false, finished_ = false;
};

// Reads OTLP JSON text (see above); appends the graphs, in order of first
// appearance of their trace, to *graphs. On failure returns false with
// *error set (*graphs is then unspecified).
// `node`: as `tracelm ingest --node` (kOperation for a corpus of
// "service#operation" nodes).
bool parse_otlp_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                     NodeMode node = NodeMode::kService);

namespace trace_json {

// Appends s as a JSON string (quoted, escaped; invalid UTF-8 replaced by U+FFFD).
void append_string(std::string& out, std::string_view s);

// The reader behind parse_otlp_json and parse_jaeger_json: the text must be
// of format `want` ("otlp-json" or "jaeger-json", span_format_name()).
bool parse_trace_text(std::string_view text, std::string_view want, std::vector<CallGraph>* graphs,
                      std::string* error, NodeMode node);

}  // namespace trace_json

}  // namespace tracelm
