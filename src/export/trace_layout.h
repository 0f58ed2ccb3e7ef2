// The spans one call graph becomes in tracelm's OTLP and Jaeger exports: the
// layout an instrumented system writes (docs/export.md has the table and a
// worked example). Both writers serialise the same layout, so the same graph
// at the same index gets the same ids in both.
//
// Contract:
//  - Nodes: a node "svc#operation" (--node operation) is the service `svc`
//    serving `operation`; a node without '#' is a service with no known
//    operation. The resource (OTLP service.name, Jaeger process) of a span
//    is the service part.
//  - Per call (edge), in edge order:
//     * a root call (a top-level id called by USER): one SERVER span on the callee (CONSUMER for
//       mq), no parent;
//     * db and mc calls whose callee makes no calls of its own: one CLIENT
//       span on the caller, with db.system.name and peer.service = the callee
//       (a database is not instrumented);
//     * every other call: a CLIENT span on the caller (PRODUCER for mq) and a
//       SERVER span on the callee (CONSUMER for mq), child of the CLIENT;
//     * the CLIENT/PRODUCER span is a child of the span of the parent call
//       on the callee side (its SERVER/CONSUMER span; the CLIENT span of a db
//       call with children is followed by a SERVER span like any other).
//    Both halves of a call carry the call's times (the caller's view,
//    Alibaba's rt): the SERVER span coincides with its CLIENT span.
//  - Names: the callee's operation (with '|' shown as '/' and "POST_/x" as
//    "POST /x", inverting plain_node_name for these), else "<type> <callee
//    service>" ("rpc MS_2"); never the caller.
//  - Attributes (all strings): semantic conventions per type (http:
//    http.request.method, http.route on the SERVER half when the operation
//    is a path; rpc: rpc.system.name, rpc.method; db/mc: db.system.name,
//    peer.service; mq: messaging.system, messaging.destination.name,
//    messaging.operation.type), server.address = the callee on CLIENT halves
//    of http and rpc calls; tracelm's own: tracelm.type on every span,
//    tracelm.rpc_id on the callee-side span of each call (the span the
//    importer makes the call from), tracelm.service and tracelm.trace_id (when
//    the graph has one) on the root span.
//  - Times: trace k (the k-th graph handed to a writer, from 0) starts at
//    g.start_unix_ns when the graph has one (an imported corpus), else at
//    start_ms * 1e6 + round(k * 1e9 / rate) ns; a call's span runs from
//    trace start + start_ms * 1e6 to trace start + finish_ms * 1e6 ns.
//    lay_out_trace() throws std::out_of_range when a time leaves [0, 2^63-1]
//    ns, std::invalid_argument for a rate that is not positive and finite.
//  - Ids: traceId 32 hex hashed from the index and the graph's trace id;
//    span ids 16 hex hashed from the trace id, the rpc id, its occurrence
//    and the half; never zero, unique within the trace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/call_graph.h"

namespace tracelm {

// 2023-11-14T22:13:20Z: where traces without their own start time begin.
inline constexpr int64_t kDefaultBaseEpochMs = 1'700'000'000'000;
// Largest epoch millisecond whose nanoseconds fit an int64 (year 2262).
inline constexpr int64_t kMaxEpochMs = 9'223'372'036'854;

struct TraceTiming {
  int64_t start_ms = kDefaultBaseEpochMs;  // epoch ms of trace 0 (without its own start)
  double rate = 10;                        // traces per second (without their own start)
};

// The OTLP SpanKind enum values.
enum class OutKind : uint8_t {
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5
};
std::string_view out_kind_name(OutKind k);  // "server", "client", ... (Jaeger's span.kind)

inline constexpr size_t kNoParentSpan = static_cast<size_t>(-1);

struct OutSpan {
  size_t edge = 0;  // the call it belongs to
  OutKind kind = OutKind::kServer;
  std::string service, name, span_id;  // span_id: 16 lowercase hex
  size_t parent = kNoParentSpan;       // index into TraceLayout::spans
  int64_t start_ns = 0, end_ns = 0;    // epoch ns
  std::vector<std::pair<std::string_view, std::string>> attributes;
};

struct TraceLayout {
  std::string trace_id;                               // 32 lowercase hex
  std::vector<OutSpan> spans;                         // per edge: [CLIENT half,] callee-side span
  std::vector<std::string> services;                  // resources, in order of first appearance
  std::vector<std::vector<size_t>> spans_of_service;  // per service: its spans, in order
};

// Epoch ns of trace k's start (see above).
int64_t trace_start_ns(const CallGraph& g, uint64_t k, const TraceTiming& t);

TraceLayout lay_out_trace(const CallGraph& g, uint64_t k, const TraceTiming& t);

// "svc#op" -> {"svc", "op"}; "svc" -> {"svc", ""}.
std::pair<std::string_view, std::string_view> split_node(std::string_view node);

}  // namespace tracelm
