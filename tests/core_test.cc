#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "core/call_graph.h"
#include "core/rpc_id.h"
#include "core/validate.h"

namespace tracelm {
namespace {

RpcId id(const char* s) { return *RpcId::parse(s); }

Edge edge(const char* rpc, const char* caller, const char* callee, CallType t, int64_t s,
          int64_t f) {
  return Edge{id(rpc), caller, callee, t, s, f};
}

// 0: USER->A [0,10]; 0.1: A->B [1,5]; 0.1.1: B->C [2,3]; 0.2: A->D [5,9]
CallGraph sample() {
  CallGraph g;
  g.service = "S_1";
  g.edges = {
      edge("0", "USER", "A", CallType::kHttp, 0, 10), edge("0.1", "A", "B", CallType::kRpc, 1, 5),
      edge("0.1.1", "B", "C", CallType::kDb, 2, 3), edge("0.2", "A", "D", CallType::kMc, 5, 9)};
  return g;
}

std::vector<Rule> rules(const CallGraph& g) {
  std::vector<Rule> r;
  for (auto& v : validate(g)) r.push_back(v.rule);
  return r;
}

TEST(RpcId, ParsesCanonicalOnly) {
  EXPECT_TRUE(RpcId::parse("0"));
  EXPECT_TRUE(RpcId::parse("0.1.12.3"));
  for (const char* bad : {"", ".", "0.", ".1", "0..1", "01", "0.01", "a", "0.1a", "-1",
                          "0.1234567890123456789", "1 "})
    EXPECT_FALSE(RpcId::parse(bad)) << bad;
}

TEST(RpcId, NavigationAndOrder) {
  EXPECT_EQ(id("0.1.12").depth(), 3);
  EXPECT_EQ(id("0.1.12").last(), 12u);
  EXPECT_EQ(id("0.3.1.3339206183").last(), 3339206183u);  // real MQ ids are this long
  EXPECT_EQ(id("0.1.12").parent()->str(), "0.1");
  EXPECT_FALSE(id("0").parent());
  EXPECT_EQ(id("0.1").child(7).str(), "0.1.7");
  std::vector<std::string> want = {"0", "0.1", "0.1.1", "0.1.2", "0.1.10", "0.2", "0.10", "0.10.1"};
  std::vector<RpcId> ids;
  for (auto& s : want) ids.push_back(id(s.c_str()));
  std::mt19937 rng(1);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(ids[i].str(), want[i]);
}

TEST(CallType, Parse) {
  EXPECT_EQ(parse_call_type("http"), CallType::kHttp);
  EXPECT_EQ(parse_call_type("DB"), CallType::kDb);
  EXPECT_EQ(parse_call_type("mq"), CallType::kMq);
  EXPECT_FALSE(parse_call_type("UNKNOWN"));
  EXPECT_FALSE(parse_call_type("userDefined"));
  EXPECT_FALSE(parse_call_type(""));
}

TEST(CallGraph, DerivedAttributes) {
  CallGraph g = sample();
  EXPECT_EQ(g.num_edges(), 4u);
  EXPECT_EQ(g.depth(), 3);
  EXPECT_EQ(g.latency(), 10);
  EXPECT_EQ(g.edges[1].duration_ms(), 4);
}

TEST(CallGraph, IndexAndLayers) {
  CallGraph g = sample();
  std::mt19937 rng(2);
  std::shuffle(g.edges.begin(), g.edges.end(), rng);
  g.canonicalize();
  ASSERT_TRUE(g.is_canonical());
  GraphIndex ix = g.index();
  EXPECT_EQ(ix.roots, std::vector<size_t>{0});
  EXPECT_EQ(ix.parent[1], 0u);
  EXPECT_EQ(ix.parent[2], 1u);
  EXPECT_EQ(ix.parent[3], 0u);
  EXPECT_EQ(ix.children[0], (std::vector<size_t>{1, 3}));
  std::vector<Layer> ls = g.layers();
  ASSERT_EQ(ls.size(), 3u);  // root layer, children of 0, children of 0.1
  EXPECT_EQ(ls[0].start_node, "USER");
  EXPECT_EQ(ls[0].edges, std::vector<size_t>{0});
  EXPECT_EQ(ls[1].start_node, "A");
  EXPECT_EQ(ls[1].edges, (std::vector<size_t>{1, 3}));
  EXPECT_EQ(ls[2].parent, 1u);
  EXPECT_EQ(ls[2].start_node, "B");
  EXPECT_EQ(g.find(id("0.2")), 3u);
  EXPECT_FALSE(g.find(id("0.3")));
}

TEST(CallGraph, LayersArePreOrder) {
  // 0 -> {0.1 -> {0.1.1 -> {0.1.1.1}}, 0.2 -> {0.2.1}}: the layer under 0.1.1
  // comes before the layer under 0.2.
  CallGraph g;
  g.service = "S";
  g.edges = {
      edge("0", "USER", "A", CallType::kHttp, 0, 9), edge("0.1", "A", "B", CallType::kRpc, 0, 5),
      edge("0.1.1", "B", "C", CallType::kRpc, 0, 4), edge("0.1.1.1", "C", "D", CallType::kDb, 0, 1),
      edge("0.2", "A", "E", CallType::kRpc, 5, 8),   edge("0.2.1", "E", "F", CallType::kMc, 5, 6)};
  std::vector<std::string> starts;
  for (auto& l : g.layers()) starts.push_back(l.start_node);
  EXPECT_EQ(starts, (std::vector<std::string>{"USER", "A", "B", "C", "E"}));
}

TEST(Validate, ValidGraphHasNoViolations) { EXPECT_TRUE(validate(sample()).empty()); }

TEST(Validate, EachRuleIsReportedWithItsEdge) {
  {
    CallGraph g = sample();
    g.edges[0].caller = "MS_X";
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kRootNotFromUser});
  }
  {
    CallGraph g = sample();
    g.edges.erase(g.edges.begin());
    auto r = rules(g);
    EXPECT_NE(std::find(r.begin(), r.end(), Rule::kMissingRoot), r.end());
    EXPECT_NE(std::find(r.begin(), r.end(), Rule::kParentMissing), r.end());
  }
  {
    CallGraph g = sample();
    g.edges[2].caller = "Z";
    auto vs = validate(g);
    ASSERT_EQ(vs.size(), 1u);
    EXPECT_EQ(vs[0].rule, Rule::kCallerMismatch);
    EXPECT_EQ(vs[0].edge, 2);
    EXPECT_EQ(vs[0].rpc_id, "0.1.1");
  }
  {
    CallGraph g = sample();
    g.edges[1].start_ms = 6;  // after its finish 5
    auto r = rules(g);
    EXPECT_NE(std::find(r.begin(), r.end(), Rule::kStartAfterFinish), r.end());
  }
  {
    CallGraph g = sample();
    g.edges[2].finish_ms = 6;  // parent 0.1 finishes at 5
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kFinishAfterParent});
  }
  {
    CallGraph g = sample();
    g.edges[2].start_ms = 0;  // parent 0.1 starts at 1
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kStartBeforeParent});
  }
  {
    CallGraph g = sample();
    g.edges[3].callee = "UNKNOWN";
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kMissingField});
  }
  {
    CallGraph g = sample();
    g.edges[3].type = CallType::kUnknown;
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kUnknownType});
  }
  {
    CallGraph g = sample();
    g.edges.push_back(g.edges[3]);
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kDuplicateId});
  }
  {
    CallGraph g = sample();
    g.service = "";
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kMissingField});
  }
  {
    CallGraph g = sample();
    g.edges.push_back(edge("1", "USER", "Q", CallType::kHttp, 0, 1));
    EXPECT_EQ(rules(g), std::vector<Rule>{Rule::kParentMissing});
  }
  EXPECT_EQ(rules(CallGraph{}), std::vector<Rule>{Rule::kEmptyGraph});
}

TEST(Validate, SummaryCountsPerRule) {
  ValidationSummary s;
  CallGraph bad = sample();
  bad.edges[2].caller = "Z";
  bad.edges[3].caller = "Z";
  s.add(validate(sample()));
  s.add(validate(bad));
  EXPECT_EQ(s.graphs, 2u);
  EXPECT_EQ(s.valid_graphs, 1u);
  CallGraph skew = sample();
  skew.edges[2].start_ms = 0;  // a warning only
  s.add(validate(skew));
  EXPECT_EQ(s.valid_graphs, 2u);
  EXPECT_EQ(s.strict_valid_graphs, 1u);
  EXPECT_TRUE(is_valid(validate(skew)));
  EXPECT_FALSE(is_valid(validate(skew), /*strict=*/true));
  EXPECT_EQ(s.violations[static_cast<int>(Rule::kCallerMismatch)], 2u);
  EXPECT_EQ(s.graphs_with[static_cast<int>(Rule::kCallerMismatch)], 1u);
}

}  // namespace
}  // namespace tracelm
