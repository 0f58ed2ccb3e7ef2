// Corpus statistics behind the special natural-language conditions of the
// instruction format (docs/encodings.md §4.3): rare calls and high latency.
//
// - A call (caller, callee, type) is rare for a service when it appears in
//   fewer than 10% of that service's graphs.
// - A graph has high latency when the service's latency p90 - mean > 5 ms
//   and the graph's latency >= that p90.
// Contract: built once from a corpus (add() each graph, then finalize()),
// then read-only and safe to share between threads; saved with the model as
// JSON (to_json/from_json) so that generation uses the same thresholds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"

namespace tracelm {

class ConditionStats {
 public:
  static constexpr double kRareFraction = 0.1;
  static constexpr double kHighLatencyGapMs = 5.0;

  void add(const CallGraph& g);
  void finalize();  // computes the latency statistics

  bool is_rare_call(const std::string& service, const std::string& caller,
                    const std::string& callee, CallType type) const;
  bool is_high_latency(const std::string& service, int64_t latency_ms) const;
  // Per service: latency p90 and mean (0 when unknown).
  double latency_p90(const std::string& service) const;
  double latency_mean(const std::string& service) const;
  uint64_t graphs(const std::string& service) const;
  // Every callee of every service's calls, sorted, without repeats.
  std::vector<std::string> callees() const;
  // Per caller (USER included), the callees it calls in the corpus, sorted,
  // without repeats.
  std::map<std::string, std::vector<std::string>> callees_by_caller() const;

  nlohmann::json to_json() const;
  static ConditionStats from_json(const nlohmann::json& j);

 private:
  struct Service {
    uint64_t graphs = 0;
    std::vector<int64_t> latencies;  // cleared by finalize()
    double p90 = 0, mean = 0;
    std::map<std::string, uint64_t> calls;  // "caller callee type" -> graphs containing it
  };
  static std::string call_key(const std::string& caller, const std::string& callee, CallType t);
  std::map<std::string, Service> services_;
};

}  // namespace tracelm
