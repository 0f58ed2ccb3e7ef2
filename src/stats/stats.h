// Corpus statistics: what a set of call graphs looks like.
//
// Contract:
//  - CorpusStats accumulates graphs one at a time (add()), then reports as
//    text or JSON. Memory: O(distinct services + distinct calls + edges)
//    (response times are kept to compute exact percentiles).
//  - Fan-out counts, for every edge whose callee makes calls, how many calls
//    it makes (the size of the layer under it).
//  - Response time of an edge = finish - start (ms); latency of a graph = the
//    root edge's finish.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"

namespace tracelm {

class CorpusStats {
 public:
  void add(const CallGraph& g);

  uint64_t graphs() const { return graphs_; }
  uint64_t edges() const { return edges_; }
  uint64_t valid_graphs() const { return valid_; }
  const std::map<int, uint64_t>& depth_hist() const { return depth_; }
  const std::map<int64_t, uint64_t>& edges_hist() const { return num_edges_; }
  const std::map<int64_t, uint64_t>& fanout_hist() const { return fanout_; }
  const std::array<uint64_t, kNumCallTypes + 1>& type_counts() const { return types_; }
  // Value at quantile q (0..1) of the response times (all types, or one type).
  int64_t rt_quantile(double q) const;
  int64_t rt_quantile(CallType t, double q) const;

  nlohmann::ordered_json to_json(size_t top_n = 20) const;
  std::string to_text(size_t top_n = 10) const;

 private:
  struct CallKey {
    std::string caller, callee;
    CallType type;
    bool operator==(const CallKey&) const = default;
  };
  struct CallKeyHash {
    size_t operator()(const CallKey& k) const {
      return std::hash<std::string>()(k.caller) * 31 ^ std::hash<std::string>()(k.callee) * 7 ^
             static_cast<size_t>(k.type);
    }
  };
  uint64_t graphs_ = 0, edges_ = 0, valid_ = 0;
  std::map<int, uint64_t> depth_;
  std::map<std::string, uint64_t> labels_;  // graphs per label (labelled corpora only)
  std::map<int64_t, uint64_t> num_edges_, fanout_;
  std::array<uint64_t, kNumCallTypes + 1> types_{};
  std::map<int, std::array<uint64_t, kNumCallTypes + 1>> types_by_depth_;
  std::unordered_map<std::string, uint64_t> services_, microservices_;
  std::unordered_map<CallKey, uint64_t, CallKeyHash> calls_;
  mutable std::array<std::vector<int64_t>, kNumCallTypes + 1> rt_;
  mutable bool sorted_ = true;
  std::vector<int64_t> latency_;
  void sort() const;
};

}  // namespace tracelm
