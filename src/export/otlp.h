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
// One span per edge (call):
//  - resource service.name = the edge's callee (the microservice serving the
//    call); a graph's spans are grouped into one resourceSpans per callee, in
//    order of first appearance; graphs follow one another in input order.
//  - traceId: 32 lowercase hex (16 bytes) hashed from the graph's index in the
//    export and its trace id; spanId: 16 hex (8 bytes) hashed from the traceId,
//    the rpc id and its occurrence (a repeated rpc id gets its own span); never
//    zero, unique within a trace. The same graph at the same index gets the
//    same ids in OTLP and in Jaeger JSON (export/jaeger.h).
//  - parentSpanId: the span of the parent rpc id's edge (the first one with
//    that id); absent for a top-level edge or one whose parent is missing.
//  - name: "<type> <caller>-><callee>", e.g. "rpc MS_1->MS_2".
//  - kind (integer enum): SERVER (2) for http, rpc, db and mc (the span is the
//    callee serving the call); CONSUMER (5) for mq; INTERNAL (1) for unknown.
//  - startTimeUnixNano / endTimeUnixNano (decimal strings) =
//    (base_epoch_ms + start_ms / finish_ms) * 1,000,000. The base epoch is
//    kDefaultBaseEpochMs (1,700,000,000,000 ms = 2023-11-14T22:13:20Z) unless
//    given; base + time must lie in [0, kMaxEpochMs] (int64 nanoseconds), else
//    the writers throw std::out_of_range.
//  - attributes (string values): "rpc.id" (Alibaba's dot-decimal rpc id, not
//    an OpenTelemetry convention), "tracelm.caller", "tracelm.callee",
//    "tracelm.type" (http/rpc/mc/db/mq/unknown), "tracelm.service" (S_...),
//    "tracelm.trace_id" (only when the graph has one); semantic conventions:
//    "db.system" = "memcached" for mc (Alibaba's mc is memcached). No other
//    conventions are claimed: the trace does not say which HTTP methods, RPC
//    frameworks or databases were used.
//
// Reading (parse_otlp_json) rebuilds graphs from the attributes alone: the
// service from tracelm.service, edges from rpc.id, tracelm.caller/callee/type,
// times = floor(ns / 1e6) - base_epoch_ms. Spans are grouped into graphs by
// traceId (graphs in order of first appearance, wherever their spans are);
// edges are sorted by rpc id, then by their content, so the span order in the
// file does not matter. Resource, scope, name, kind and parentSpanId are
// checked for shape only (rpc.id is authoritative).
//
// What is lost: nothing for graphs that have edges, in canonical order, with
// distinct rpc ids (every ingested graph): parse(to_otlp_json(gs)) == gs,
// trace ids included, when read with the base they were written with. A graph
// without edges has no spans and is not written; edges out of canonical order
// come back sorted; repeated rpc ids (invalid graphs) come back sorted by
// content; sub-millisecond times from other producers are truncated.
//
// Readers take outside input: nesting deeper than kMaxTraceJsonDepth is
// rejected before parsing; errors are returned as messages naming the span
// (its JSON path and spanId), never thrown.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/call_graph.h"

namespace tracelm {

inline constexpr int64_t kDefaultBaseEpochMs = 1'700'000'000'000;
// Largest epoch millisecond whose nanoseconds fit an int64 (year 2262).
inline constexpr int64_t kMaxEpochMs = 9'223'372'036'854;
inline constexpr int kMaxTraceJsonDepth = 64;

// One request holding all graphs.
std::string to_otlp_json(const std::vector<CallGraph>& graphs,
                         int64_t base_epoch_ms = kDefaultBaseEpochMs);
// OTLP JSON Lines: one request per graph, each line ending in '\n'.
std::string to_otlp_json_lines(const std::vector<CallGraph>& graphs,
                               int64_t base_epoch_ms = kDefaultBaseEpochMs);

// Streaming writer: add() appends a graph's spans to `out` (the caller writes
// `out` away as it grows); finish() closes the request. Graph i of the stream
// gets the same ids as graph i of to_otlp_json(). Throws std::out_of_range
// for a base or a time outside the range (see above).
class OtlpJsonWriter {
 public:
  enum class Mode { kOneRequest, kLines };
  explicit OtlpJsonWriter(int64_t base_epoch_ms = kDefaultBaseEpochMs,
                          Mode mode = Mode::kOneRequest);
  void add(const CallGraph& g, std::string& out);
  void finish(std::string& out);

 private:
  int64_t base_;
  Mode mode_;
  uint64_t index_ = 0;
  bool started_ = false, any_ = false, finished_ = false;
};

// Reads one request, several requests one after another (OTLP JSON Lines),
// or nothing but whitespace between them; appends the graphs to *graphs.
// On failure returns false with *error set (*graphs is then unspecified).
bool parse_otlp_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                     int64_t base_epoch_ms = kDefaultBaseEpochMs);

// Shared by the OTLP and Jaeger writers and readers.
namespace trace_json {

inline constexpr size_t kNoParent = static_cast<size_t>(-1);

// The ids of one graph's spans.
struct SpanIds {
  std::string trace_id;               // 32 lowercase hex, not all zero
  std::vector<std::string> span_ids;  // per edge: 16 lowercase hex, non-zero, unique
  std::vector<size_t> parent;         // per edge: the parent edge, or kNoParent
};
SpanIds assign_ids(const CallGraph& g, uint64_t index);

// "" when the base epoch is in [0, kMaxEpochMs], else the message saying it is not.
std::string base_epoch_error(int64_t base_epoch_ms);
// Throws std::out_of_range with base_epoch_error() unless it is "".
void check_base_epoch(int64_t base_epoch_ms);
// Checks base + every edge time against [0, kMaxEpochMs]; throws std::out_of_range.
void check_time_range(const CallGraph& g, uint64_t index, int64_t base_epoch_ms);

// Appends s as a JSON string (quoted, escaped; invalid UTF-8 replaced by U+FFFD).
void append_string(std::string& out, std::string_view s);

// Appends the attributes of edge e of g, comma-separated, each written by
// append_kv(out, key, value): rpc.id, tracelm.caller, tracelm.callee,
// tracelm.type, tracelm.service, tracelm.trace_id (when the graph has one),
// db.system = memcached (mc). The readers read these back (SpanFields).
using AppendKeyValue = void (*)(std::string& out, std::string_view key, std::string_view value);
void append_attributes(std::string& out, const CallGraph& g, const Edge& e,
                       AppendKeyValue append_kv);

// Splits text into its top-level JSON values (objects or arrays; whitespace
// between them), rejecting nesting deeper than kMaxTraceJsonDepth, anything
// else at the top level and unbalanced or mismatched brackets.
bool split_documents(std::string_view text, std::vector<std::string_view>* docs,
                     std::string* error);

// Lowercase hex of `digits` characters (any case accepted), not all zeros.
bool normalize_hex_id(std::string_view s, size_t digits, std::string* out);

// Edges of one trace while reading: adds spans, then finishes into a graph.
struct GraphBuilder {
  CallGraph graph;
  bool has_service = false, has_trace_id = false;
  std::unordered_set<std::string> span_ids;  // seen, to reject duplicates
};
// Attributes of one span as read.
struct SpanFields {
  std::string rpc_id, caller, callee, type, service, trace_id;
  bool has_rpc_id = false, has_caller = false, has_callee = false, has_type = false,
       has_service = false, has_trace_id = false;
  // True for the keys read: "rpc.id" and tracelm's.
  static bool known(std::string_view key);
  // Stores the value of a known key; false when it repeats.
  bool set(std::string_view key, std::string value);
};
// Adds the span to its graph; `where` names it in error messages.
bool add_span(GraphBuilder& b, const SpanFields& f, const std::string& span_id, int64_t start_ms,
              int64_t finish_ms, const std::string& where, std::string* error);
// Sorts the edges (rpc id, then content) and returns the graph.
CallGraph finish_graph(GraphBuilder&& b);

// The frame of both readers (parse_otlp_json, parse_jaeger_json), one per
// call: read() checks the base epoch, splits the text into its documents
// (split_documents), parses each and hands it to the format's read_doc, which
// reads its spans and adds them; then the graphs, in order of first
// appearance of their trace id, are appended to *graphs. Error messages from
// fail() and add_span() are prefixed "<label> N: " when there are several
// documents ("request 2: ..."); "not valid JSON" for a document that does not
// parse. Never throws on bad input.
class TraceReader {
 public:
  using ReadDoc = std::function<bool(const nlohmann::json& doc, TraceReader& r)>;
  TraceReader(int64_t base_epoch_ms, std::string doc_label)
      : base_(base_epoch_ms), label_(std::move(doc_label)) {}
  bool read(std::string_view text, const ReadDoc& read_doc, std::vector<CallGraph>* graphs,
            std::string* error);

  // For read_doc:
  int64_t base_epoch_ms() const { return base_; }
  // Sets the error (prefixed) and returns false.
  bool fail(const std::string& msg);
  // Adds a span to the graph of trace_hex (times in ms relative to the base);
  // `where` names the span in errors.
  bool add_span(const std::string& trace_hex, const SpanFields& f, const std::string& span_id,
                int64_t start_ms, int64_t finish_ms, const std::string& where);
  // Reads a span's attribute list (OTLP "attributes", Jaeger "tags"; absent or
  // null: none) into *f: an array of objects with a string "key"; for each
  // known key value_of(item) gives its string value (nullptr when it has
  // none). `noun` ("attribute", "tag") and `value_kind` ("a stringValue")
  // word the errors.
  bool read_fields(const nlohmann::json& span, const char* list_key, const char* noun,
                   const char* value_kind,
                   const std::function<const nlohmann::json*(const nlohmann::json&)>& value_of,
                   const std::string& where, SpanFields* f);

 private:
  int64_t base_;
  std::string label_, prefix_;  // prefix_: "<label> N: " for the current document
  std::string* error_ = nullptr;
  std::vector<GraphBuilder> builders_;
  std::unordered_map<std::string, size_t> by_trace_;
};

}  // namespace trace_json

}  // namespace tracelm
