// From the spans of one trace to one call graph (docs/span-import.md).
//
// Contract:
//  - build_span_graph() takes every span of one trace (any order) and returns
//    the call graph (canonical edge order, times in integer ms relative to the
//    earliest call) or the reason the trace is rejected, never throws.
//  - The rule: a call is a request from one service to another.
//     * The root span gives the call USER -> root service (its times).
//     * A span whose parent is in another service (or a SERVER/CONSUMER child
//       of a CLIENT/PRODUCER span) is the callee side of a call from the
//       parent's call's callee. Times: the caller's view (the client span's)
//       when the client span has exactly this one callee child, else the
//       callee span's. For mq (PRODUCER -> CONSUMER) the call lasts from the
//       producer's start to the later of both ends.
//     * A CLIENT/PRODUCER span without such a child is a call to a peer that
//       is not traced (database, cache, queue, external API), named by
//       peer.service, db.system, messaging destination, server.address (in
//       that order; else "external", counted). Its own subtree is absorbed.
//     * Every other span (INTERNAL, handler chains, a server span's own
//       children in the same service) is collapsed: its calls hang under the
//       nearest call of its service.
//     * Without kinds (span tables), a span is a client when its parent is in
//       its own service and all its children (at least one) are in other
//       services, and a peer call to a database
//       when its name starts with an SQL verb and no child is in another
//       service (peer "sql" unless db.system says more).
//  - Nodes: the service (--node service) or "service#operation" (--node
//    operation), made plain (plain_node_name). The graph's service id is the
//    entry point "service#operation" of the root span, or when the root's
//    name has no letter (a catch-all route such as "/*"), of the root's first
//    call's callee.
//  - Children of a call are numbered 1, 2, ... by start time (ties: input
//    order) to give dot-decimal rpc ids; the root call is "0".
//  - Call type (first match): PRODUCER/CONSUMER or messaging.* -> mq; a cache
//    db.system (redis, memcached, ...) -> mc; other db.system or an SQL name
//    -> db; rpc.system or a gRPC method name ("pkg.Svc/Method") -> rpc; http.*
//    / url.* attributes or an HTTP-ish name ("HTTP GET", "GET /x", "/path")
//    -> http; else the fallback type (counted in type_fallbacks).
//  - Rejections (first that applies, in enum order) with a detail naming the
//    offending span.
//  - Clock skew: a call starting before its parent call or ending after it by
//    at most skew_tolerance_ns is clamped into the parent (counted in
//    clamped_calls); by more it rejects the trace.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "ingest/spans/span.h"

namespace tracelm {

enum class SpanReject : uint8_t {
  kNone = 0,
  kBadSpan,             // a span of the trace could not be read (counted per span by the reader)
  kTooManySpans,        // more spans than max_spans
  kParentInOtherTrace,  // a reference names a parent in another trace
  kEndBeforeStart,      // a span ends before it starts
  kTimeOutOfRange,      // a span time before 1970, or spans covering more than 2^62 ns
  kOrphan,              // a span's parent is not in the trace
  kSeveralRoots,        // more than one span without a parent
  kCycle,               // no root, or spans not reachable from the root
  kClockSkew,           // a call starts before its parent call, beyond the tolerance
  kOutlivesParent,      // a call ends after its parent call, beyond the tolerance
  kTooDeep,             // more than max_depth levels of calls
  kCount
};
inline constexpr int kNumSpanRejects = static_cast<int>(SpanReject::kCount);
std::string_view span_reject_code(SpanReject r);  // "orphan_span", ...

enum class NodeMode : uint8_t { kService, kOperation };

struct SpanGraphOptions {
  NodeMode node = NodeMode::kService;
  int max_depth = 15;
  int64_t skew_tolerance_ns = 1000000;  // 1 ms
  size_t max_spans = 100000;
  CallType fallback_type = CallType::kRpc;
};

struct SpanGraph {
  CallGraph graph;  // trace_id, start_unix_ns set; service = entry point
  SpanReject reject = SpanReject::kNone;
  std::string detail;
  uint64_t spans = 0;            // spans of the trace
  uint64_t duplicate_spans = 0;  // a second span with the same id (dropped)
  uint64_t collapsed_spans = 0;  // spans folded into a call of their own service
  uint64_t type_fallbacks = 0;   // calls whose type came from the fallback
  uint64_t peer_fallbacks = 0;   // peer calls named "external"
  uint64_t zero_ms_calls = 0;    // calls whose finish == start after rounding to ms
  uint64_t clamped_calls = 0;    // calls moved into their parent (skew within tolerance)
};

// `spans` may be reordered. All spans must share one trace id.
SpanGraph build_span_graph(std::span<Span> spans, const SpanGraphOptions& opt);

// The call type a span's attributes and name imply, or nullopt (exposed for tests).
std::optional<CallType> span_call_type(const Span& s);

// A node name the text encodings can carry (docs/encodings.md: no space,
// ',', '/', ':', '(', ')', '<', '>'): ' ' -> '_', ',' -> ';', '/' -> '|',
// ':' -> '.', brackets -> [] {}, '#' -> '_' ('#' joins service and operation
// in --node operation), control characters -> '?'; at most 255 bytes.
std::string plain_node_name(std::string_view s);

// Service name from a Kubernetes pod name: drops the last two '-' parts
// ("ts-order-service-5d6b8f7c9-abcde" -> "ts-order-service"); a name with
// fewer than three parts is returned unchanged.
std::string_view service_from_pod(std::string_view pod);

}  // namespace tracelm
