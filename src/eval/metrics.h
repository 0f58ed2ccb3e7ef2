// Realism metrics: how much a synthetic set of call graphs looks like a real
// one (paper §4.2 and Appendix D.3). Every definition here is written out in
// docs/metrics.md; the tests (tests/metrics_test.cc) check each against
// hand-computed values.
//
// Contract:
//  - GraphSetProfile collects, in one pass over a set of graphs, everything
//    the metrics need (call counts, callee counts, per-node degrees, response
//    times, structure statistics). Memory: O(distinct calls + microservices +
//    edges).
//  - The metric functions are pure: profiles in, numbers out; they never throw
//    on empty sets (an undefined value is reported as such: Emd::defined).
//  - RealismReport::compute() evaluates one synthetic set against one real
//    profile: validity over all synthetic graphs; the distribution metrics
//    over the synthetic graphs without validation errors (RealismOptions::
//    valid_only, default, as in the paper); memorization over all synthetic
//    graphs. to_json() holds every number and the points the report's plots
//    need (CDF quantiles, popular-call bars, heavy-hitter curve, the callers
//    whose flows differ most).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"
#include "core/validate.h"
#include "stats/stats.h"

namespace tracelm {

// Additive smoothing of the popular-call KL divergence: each probability gets
// kKlEpsilon added, then the distribution is renormalized.
inline constexpr double kKlEpsilon = 1e-6;
inline constexpr size_t kPopularCalls = 100;
inline constexpr std::array<size_t, 6> kHeavyHitterKs = {10, 20, 50, 100, 200, 500};
inline constexpr size_t kFlowCallersInJson = 20;  // the callers whose flows differ most
inline constexpr int kCdfPoints = 101;            // quantiles 0, 0.01, ..., 1 in the JSON

// A call: (caller, callee, type), counted once per edge.
struct Call {
  std::string caller, callee;
  CallType type = CallType::kHttp;
  auto operator<=>(const Call&) const = default;
};

class GraphSetProfile {
 public:
  void add(const CallGraph& g);

  uint64_t graphs = 0, edges = 0;
  std::map<Call, uint64_t> calls;                // edges per (caller, callee, type)
  std::map<std::string, uint64_t> callee_calls;  // edges per callee microservice
  // One value per (graph, microservice of the graph): edges of the graph whose
  // callee (in_degree) / caller (out_degree) is that microservice. The
  // microservices of a graph: every distinct caller and callee except USER.
  std::vector<double> in_degree, out_degree;
  std::vector<double> response_time;    // finish - start, one per edge
  std::vector<double> edges_per_graph;  // one per graph
  std::vector<double> depth;            // one per graph
  std::vector<double> fanout;           // calls made under an edge, per edge with >= 1 child
  CorpusStats stats;
};

// ---- popular calls

// KL(P || Q) in nats between two distributions over the same n items, given
// as non-negative weights (normalized here: P(i) = p[i] / sum p, 0 when the
// sum is 0), with additive smoothing P'(i) = (P(i) + eps) / (sum P + n eps),
// likewise Q'. Returns 0 for n = 0.
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q,
                     double eps = kKlEpsilon);

// The popular-call KL: KL(P' || Q') (P real, Q synthetic) over n + 1 buckets,
// the real set's top-n calls and "other" (every edge that is none of them),
// each set normalized over all of its edges. A synthetic set that makes none
// of the popular calls puts all its mass on "other" and gets a large KL.
struct PopularCalls {
  std::vector<Call> calls;  // the real set's top-n calls, most frequent first
  std::vector<uint64_t> real_counts, synthetic_counts;
  std::vector<double> real_p, synthetic_p;         // counts / all edges of the set (0 if no edges)
  uint64_t real_other = 0, synthetic_other = 0;    // edges that are none of the n calls
  double real_other_p = 0, synthetic_other_p = 0;  // ... / all edges of the set
  double synthetic_share = 0;  // fraction of all synthetic edges that are one of the n calls
  // Both sets have edges; otherwise kl is 0 and means nothing (JSON null).
  bool defined = false;
  // kl_divergence(real_counts + real_other, synthetic_counts + synthetic_other, eps).
  double kl = 0;
};
// The real top-n calls by count (ties: caller, callee, type ascending), fewer
// when the real set has fewer distinct calls.
PopularCalls popular_calls(const GraphSetProfile& real, const GraphSetProfile& synthetic,
                           size_t n = kPopularCalls, double eps = kKlEpsilon);

// ---- caller flows

// Where each caller sends its calls. For each caller c of the real set (a
// microservice or USER), P_c is the distribution of c's real edges over
// (callee, type) and Q_c that of its synthetic edges; JS_c = JS(P_c, Q_c),
// the Jensen-Shannon divergence in bits (0: the same split, 1: disjoint;
// 1 when the synthetic set has no edge from c). The metric is
// sum over c of w_c JS_c, w_c = c's share of all real edges: 0 when every
// caller splits its calls as in the real set, at most 1. Unlike the
// popular-call KL, a flow the synthetic set drops (a rarely-called
// microservice that stops calling one of its callees) counts at its caller's
// weight instead of vanishing among 100 buckets. Callers only the synthetic
// set has are not counted (their edges are in the popular calls' "other").
struct CallerFlow {
  std::string caller;
  uint64_t real_edges = 0, synthetic_edges = 0;
  double weight = 0;  // real_edges / all real edges
  double js = 0;      // JS(P_c, Q_c), bits
  // The (callee, type) whose share of c's edges differs most between the
  // sets (ties: the first in (callee, type) order), and its two shares.
  Call most_changed;
  double real_share = 0, synthetic_share = 0;
};
struct CallerFlows {
  bool defined = false;  // both sets have edges; otherwise js is 0 and means nothing
  double js = 0;         // sum over callers of weight * js
  // Every real caller, by weight * js descending (ties: caller ascending).
  std::vector<CallerFlow> callers;
};
// JS divergence in bits between two distributions over the same n items,
// given as non-negative weights (normalized here); 1 when exactly one of them
// sums to 0, 0 when both do.
double js_divergence(const std::vector<double>& p, const std::vector<double>& q);
CallerFlows caller_flows(const GraphSetProfile& real, const GraphSetProfile& synthetic);

// ---- heavy hitters

// The k microservices with the most calls (ties: name ascending); all of
// them when there are fewer than k.
std::vector<std::string> top_k(const std::map<std::string, uint64_t>& counts, size_t k);

struct HeavyHitterPoint {
  size_t k = 0;
  size_t k_effective = 0;  // min(k, microservices in the real set)
  size_t overlap = 0;      // |top_keff(real) ∩ top_keff(synthetic)|
  double accuracy = 0;     // overlap / k_effective (0 when k_effective = 0)
  // With RealismOptions::runs > 1: accuracy is the mean over the runs (the
  // synthetic set cut into that many consecutive parts, as the paper's
  // repeated generations), accuracy_sd their standard deviation; overlap
  // stays that of the whole set.
  size_t runs = 1;
  double accuracy_sd = 0;
};
std::vector<HeavyHitterPoint> heavy_hitters(const GraphSetProfile& real,
                                            const GraphSetProfile& synthetic,
                                            const std::vector<size_t>& ks = {kHeavyHitterKs.begin(),
                                                                             kHeavyHitterKs.end()});
// Sets each point's accuracy to the mean of its runs' accuracies
// (acc[k][run]) and accuracy_sd to their standard deviation.
void set_heavy_hitter_runs(std::vector<HeavyHitterPoint>& points,
                           const std::vector<std::vector<double>>& acc);

// ---- distances between 1-D distributions

// Wasserstein-1 (earth mover's) distance between the empirical distributions
// of two samples: the integral of |F_a(x) - F_b(x)| dx. 0 if either is empty.
double wasserstein1(std::vector<double> a, std::vector<double> b);

// Value at quantile q of sorted values: sorted[round(q * (n - 1))] (0 when empty).
double quantile_sorted(const std::vector<double>& sorted, double q);

struct Emd {
  bool defined = false;  // both samples non-empty
  double w1 = 0;         // wasserstein1(real, synthetic)
  double real_mean = 0, synthetic_mean = 0;
  double normalized = 0;                        // w1 / real_mean (w1 itself when real_mean is 0)
  std::vector<double> real_cdf, synthetic_cdf;  // kCdfPoints quantiles each
};
Emd normalized_emd(const std::vector<double>& real, const std::vector<double>& synthetic);

// ---- memorization

// Training graphs by content (service + canonical edges; trace id ignored).
class TrainingIndex {
 public:
  void add(const CallGraph& g);
  bool contains(const CallGraph& g) const;
  size_t size() const { return keys_.size(); }

 private:
  static std::string key(const CallGraph& g);
  std::unordered_set<std::string> keys_;
};

struct Memorization {
  uint64_t graphs = 0;     // synthetic graphs checked (all of them)
  uint64_t memorized = 0;  // of which identical in content to a training graph
  double rate = 0;         // memorized / graphs (0 when none)
};

// ---- the report

struct RealismOptions {
  size_t popular_calls = kPopularCalls;
  double kl_epsilon = kKlEpsilon;
  std::vector<size_t> heavy_hitter_ks{kHeavyHitterKs.begin(), kHeavyHitterKs.end()};
  bool valid_only = true;  // distribution metrics over synthetic graphs without errors
  size_t runs = 1;         // heavy hitters: averaged over this many parts of the set
};

struct StructureSummary {
  uint64_t graphs = 0, edges = 0;
  double mean_edges = 0, mean_depth = 0, mean_fanout = 0;
  static StructureSummary of(const GraphSetProfile& p);
  nlohmann::ordered_json to_json() const;
};

struct RealismReport {
  std::string name;
  // How the set was made (eval/provenance.h: "like val.jsonl", "open",
  // "fixed"); empty when the set has no provenance file.
  std::string protocol;
  ValidationSummary validity;  // over all synthetic graphs
  uint64_t evaluated = 0;      // synthetic graphs in the distribution metrics
  PopularCalls popular;
  CallerFlows flows;
  std::vector<HeavyHitterPoint> heavy_hitters;
  // "in_degree", "out_degree", "response_time" (the paper's three), then
  // "edges_per_graph", "depth", "fanout".
  std::vector<std::pair<std::string, Emd>> emd;
  StructureSummary real_structure, synthetic_structure;
  nlohmann::ordered_json real_stats, synthetic_stats;  // CorpusStats::to_json
  std::optional<Memorization> memorization;            // when a training index is given
  RealismOptions options;
  // A set of calls, not graphs (eval/call_rows.h calls_report): only the
  // metrics defined on calls are computed; the others are n/a.
  bool calls_only = false;

  double validity_rate() const;         // valid (no error) / graphs
  double strict_validity_rate() const;  // no violation at all / graphs
  const Emd* find_emd(const std::string& what) const;

  static RealismReport compute(std::string name, const GraphSetProfile& real,
                               const std::vector<CallGraph>& synthetic,
                               const TrainingIndex* train = nullptr,
                               const RealismOptions& opt = {});
  nlohmann::ordered_json to_json() const;
};

}  // namespace tracelm
