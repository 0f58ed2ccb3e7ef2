// The feasibility arithmetic of constrained decoding (generate/feasibility.h)
// and the unit-format constants (encode/unit_format.h), on cases worked out
// by hand.
#include <gtest/gtest.h>

#include "encode/unit_format.h"
#include "generate/feasibility.h"

namespace tracelm {
namespace {

std::vector<int64_t> members(const IntSet& s) {
  std::vector<int64_t> v;
  for (int i = 0; i < s.n; ++i)
    for (int64_t x = s.iv[static_cast<size_t>(i)].first; x <= s.iv[static_cast<size_t>(i)].second;
         ++x)
      v.push_back(x);
  return v;
}

using Attr = ChildLine::Attr;

TEST(Feasibility, TheLastLineOfALayerTakesTheWholeBudgetAndTheDepth) {
  // A layer with num_edges known: 5 edges left for its children, one child
  // must have remaining_depth 1, and this is the last line.
  ChildBudget b;
  b.exact_edges = true;
  b.edges_left = 5;
  b.deep_target = 1;
  b.need_deep = true;
  // Width w, depth 1, 5 edges: w + 1 <= 5 and at least one subgraph below.
  EXPECT_EQ(members(values_allowed({Attr::kWidth, {}, {}, {}, {}}, b, 10)),
            (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(members(values_allowed({Attr::kDepth, 2, {}, {}, {}}, b, 10)),
            (std::vector<int64_t>{1}));
  EXPECT_EQ(members(values_allowed({Attr::kEdges, 2, 1, {}, {}}, b, 10)),
            (std::vector<int64_t>{5}));
  // Two calls below a width-2 child of depth 1: one or two subgraphs.
  EXPECT_EQ(members(values_allowed({Attr::kSubgraphs, 2, 1, 5, {}}, b, 10)),
            (std::vector<int64_t>{1, 2}));
  // With another line still due, this one may not take everything.
  b.more_lines_min = b.more_lines_max = 1;
  EXPECT_EQ(members(b.edges_allowed(2, 1)), (std::vector<int64_t>{3, 4}));
  // ... and a shallow line leaves room for the deep one (2 edges at least).
  EXPECT_EQ(members(b.edges_allowed(3, 0)), (std::vector<int64_t>{3}));
  EXPECT_TRUE(b.edges_allowed(4, 0).empty());
}

TEST(Feasibility, OpenBudgetsBoundDepthByTheLimit) {
  ChildBudget b;  // num_edges unknown: at most 10 edges, depth unknown (limit 3)
  b.edges_left = 10;
  b.max_depth = 3;
  EXPECT_EQ(members(values_allowed({Attr::kDepth, 3, {}, {}, {}}, b, 10)),
            (std::vector<int64_t>{0, 1, 2, 3}));
  // Width 3 and depth 2 need 5..10 edges.
  EXPECT_EQ(members(b.edges_allowed(3, 2)), (std::vector<int64_t>{5, 6, 7, 8, 9, 10}));
}

TEST(Feasibility, SplitItemsShareTheWidthExactly) {
  // A split of 20 calls with remaining_depth 0 (so num_edges 20), one item
  // after this one: this item takes w < 20 calls and exactly w edges.
  ChildBudget b;
  b.split = true;
  b.exact_edges = true;
  b.edges_left = 20;
  b.width_left = 20;
  b.deep_target = 0;
  b.more_lines_min = b.more_lines_max = 1;
  std::vector<int64_t> w;
  for (int64_t x = 1; x <= 19; ++x) w.push_back(x);
  EXPECT_EQ(members(values_allowed({Attr::kWidth, {}, {}, {}, {}}, b, 19)), w);
  EXPECT_EQ(members(values_allowed({Attr::kEdges, 7, 0, {}, {}}, b, 19)),
            (std::vector<int64_t>{7}));
  // An item wider than a layer is itself a split: 2..5 items.
  EXPECT_EQ(members(values_allowed({Attr::kSubgraphs, 16, 0, 16, {}}, b, 19)),
            (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(members(values_allowed({Attr::kSubgraphs, 3, 0, 3, {}}, b, 19)),
            (std::vector<int64_t>{0}));
}

TEST(UnitFormat, SplitThresholdAndScratchpadLines) {
  EXPECT_FALSE(is_split(static_cast<int64_t>(kMaxLayerEdges)));
  EXPECT_TRUE(is_split(static_cast<int64_t>(kMaxLayerEdges) + 1));
  EXPECT_EQ(scratchpad::generated_edges(3, 1),
            "num generated edges = the last edge id - the first edge id + 1 = 3 - 1 + 1 = 3");
  EXPECT_EQ(scratchpad::generated_out_of(3, 7), "3 edges generated out of num_edges:7");
  EXPECT_EQ(scratchpad::remaining_after_layer(7, 3),
            "num_remaining_edges = num_edges:7 - generated:3 = 4");
  EXPECT_EQ(scratchpad::budget(4), "num_edges <= num_remaining_edges:4");
  EXPECT_EQ(scratchpad::copy_start_node(2, "MS_5"),
            "copy start_node from edge 2 destination: MS_5");
  EXPECT_EQ(scratchpad::depth(2),
            "remaining_depth should be the requirement's remaining_depth:2 - 1 = 1");
  EXPECT_EQ(scratchpad::now_remaining(4, 3), "now, num_remaining_edges is 4 - 3 = 1");
}

}  // namespace
}  // namespace tracelm
