// Building one call graph from the raw rows of one trace (preprocessing rules
// 2-5 of docs/preprocessing.md) and deciding whether ingestion keeps it.
//
// Contract:
//  - build_trace() takes all stored rows of one trace in input order
//    (rejected-row markers included) and returns the graph (canonical edge
//    order) with the reason it is rejected, or GraphReject::kNone.
//  - One row per rpc id: the first in input order; later ones are counted in
//    duplicate_rows. Times: start = timestamp - earliest timestamp of the
//    kept rows; finish = start + rt.
//  - The service id is the root row's (or, for v2021 data without a service
//    column, the root's callee).
//  - Exact-duplicate graphs (rule 6) need a global view: see GraphDeduper.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "core/validate.h"
#include "ingest/trace_spill.h"

namespace tracelm {

// Why ingestion drops a trace. Order = precedence when several apply.
enum class GraphReject : uint8_t {
  kNone = 0,
  kNoUsableRows,       // every row of the trace was rejected
  kMissingRoot,        // no rpc id 0
  kRootNotFromUser,    // rpc id 0 not called by USER
  kParentMissing,      // an edge's parent rpc id is absent (not connected)
  kCallerMismatch,     // an edge's caller differs from its parent's callee
  kMissingService,     // no service id
  kTooDeep,            // depth > max_depth
  kFinishAfterParent,  // a child finishes after its parent
  kStartBeforeParent,  // a child starts before its parent (only with strict)
  kDuplicate,          // same service and edges as an earlier graph
  kCount
};
inline constexpr int kNumGraphRejects = static_cast<int>(GraphReject::kCount);
std::string_view graph_reject_code(GraphReject r);

struct BuildOptions {
  int max_depth = 15;
  bool strict = false;    // also drop graphs that start before their parent
  bool keep_all = false;  // validation mode: keep every row and every graph
};

// Remembers a 128-bit fingerprint of every graph's content (service and
// edges, not the trace id): 16 bytes per graph in an open-addressing table.
class GraphDeduper {
 public:
  struct Key {
    uint64_t a = 0, b = 0;  // b == 0 marks an empty slot (fingerprints never have b == 0)
  };
  // The fingerprint of a graph's content; thread-safe.
  static Key fingerprint(const CallGraph& g);
  // True when an identical graph was seen before; otherwise records it.
  bool seen(const CallGraph& g) { return seen(fingerprint(g)); }
  bool seen(Key k);
  size_t size() const { return size_; }

 private:
  std::vector<Key> slots_ = std::vector<Key>(1024);
  size_t size_ = 0;
};

struct BuiltTrace {
  CallGraph graph;
  GraphReject reject = GraphReject::kNone;
  std::string detail;  // first offending edge, for the rejects file
  uint64_t first_seq = 0;
  uint64_t duplicate_rows = 0;       // rows dropped as a repeated rpc id
  uint64_t rows = 0;                 // usable rows of the trace
  bool start_before_parent = false;  // kept despite clock skew (non-strict)
  GraphDeduper::Key fingerprint;     // set by ingest for graphs not rejected
};

BuiltTrace build_trace(const std::vector<SpillRow>& rows, const BuildOptions& opt);

}  // namespace tracelm
