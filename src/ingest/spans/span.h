// Span: one span of a distributed trace, as any tracing system records it
// (OpenTelemetry, Jaeger, Zipkin, span tables), reduced to the fields the
// span -> call-graph rule (docs/span-import.md) needs.
//
// Contract:
//  - Plain data. Times are integer nanoseconds since the Unix epoch (readers
//    convert microseconds). parent_id empty = a root span.
//  - parent_trace_id is set only when the source names the parent's trace
//    explicitly and it differs from trace_id (a Jaeger reference into
//    another trace): such a span cannot be placed and its trace is rejected.
//  - kind kUnspecified means the source has no kind (span tables): the rule
//    then infers client spans from structure and names (see span_graph.h).
//  - resolve() condenses kind, attributes and name into `hint` and `peer`
//    (rules in span_graph.h); build_span_graph() resolves unresolved spans.
//  - The attribute fields hold the values of the semantic-convention keys
//    that decide the call type and the peer of a client span, old and new
//    names alike (readers fill them; see span_attrs.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/call_graph.h"

namespace tracelm {

enum class SpanKind : uint8_t {
  kUnspecified = 0,
  kInternal,
  kServer,
  kClient,
  kProducer,
  kConsumer
};
std::string_view span_kind_name(SpanKind k);  // "unspecified", "internal", "server", ...

struct Span {
  std::string trace_id, span_id, parent_id;
  std::string parent_trace_id;  // only when the parent is in another trace
  std::string service;          // service.name / process serviceName / localEndpoint
  std::string name;             // operation name
  SpanKind kind = SpanKind::kUnspecified;
  int64_t start_ns = 0, end_ns = 0;
  // Attributes used by the call-type table and the peer rule.
  std::string db_system;              // db.system.name, db.system
  std::string rpc_system;             // rpc.system.name, rpc.system, component gRPC/thrift
  std::string http_method;            // http.request.method, http.method
  std::string messaging_system;       // messaging.system
  std::string messaging_destination;  // messaging.destination.name, messaging.destination
  std::string peer_service;           // peer.service
  std::string server_address;         // server.address, net.peer.name, remoteEndpoint
  bool has_http = false;              // any http.* / url.* attribute, component net/http
  // tracelm's own export attributes (tracelm.rpc_id / rpc.id, tracelm.type,
  // tracelm.service, tracelm.trace_id): honoured so that importing an export
  // gives back the exported graphs.
  std::string rpc_id_attr, type_attr, service_attr, trace_id_attr;

  // What the rule needs, derived by resolve() from the kind, the attributes
  // and the name (readers call it; a span table's spill keeps only these).
  bool resolved = false;
  CallType hint = CallType::kUnknown;  // the call type the span implies (kUnknown: none)
  std::string peer;  // the untraced peer a client span calls ("" when not a peer-call span)
  void resolve();

  // Sets the attribute field `key` names (OpenTelemetry / OpenTracing keys,
  // old and new); other keys are ignored. Returns true when the key was used.
  bool set_attribute(std::string_view key, std::string_view value);
};

// Remembers resolve()'s result by kind and name for spans without the
// attributes resolve() reads (span tables: names repeat from row to row).
// resolve(s) sets exactly what s.resolve() sets, and returns true when the
// result came from the cache; resolve(kind, name) is what resolve() gives a
// span of that kind and name and no attributes. At most kMaxEntries names
// are kept. One cache per thread.
class SpanResolveCache {
 public:
  static constexpr size_t kMaxEntries = 4096;
  struct Resolved {
    CallType hint = CallType::kUnknown;
    std::string peer;
  };
  bool resolve(Span& s);
  const Resolved& resolve(SpanKind kind, std::string_view name, bool* hit = nullptr);

 private:
  std::string key_;  // kind byte + name
  std::unordered_map<std::string, Resolved> by_key_;
  Resolved last_;  // a result not kept (the cache is full)
  Span scratch_;
};

}  // namespace tracelm
