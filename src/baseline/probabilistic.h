// ProbabilisticModel: the probabilistic call-graph baseline, after Alibaba's
// call-graph generator as the paper describes it (random draws from per-depth
// statistics of the training data: children per depth, rpc type, response
// times), extended with the callee choice and time nesting so that its graphs
// are complete and valid.
//
// What is fitted (every distribution is an empirical count table; docs/metrics.md
// "Probabilistic baseline" has the same list):
//  - service: graphs per service (the service of a generated graph);
//  - root: per service, the (callee, type) of edge "0";
//  - children: number of calls made by the callee of an edge, given the edge's
//    depth and type; fallback: given its depth only;
//  - child type: type of a call given its depth and its parent edge's type;
//    fallback: its depth; then all calls;
//  - callee: given (caller, type); fallback: given (type, depth); then type;
//  - response time (finish - start): given (type, depth), a reservoir of at
//    most `reservoir` values per cell (uniform reservoir sampling, seeded);
//    fallback: the cell of the type over all depths; then all calls;
//  - layout: the fraction of layers (>= 2 sibling calls) whose calls run one
//    after another (each starts at or after the previous one's finish) rather
//    than overlapping;
//  - bounds: the deepest graph (<= 15) and the most edges in a graph.
//
// Generation (valid by construction; every graph passes validate() with no
// violation): edge "0" from USER starting at 0 with a sampled duration; then
// breadth first, each edge's callee makes a sampled number of calls with ids
// parent.1 .. parent.k, caller = the parent's callee, each with a sampled type,
// callee and duration. Children are laid out inside the parent's window
// [start, finish]: sequentially (durations shrunk proportionally when their sum
// exceeds the window, the spare time spread as random gaps) or in parallel
// (each clipped to the window, started at a uniform offset that keeps it
// inside). Depth never exceeds the fitted maximum; edges stop at the fitted
// maximum (breadth first, so truncation cuts the deepest layers).
//
// Conditioning: an optional service (an unknown service keeps its id on the
// graph and draws its root from all services' roots), and optional target
// num_edges and depth by rejection sampling: up to `max_attempts` graphs are
// drawn and the first that matches is returned; when none matches, the one
// closest to the targets (|edges - target| + |depth - target|, first of equal
// distance) is returned with matched = false.
//
// Thread-safety: a fitted model is immutable; generate() may be called from
// many threads, each with its own Rng.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"
#include "util/rng.h"

namespace tracelm {

// A discrete distribution over int64 values with integer weights. Filled with
// add(), then freeze() (which sample() requires); from_json() gives a frozen one.
class Categorical {
 public:
  void add(int64_t value, uint64_t weight = 1);
  void freeze();
  bool empty() const { return total_ == 0 && pending_.empty(); }
  uint64_t total() const { return total_; }
  size_t size() const { return values_.size(); }
  // A value drawn with probability weight / total. Requires freeze() and !empty().
  int64_t sample(Rng& rng) const;
  // [[value, weight], ...] in value order, and back.
  nlohmann::json to_json() const;
  static Categorical from_json(const nlohmann::json& j);

 private:
  std::vector<int64_t> values_;  // sorted, distinct
  std::vector<uint64_t> cum_;    // cumulative weights
  uint64_t total_ = 0;
  std::map<int64_t, uint64_t> pending_;  // counts added since the last freeze()
};

struct BaselineRequest {
  std::optional<std::string> service;
  std::optional<int64_t> num_edges;
  std::optional<int> depth;
  int max_attempts = 200;  // rejection sampling cap when num_edges/depth are set
};

struct BaselineResult {
  CallGraph graph;
  bool matched = true;  // false when targets were set and no attempt met them
  int attempts = 1;
};

class ProbabilisticModel {
 public:
  // Draws one graph. Throws std::logic_error when the model was fitted on no graphs.
  BaselineResult generate(Rng& rng, const BaselineRequest& req = {}) const;
  CallGraph generate_graph(Rng& rng) const { return generate(rng).graph; }

  bool has_service(const std::string& s) const { return service_index_.count(s) != 0; }
  uint64_t fitted_graphs() const { return fitted_graphs_; }
  int max_depth() const { return max_depth_; }
  int64_t max_edges() const { return max_edges_; }
  double p_sequential() const { return p_sequential_; }
  size_t num_services() const { return services_.size(); }
  size_t num_microservices() const { return names_.size(); }

  // Self-contained JSON (format "tracelm-probabilistic", version 1).
  nlohmann::json to_json() const;
  // Throws std::runtime_error on a malformed or foreign document.
  static ProbabilisticModel from_json(const nlohmann::json& j);
  void save(const std::string& path) const;                 // atomic write
  static ProbabilisticModel load(const std::string& path);  // throws InputError

 private:
  friend class ProbabilisticFitter;
  struct Service {
    std::string id;
    Categorical roots;  // value = callee_id * 8 + type
  };
  static int64_t key2(int64_t a, int64_t b) { return a * 8 + b; }  // b < 8 (a type)

  CallGraph sample_once(Rng& rng, const Service* svc, const std::string& service_id) const;
  int64_t sample_children(Rng& rng, int depth, int type) const;
  int sample_child_type(Rng& rng, int depth, int parent_type) const;
  int32_t sample_callee(Rng& rng, int32_t caller, int type, int depth) const;
  int64_t sample_duration(Rng& rng, int type, int depth) const;

  uint64_t fitted_graphs_ = 0;
  int max_depth_ = 0;
  int64_t max_edges_ = 0;
  double p_sequential_ = 0.5;
  std::vector<std::string> names_;  // microservice names by id
  std::vector<Service> services_;
  std::map<std::string, size_t> service_index_;
  Categorical service_dist_;                         // value = index into services_
  Categorical all_roots_;                            // roots of all services
  std::map<int64_t, Categorical> children_;          // key2(depth, type) -> count
  std::map<int64_t, Categorical> children_depth_;    // depth -> count
  std::map<int64_t, Categorical> child_type_;        // key2(child depth, parent type) -> type
  std::map<int64_t, Categorical> child_type_depth_;  // child depth -> type
  Categorical type_all_;
  std::map<int64_t, Categorical> callee_;            // key2(caller id, type) -> callee id
  std::map<int64_t, Categorical> callee_by_depth_;   // key2(depth, type) -> callee id
  std::map<int64_t, Categorical> callee_by_type_;    // type -> callee id
  std::map<int64_t, std::vector<int64_t>> rt_;       // key2(depth, type) -> reservoir
  std::map<int64_t, std::vector<int64_t>> rt_type_;  // type -> reservoir
  std::vector<int64_t> rt_all_;
};

struct ProbabilisticOptions {
  size_t reservoir = 1000;  // response times kept per (type, depth) cell
  uint64_t seed = 1;        // reservoir sampling
  int max_depth_cap = 15;   // generated depth <= min(deepest fitted graph, this)
};

// Fits a model from graphs given one at a time. Graphs with a validation error
// are skipped (counted in skipped()); warnings (clock skew) are kept.
class ProbabilisticFitter {
 public:
  explicit ProbabilisticFitter(ProbabilisticOptions opt = {});
  void add(const CallGraph& g);
  uint64_t skipped() const { return skipped_; }
  ProbabilisticModel finish();

 private:
  struct Reservoir {
    uint64_t seen = 0;
    std::vector<int64_t> values;
  };
  void offer(Reservoir& r, int64_t v);
  int32_t intern(const std::string& name);

  ProbabilisticOptions opt_;
  Rng rng_;
  ProbabilisticModel m_;
  std::map<std::string, int32_t> ids_;
  uint64_t skipped_ = 0, layers_multi_ = 0, layers_sequential_ = 0;
  std::map<int64_t, Reservoir> rt_, rt_type_;
  Reservoir rt_all_;
};

ProbabilisticModel fit_probabilistic(const std::vector<CallGraph>& graphs,
                                     ProbabilisticOptions opt = {});

}  // namespace tracelm
