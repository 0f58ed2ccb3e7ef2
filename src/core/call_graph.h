// CallGraph: one microservice call graph (one trace), the type at the centre
// of tracelm. Every stage (ingest, encode, train, generate, evaluate, export)
// takes or gives CallGraphs.
//
// Contract:
//  - A CallGraph is plain data: a service id, an optional trace id, start
//    time and label (imported span traces), and edges.
//    It may be invalid (a generated graph, a raw trace): validate() in
//    core/validate.h says how. Nothing here throws on an invalid graph.
//  - Times are integer milliseconds relative to the start of the trace (the
//    earliest call starts at 0 in ingested data).
//  - Canonical edge order is RpcId order (pre-order, depth first);
//    canonicalize() sorts into it. Navigation (GraphIndex) and layers() expect
//    canonical order.
//  - Derived attributes (num_edges, depth, latency) are computed, never stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/rpc_id.h"

namespace tracelm {

// Communication type of a call. kUnknown stands for a type string that is not
// one of the five (kept so that an invalid graph can still be represented).
enum class CallType : uint8_t { kHttp = 0, kRpc, kMc, kDb, kMq, kUnknown };
inline constexpr int kNumCallTypes = 5;  // known types

std::string_view call_type_name(CallType t);  // "http", ..., "unknown"
// Case-insensitive; nullopt when not one of http, rpc, mc, db, mq.
std::optional<CallType> parse_call_type(std::string_view s);

inline constexpr std::string_view kUserNode = "USER";

struct Edge {
  RpcId id;            // dot-decimal rpc id, e.g. "0.1.2"
  std::string caller;  // um: "USER" for the root, else a microservice "MS_123"
  std::string callee;  // dm: microservice called
  CallType type = CallType::kHttp;
  int64_t start_ms = 0;   // communication starts at (relative to trace start)
  int64_t finish_ms = 0;  // communication finishes at

  int64_t duration_ms() const { return finish_ms - start_ms; }
  bool operator==(const Edge&) const = default;
};

// Parent/children navigation over a canonical graph. Built in O(E log E).
struct GraphIndex {
  static constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<size_t> parent;                 // edge -> parent edge or kNone
  std::vector<std::vector<size_t>> children;  // edge -> child edges, in id order
  std::vector<size_t> roots;                  // top-level edges (normally just "0")
};

// One layer of the recursive encoding: the sibling edges under one parent edge
// (or the top-level edges), all called by the same start node.
struct Layer {
  size_t parent = GraphIndex::kNone;  // parent edge index; kNone for the root layer
  std::string start_node;             // caller of this layer's edges
  std::vector<size_t> edges;          // edge indices, in id order
};

class CallGraph {
 public:
  std::string service;        // service id, e.g. "S_000034483"
  std::string trace_id;       // source trace id; empty for generated graphs
  int64_t start_unix_ns = 0;  // when the source trace started (epoch ns); 0 = unknown
  std::string label;          // e.g. "normal" or a fault type; empty = unlabelled
  std::vector<Edge> edges;

  size_t num_edges() const { return edges.size(); }
  // Most components in any rpc id (0 for an empty graph).
  int depth() const;
  // Response time of the root edge "0" (finish - start: the end-to-end
  // latency; the root starts at 0 except under clock skew); when absent, the
  // span from the earliest start to the latest finish.
  int64_t latency() const;

  // Sorts edges into canonical (RpcId) order.
  void canonicalize();
  bool is_canonical() const;
  // Index of the edge with this id, or nullopt. O(log E) on a canonical graph.
  std::optional<size_t> find(const RpcId& id) const;

  // Navigation. Edges whose parent id is absent get parent kNone and are not
  // anyone's child; they appear in no layer except as roots if top-level.
  GraphIndex index() const;
  // Layers in pre-order: the root layer, then for each edge in pre-order the
  // layer of its children (only edges that have children make a layer).
  std::vector<Layer> layers() const;

  // Same service and same edges (trace id ignored): the identity used for
  // de-duplication and for round-trip tests.
  bool same_content(const CallGraph& o) const { return service == o.service && edges == o.edges; }
  bool operator==(const CallGraph&) const = default;
};

}  // namespace tracelm
