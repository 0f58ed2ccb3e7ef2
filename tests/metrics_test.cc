// Realism metrics against hand-computed values (definitions: docs/metrics.md).
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "eval/metrics.h"
#include "test_util.h"

namespace tracelm {
namespace {

Edge edge(const char* id, const char* caller, const char* callee, CallType t, int64_t s,
          int64_t f) {
  return Edge{*RpcId::parse(id), caller, callee, t, s, f};
}

// Real set of the tests:
//  G1: 0 USER->A http [0,10]; 0.1 A->B rpc [1,5]; 0.2 A->B rpc [2,6]; 0.2.1 B->C db [3,4]
//  G2: 0 USER->A http [0,4];  0.1 A->B rpc [0,2]
// Calls: (A,B,rpc) 3, (USER,A,http) 2, (B,C,db) 1. Callees: B 3, A 2, C 1.
CallGraph g1() {
  CallGraph g;
  g.service = "S_1";
  g.trace_id = "T_1";
  g.edges = {
      edge("0", "USER", "A", CallType::kHttp, 0, 10), edge("0.1", "A", "B", CallType::kRpc, 1, 5),
      edge("0.2", "A", "B", CallType::kRpc, 2, 6), edge("0.2.1", "B", "C", CallType::kDb, 3, 4)};
  return g;
}

CallGraph g2() {
  CallGraph g;
  g.service = "S_2";
  g.trace_id = "T_2";
  g.edges = {edge("0", "USER", "A", CallType::kHttp, 0, 4),
             edge("0.1", "A", "B", CallType::kRpc, 0, 2)};
  return g;
}

// Synthetic S1: 0 USER->A http [0,3]; 0.1 A->C mc [0,1].
CallGraph s1() {
  CallGraph g;
  g.service = "S_1";
  g.edges = {edge("0", "USER", "A", CallType::kHttp, 0, 3),
             edge("0.1", "A", "C", CallType::kMc, 0, 1)};
  return g;
}

GraphSetProfile profile(const std::vector<CallGraph>& gs) {
  GraphSetProfile p;
  for (const CallGraph& g : gs) p.add(g);
  return p;
}

TEST(Metrics, KlDivergenceFormula) {
  // P = (3/4, 1/4), Q = (1/2, 1/2), no smoothing: 0.75 ln 1.5 + 0.25 ln 0.5.
  EXPECT_NEAR(kl_divergence({3, 1}, {1, 1}, 0), 0.130812035941137, 1e-12);
  // Smoothing eps = 0.01 on P = (1/2, 1/2), Q = (1, 0):
  // P' = (0.51/1.02, 0.51/1.02), Q' = (1.01/1.02, 0.01/1.02).
  EXPECT_NEAR(kl_divergence({1, 1}, {2, 0}, 0.01), 1.624265374303696, 1e-12);
  EXPECT_NEAR(kl_divergence({5, 2, 1}, {10, 4, 2}), 0, 1e-12);  // same distribution
  // An empty synthetic side becomes uniform after smoothing: KL(P || uniform).
  EXPECT_NEAR(kl_divergence({1, 1}, {0, 0}), 0, 1e-12);
  EXPECT_EQ(kl_divergence({}, {}), 0);
}

TEST(Metrics, GraphProfileDegreesAndTimes) {
  GraphSetProfile p = profile({g1(), g2()});
  EXPECT_EQ(p.graphs, 2u);
  EXPECT_EQ(p.edges, 6u);
  // G1 nodes A, B, C: in 1, 2, 1; out 2, 1, 0. G2 nodes A, B: in 1, 1; out 1, 0.
  EXPECT_EQ(p.in_degree, (std::vector<double>{1, 2, 1, 1, 1}));
  EXPECT_EQ(p.out_degree, (std::vector<double>{2, 1, 0, 1, 0}));
  EXPECT_EQ(p.response_time, (std::vector<double>{10, 4, 4, 1, 4, 2}));
  EXPECT_EQ(p.edges_per_graph, (std::vector<double>{4, 2}));
  EXPECT_EQ(p.depth, (std::vector<double>{3, 2}));
  EXPECT_EQ(p.fanout, (std::vector<double>{2, 1, 1}));  // G1: 0 -> 2, 0.2 -> 1; G2: 0 -> 1
  EXPECT_EQ(p.calls.at(Call{"A", "B", CallType::kRpc}), 3u);
  EXPECT_EQ(p.callee_calls.at("B"), 3u);
  EXPECT_EQ(p.callee_calls.count("USER"), 0u);
}

TEST(Metrics, PopularCallsHandComputed) {
  GraphSetProfile real = profile({g1(), g2()}), syn = profile({s1()});
  PopularCalls pc = popular_calls(real, syn, 2);
  ASSERT_EQ(pc.calls.size(), 2u);
  EXPECT_EQ(pc.calls[0], (Call{"A", "B", CallType::kRpc}));
  EXPECT_EQ(pc.calls[1], (Call{"USER", "A", CallType::kHttp}));
  EXPECT_EQ(pc.real_counts, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(pc.synthetic_counts, (std::vector<uint64_t>{0, 1}));
  // "other": real (B,C,db) 1 of 6 edges; synthetic (A,C,mc) 1 of 2 edges.
  EXPECT_EQ(pc.real_other, 1u);
  EXPECT_EQ(pc.synthetic_other, 1u);
  EXPECT_DOUBLE_EQ(pc.real_p[0], 0.5);  // 3 of all 6 real edges
  EXPECT_DOUBLE_EQ(pc.real_other_p, 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(pc.synthetic_p[1], 0.5);  // 1 of the 2 synthetic edges
  EXPECT_DOUBLE_EQ(pc.synthetic_other_p, 0.5);
  EXPECT_DOUBLE_EQ(pc.synthetic_share, 0.5);
  EXPECT_TRUE(pc.defined);
  // Buckets (A,B,rpc), (USER,A,http), other: P = (1/2, 1/3, 1/6), Q = (0, 1/2, 1/2).
  // eps = e = 1e-6 over 3 buckets: P'i = (Pi + e) / (1 + 3e), Q'i = (Qi + e) / (1 + 3e);
  // KL(P'||Q') = P'1 ln((1/2 + e)/e) + P'2 ln((1/3 + e)/(1/2 + e)) + P'3 ln((1/6 + e)/(1/2 + e))
  //            = 0.5 * 13.1224 + 0.3333 * (-0.4055) + 0.1667 * (-1.0986) = 6.242919494084757.
  const double e = kKlEpsilon, d = 1 + 3 * e;
  EXPECT_NEAR(pc.kl,
              (0.5 + e) / d * std::log((0.5 + e) / e) +
                  (1.0 / 3 + e) / d * std::log((1.0 / 3 + e) / (0.5 + e)) +
                  (1.0 / 6 + e) / d * std::log((1.0 / 6 + e) / (0.5 + e)),
              1e-12);
  EXPECT_NEAR(pc.kl, 6.242919494084757, 1e-9);
  // Fewer distinct real calls than n: all 3 are taken, and the real "other" is empty.
  PopularCalls all = popular_calls(real, syn, 100);
  EXPECT_EQ(all.calls.size(), 3u);
  EXPECT_EQ(all.calls[2], (Call{"B", "C", CallType::kDb}));
  EXPECT_EQ(all.real_other, 0u);
  EXPECT_EQ(all.synthetic_other, 1u);
  // Same set on both sides: KL 0.
  EXPECT_NEAR(popular_calls(real, real).kl, 0, 1e-12);
  EXPECT_NEAR(popular_calls(real, real, 2).kl, 0, 1e-12);
  // An empty synthetic set: undefined, not "uniform".
  PopularCalls none = popular_calls(real, GraphSetProfile{});
  EXPECT_FALSE(none.defined);
  EXPECT_EQ(none.kl, 0);
}

// The artifact this definition fixes: restricted to the popular calls and
// renormalized, a set that makes none of them used to get a uniform Q and a
// lower KL (0.087 here) than a set that makes two of the three (1.869).
TEST(Metrics, PopularCallsMissingEveryCallIsPenalized) {
  GraphSetProfile real = profile({g1(), g2()});
  CallGraph other;  // none of the real calls: 0 USER->X http [0,2]; 0.1 X->Y rpc [0,1]
  other.service = "S_1";
  other.edges = {edge("0", "USER", "X", CallType::kHttp, 0, 2),
                 edge("0.1", "X", "Y", CallType::kRpc, 0, 1)};
  PopularCalls none = popular_calls(real, profile({other}));
  PopularCalls shared = popular_calls(real, profile({g2()}));
  // Buckets (A,B,rpc), (USER,A,http), (B,C,db), other; P = (1/2, 1/3, 1/6, 0).
  // e = 1e-6, 4 buckets: P'i = (Pi + e) / (1 + 4e), Q'i = (Qi + e) / (1 + 4e).
  // None of the calls: Q = (0, 0, 0, 1):
  //   KL = P'1 ln((1/2 + e)/e) + P'2 ln((1/3 + e)/e) + P'3 ln((1/6 + e)/e) + P'4 ln(e/(1 + e))
  //      = 6.5612 + 4.2390 + 2.0040 - 0.0000 = 12.804082124435105.
  EXPECT_DOUBLE_EQ(none.synthetic_share, 0.0);
  EXPECT_EQ(none.synthetic_other, 2u);
  EXPECT_NEAR(none.kl, 12.804082124435105, 1e-9);
  // G2 (A,B,rpc) 1, (USER,A,http) 1: Q = (1/2, 1/2, 0, 0):
  //   KL = P'1 ln 1 + P'2 ln((1/3 + e)/(1/2 + e)) + P'3 ln((1/6 + e)/e) + P'4 ln 1
  //      = 0 - 0.1352 + 2.0040 + 0 = 1.8688089551399751.
  EXPECT_NEAR(shared.kl, 1.8688089551399751, 1e-9);
  EXPECT_GT(none.kl, shared.kl);
  // Same with the top 2 only (the third real call joins "other"): P = (1/2, 1/3, 1/6),
  // Q = (0, 0, 1) -> 0.5 ln((1/2 + e)/e) + (1/3) ln((1/3 + e)/e) + (1/6) ln((1/6 + e)/(1 + e))
  // (each P' = (P + e)/(1 + 3e)) = 10.501516576553241, against G2's Q = (1/2, 1/2, 0): 1.8688.
  EXPECT_NEAR(popular_calls(real, profile({other}), 2).kl, 10.501516576553241, 1e-9);
  EXPECT_LT(popular_calls(real, profile({g2()}), 2).kl, 1.87);
}

TEST(Metrics, JsDivergenceFormula) {
  EXPECT_NEAR(js_divergence({1, 0}, {0, 1}), 1, 1e-12);  // disjoint
  EXPECT_NEAR(js_divergence({2, 6}, {1, 3}), 0, 1e-12);  // the same split
  // (1, 0) vs (1/2, 1/2): M = (3/4, 1/4);
  // 1/2 [log2(4/3)] + 1/2 [1/2 log2(2/3) + 1/2 log2 2] = 0.31127812445913283.
  EXPECT_NEAR(js_divergence({1, 0}, {1, 1}), 0.31127812445913283, 1e-12);
  EXPECT_NEAR(js_divergence({1, 1}, {1, 0}), 0.31127812445913283, 1e-12);  // symmetric
  EXPECT_EQ(js_divergence({3}, {0}), 1);                                   // one side empty
  EXPECT_EQ(js_divergence({0}, {0}), 0);
}

// Real callers: USER 2 of 6 edges (-> A http), A 3 (-> B rpc), B 1 (-> C db).
TEST(Metrics, CallerFlowsHandComputed) {
  GraphSetProfile real = profile({g1(), g2()});
  // S1: USER -> A (the same split), A -> C mc (disjoint from A -> B rpc), nothing from B.
  CallerFlows f = caller_flows(real, profile({s1()}));
  ASSERT_TRUE(f.defined);
  ASSERT_EQ(f.callers.size(), 3u);
  EXPECT_EQ(f.callers[0].caller, "A");  // weight 1/2 x JS 1
  EXPECT_DOUBLE_EQ(f.callers[0].weight, 0.5);
  EXPECT_NEAR(f.callers[0].js, 1, 1e-12);
  EXPECT_EQ(f.callers[0].real_edges, 3u);
  EXPECT_EQ(f.callers[0].synthetic_edges, 1u);
  // B rpc and C mc both changed by 1: the first in (callee, type) order.
  EXPECT_EQ(f.callers[0].most_changed, (Call{"A", "B", CallType::kRpc}));
  EXPECT_DOUBLE_EQ(f.callers[0].real_share, 1);
  EXPECT_DOUBLE_EQ(f.callers[0].synthetic_share, 0);
  EXPECT_EQ(f.callers[1].caller, "B");  // weight 1/6 x JS 1 (no synthetic edge from B)
  EXPECT_EQ(f.callers[1].synthetic_edges, 0u);
  EXPECT_EQ(f.callers[2].caller, "USER");  // JS 0
  EXPECT_NEAR(f.callers[2].js, 0, 1e-12);
  EXPECT_NEAR(f.js, 0.5 + 1.0 / 6, 1e-12);
  // S1 + G2: A splits (1/2 B rpc, 1/2 C mc) against (1, 0): JS 0.3113.
  CallerFlows half = caller_flows(real, profile({s1(), g2()}));
  EXPECT_NEAR(half.js, 0.5 * 0.31127812445913283 + 1.0 / 6, 1e-12);
  EXPECT_EQ(half.callers[0].caller, "B");  // 1/6 > 0.156
  EXPECT_NEAR(caller_flows(real, real).js, 0, 1e-12);
  EXPECT_FALSE(caller_flows(real, GraphSetProfile{}).defined);
}

TEST(Metrics, TopKTiesByName) {
  std::map<std::string, uint64_t> c{{"MS_b", 5}, {"MS_a", 5}, {"MS_c", 7}, {"MS_d", 1}};
  EXPECT_EQ(top_k(c, 2), (std::vector<std::string>{"MS_c", "MS_a"}));
  EXPECT_EQ(top_k(c, 10).size(), 4u);
}

TEST(Metrics, HeavyHittersHandComputed) {
  GraphSetProfile real = profile({g1(), g2()}), syn = profile({s1()});
  // Real: B 3, A 2, C 1. Synthetic: A 1, C 1 (tie: A first).
  auto hh = heavy_hitters(real, syn, {1, 2, 5});
  ASSERT_EQ(hh.size(), 3u);
  EXPECT_EQ(hh[0].overlap, 0u);  // {B} vs {A}
  EXPECT_DOUBLE_EQ(hh[0].accuracy, 0.0);
  EXPECT_EQ(hh[1].overlap, 1u);  // {B, A} vs {A, C}
  EXPECT_DOUBLE_EQ(hh[1].accuracy, 0.5);
  EXPECT_EQ(hh[2].k, 5u);  // only 3 real microservices: K capped at 3
  EXPECT_EQ(hh[2].k_effective, 3u);
  EXPECT_EQ(hh[2].overlap, 2u);  // {A, B, C} vs {A, C}
  EXPECT_DOUBLE_EQ(hh[2].accuracy, 2.0 / 3.0);
  auto none = heavy_hitters(GraphSetProfile{}, syn, {10});
  EXPECT_EQ(none[0].k_effective, 0u);
  EXPECT_EQ(none[0].accuracy, 0);
}

TEST(Metrics, HeavyHittersAveragedOverRuns) {
  GraphSetProfile real = profile({g1(), g2()});  // callees B 3, A 2, C 1
  RealismOptions opt;
  opt.heavy_hitter_ks = {1, 2};
  opt.runs = 2;
  // Run 1 = {S1}: A 1, C 1 -> K=1 {A}: 0; K=2 {A, C}: 1/2.
  // Run 2 = {G2}: A 1, B 1 -> K=1 {A} (tie by name): 0; K=2 {A, B}: 1.
  RealismReport r = RealismReport::compute("x", real, {s1(), g2()}, nullptr, opt);
  ASSERT_EQ(r.heavy_hitters.size(), 2u);
  EXPECT_EQ(r.heavy_hitters[0].runs, 2u);
  EXPECT_DOUBLE_EQ(r.heavy_hitters[0].accuracy, 0.0);
  EXPECT_DOUBLE_EQ(r.heavy_hitters[0].accuracy_sd, 0.0);
  EXPECT_DOUBLE_EQ(r.heavy_hitters[1].accuracy, 0.75);
  EXPECT_DOUBLE_EQ(r.heavy_hitters[1].accuracy_sd, 0.25);
  EXPECT_EQ(r.heavy_hitters[1].overlap, 2u);  // the whole set: A 2, B 1, C 1 -> {A, B}
  opt.runs = 3;                               // more runs than graphs: one run
  RealismReport one = RealismReport::compute("x", real, {s1(), g2()}, nullptr, opt);
  EXPECT_EQ(one.heavy_hitters[1].runs, 1u);
  EXPECT_DOUBLE_EQ(one.heavy_hitters[1].accuracy, 1.0);
}

TEST(Metrics, Wasserstein1HandComputed) {
  EXPECT_DOUBLE_EQ(wasserstein1({0, 1}, {1, 2}), 1.0);
  // Quantile coupling: u in (0, 2/3): |0 - 1|, u in (2/3, 1): |3 - 1| -> 2/3 + 2/3.
  EXPECT_DOUBLE_EQ(wasserstein1({0, 0, 3}, {1}), 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(wasserstein1({3, 0, 0}, {1}), wasserstein1({1}, {0, 3, 0}));  // symmetric
  EXPECT_DOUBLE_EQ(wasserstein1({2, 5, 5}, {5, 2, 5}), 0.0);
  EXPECT_DOUBLE_EQ(wasserstein1({}, {1}), 0.0);
}

TEST(Metrics, NormalizedEmdHandComputed) {
  GraphSetProfile real = profile({g1(), g2()}), syn = profile({s1()});
  // In-degree: real {1,1,1,1,2} (mean 1.2), synthetic {1,1}: W1 = 0.2 * 1 -> 0.2 / 1.2.
  Emd in = normalized_emd(real.in_degree, syn.in_degree);
  EXPECT_TRUE(in.defined);
  EXPECT_NEAR(in.w1, 0.2, 1e-12);
  EXPECT_NEAR(in.normalized, 0.2 / 1.2, 1e-12);
  // Out-degree: real {0,0,1,1,2} (mean 0.8), synthetic {0,1}:
  // |0.4 - 0.5| * 1 + |0.8 - 1| * 1 = 0.3 -> 0.3 / 0.8.
  Emd out = normalized_emd(real.out_degree, syn.out_degree);
  EXPECT_NEAR(out.w1, 0.3, 1e-12);
  EXPECT_NEAR(out.normalized, 0.375, 1e-12);
  // Response time: real {1,2,4,4,4,10} (mean 25/6), synthetic {1,3}:
  // (0 + 1 + 3 + 1 + 1 + 7) / 6 = 13/6 -> (13/6) / (25/6) = 0.52.
  Emd rt = normalized_emd(real.response_time, syn.response_time);
  EXPECT_NEAR(rt.w1, 13.0 / 6.0, 1e-12);
  EXPECT_NEAR(rt.normalized, 0.52, 1e-12);
  ASSERT_EQ(rt.real_cdf.size(), static_cast<size_t>(kCdfPoints));
  EXPECT_EQ(rt.real_cdf.front(), 1);
  EXPECT_EQ(rt.real_cdf.back(), 10);
  // A real mean of 0: not normalized.
  Emd z = normalized_emd({0, 0}, {1});
  EXPECT_DOUBLE_EQ(z.normalized, 1.0);
  EXPECT_FALSE(normalized_emd({1}, {}).defined);
}

TEST(Metrics, MemorizationIgnoresTraceIdOnly) {
  TrainingIndex idx;
  idx.add(g1());
  idx.add(g2());
  EXPECT_EQ(idx.size(), 2u);
  CallGraph c = g2();
  c.trace_id = "T_other";
  EXPECT_TRUE(idx.contains(c));
  std::swap(c.edges[0], c.edges[1]);  // edge order does not matter
  EXPECT_TRUE(idx.contains(c));
  c = g2();
  c.edges[1].finish_ms = 3;  // any field does
  EXPECT_FALSE(idx.contains(c));
  c = g2();
  c.service = "S_9";
  EXPECT_FALSE(idx.contains(c));
}

TEST(Metrics, RealismReportPutsItTogether) {
  GraphSetProfile real = profile({g1(), g2()});
  TrainingIndex train;
  train.add(g1());
  train.add(g2());
  CallGraph copy = g2();
  copy.trace_id.clear();
  CallGraph invalid;  // no root: excluded from the distribution metrics
  invalid.service = "S_1";
  invalid.edges = {edge("0.1", "A", "B", CallType::kRpc, 0, 1)};
  RealismReport r = RealismReport::compute("syn", real, {s1(), copy, invalid}, &train);
  EXPECT_EQ(r.validity.graphs, 3u);
  EXPECT_EQ(r.validity.valid_graphs, 2u);
  EXPECT_DOUBLE_EQ(r.validity_rate(), 2.0 / 3.0);
  EXPECT_EQ(r.validity.violations[static_cast<int>(Rule::kMissingRoot)], 1u);
  EXPECT_EQ(r.evaluated, 2u);
  // Synthetic calls over S1 + G2 (4 edges): (A,B,rpc) 1, (USER,A,http) 2, (B,C,db) 0,
  // other 1 (A,C,mc); real top 3 (3, 2, 1), other 0. P = (1/2, 1/3, 1/6, 0),
  // Q = (1/4, 1/2, 0, 1/4); e = 1e-6, P'i = (Pi + e) / (1 + 4e), likewise Q':
  // KL = P'1 ln((1/2 + e)/(1/4 + e)) + P'2 ln((1/3 + e)/(1/2 + e)) + P'3 ln((1/6 + e)/e)
  //      + P'4 ln(e/(1/4 + e)) = 0.3466 - 0.1352 + 2.0040 - 0.0000 = 2.21536842311006.
  EXPECT_EQ(r.popular.synthetic_counts, (std::vector<uint64_t>{1, 2, 0}));
  EXPECT_EQ(r.popular.synthetic_other, 1u);
  EXPECT_NEAR(r.popular.kl, 2.21536842311006, 1e-9);
  // Caller flows over S1 + G2: CallerFlowsHandComputed's second case.
  EXPECT_NEAR(r.flows.js, 0.3223057288962331, 1e-12);
  ASSERT_TRUE(r.memorization);
  EXPECT_EQ(r.memorization->memorized, 1u);
  EXPECT_DOUBLE_EQ(r.memorization->rate, 1.0 / 3.0);
  EXPECT_EQ(r.heavy_hitters.size(), kHeavyHitterKs.size());
  EXPECT_DOUBLE_EQ(r.real_structure.mean_edges, 3.0);
  EXPECT_DOUBLE_EQ(r.synthetic_structure.mean_edges, 2.0);
  ASSERT_NE(r.find_emd("response_time"), nullptr);

  nlohmann::json j = nlohmann::json::parse(r.to_json().dump());
  EXPECT_EQ(j["name"], "syn");
  EXPECT_EQ(j["validity"]["rules"]["missing_root"]["graphs"], 1);
  EXPECT_EQ(j["popular_calls"]["calls"].size(), 3u);
  EXPECT_EQ(j["popular_calls"]["other"]["synthetic_count"], 1);
  EXPECT_NEAR(j["popular_calls"]["kl"].get<double>(), 2.21536842311006, 1e-9);
  EXPECT_NEAR(j["caller_flows"]["js"].get<double>(), 0.3223057288962331, 1e-12);
  EXPECT_EQ(j["caller_flows"]["callers"][0]["caller"], "B");
  EXPECT_EQ(j["caller_flows"]["callers"][0]["most_changed"]["callee"], "C");
  EXPECT_EQ(j["heavy_hitters"][0]["k"], 10);
  EXPECT_EQ(j["emd"]["in_degree"]["real_cdf"].size(), static_cast<size_t>(kCdfPoints));
  EXPECT_EQ(j["memorization"]["memorized"], 1);
  EXPECT_TRUE(j["stats"]["synthetic"].contains("types_by_depth"));

  // The real set against itself: a perfect score.
  RealismReport self = RealismReport::compute("self", real, {g1(), g2()});
  EXPECT_NEAR(self.popular.kl, 0, 1e-12);
  EXPECT_NEAR(self.flows.js, 0, 1e-12);
  for (auto& p : self.heavy_hitters) EXPECT_DOUBLE_EQ(p.accuracy, 1.0);
  for (auto& [n, e] : self.emd) EXPECT_DOUBLE_EQ(e.normalized, 0.0) << n;
  EXPECT_FALSE(self.memorization);

  // No graph left for the distribution metrics: the KL is undefined (null), like the EMDs.
  RealismReport empty = RealismReport::compute("empty", real, {invalid});
  EXPECT_EQ(empty.evaluated, 0u);
  EXPECT_FALSE(empty.popular.defined);
  EXPECT_TRUE(nlohmann::json::parse(empty.to_json().dump())["popular_calls"]["kl"].is_null());
}

TEST(Metrics, EvaluateCommandWritesJson) {
  testing::TempDir d;
  {
    CorpusWriter w(d.file("real.jsonl"));
    w.write(g1());
    w.write(g2());
    w.close();
    CorpusWriter s(d.file("syn.jsonl"));
    s.write(s1());
    s.write(g2());
    s.close();
  }
  auto r = testing::run_tracelm("evaluate --real " + d.file("real.jsonl") +
                                " --synthetic mine=" + d.file("syn.jsonl") + " --train " +
                                d.file("real.jsonl") + " --json " + d.file("m.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("popular calls KL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("caller flows JS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mine"), std::string::npos);
  nlohmann::json j = nlohmann::json::parse(testing::read_file(d.file("m.json")));
  EXPECT_EQ(j["definitions"]["kl_epsilon"], kKlEpsilon);
  ASSERT_EQ(j["synthetic"].size(), 1u);
  EXPECT_EQ(j["synthetic"][0]["name"], "mine");
  EXPECT_DOUBLE_EQ(j["synthetic"][0]["memorization"]["rate"].get<double>(), 0.5);
  EXPECT_NE(testing::run_tracelm("evaluate --real /nonexistent.jsonl --synthetic x=" +
                                 d.file("syn.jsonl"))
                .status,
            0);
}

}  // namespace
}  // namespace tracelm
