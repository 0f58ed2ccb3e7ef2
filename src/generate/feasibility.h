// The arithmetic of constrained decoding, apart from the byte automaton (as
// llama.cpp keeps grammar, engine and sampler apart): which values a child
// unit's size attributes may take so that whatever the model writes next can
// still be completed, for this line, the lines after it and the child units.
//
// A layer announces its children in "<subgraph of edge_id k>" lines, each
// with four size attributes: num_current_edges (the child layer's width),
// remaining_depth, num_edges (all calls below and in the child) and
// num_subgraphs. The parent's conditions bound their sums: the children's
// num_edges add up to the parent's budget (num_edges - its own width), one
// child must reach the parent's remaining_depth - 1, and so on. A split's
// items share the layer's width and num_edges exactly.
//
// Contract: pure functions of their arguments (no allocation beyond the
// result's fixed-size IntSet); values_allowed() returns exactly the values of
// the asked attribute that some completion of the line and of the remaining
// lines uses (tests/feasibility_test.cc checks this by brute force).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

namespace tracelm {

// A set of integers as up to 8 disjoint intervals, ascending.
struct IntSet {
  std::array<std::pair<int64_t, int64_t>, 8> iv{};
  int n = 0;
  void add(int64_t lo, int64_t hi);  // appended above the last interval (dropped when full)
  bool empty() const { return n == 0; }
  bool contains(int64_t v) const;
  bool intersects(int64_t lo, int64_t hi) const;
  // 0 for a member, else how far v is from the nearest member (INT64_MAX
  // when empty).
  int64_t distance(int64_t v) const;
  // Some member's decimal form starts with the `digits` digits of v.
  bool has_prefix(int64_t v, int digits) const;
  static IntSet range(int64_t lo, int64_t hi) {
    IntSet s;
    s.add(lo, hi);
    return s;
  }
};
IntSet unite(const IntSet& a, const IntSet& b);

// What is left of a unit's budget when its next child line is written.
struct ChildBudget {
  bool split = false;        // the unit is a split: items' widths and num_edges sum exactly
  bool exact_edges = false;  // the unit's num_edges is known: children's num_edges sum to it
  int64_t edges_left = 0;    // num_edges still to give to children, e.g. 12
  int64_t width_left = 0;    // split: calls of the layer not yet given to an item, e.g. 17
  int64_t deep_target = -1;  // the remaining_depth one child must have (-1: unknown), e.g. 2
  bool need_deep = false;    // no child has deep_target yet
  int64_t more_lines_min = 0, more_lines_max = 0;  // child lines still to come after this one
  int64_t max_depth = 16;                          // remaining_depth bound when unknown

  // The num_edges a child of `width` calls and remaining depth `depth` may
  // announce.
  IntSet edges_allowed(int64_t width, int64_t depth) const;
  int64_t depth_max() const { return deep_target >= 0 ? deep_target : max_depth; }
};

// A child line being written: its size attributes written so far, and the
// one asked about.
struct ChildLine {
  enum class Attr : uint8_t { kWidth, kDepth, kEdges, kSubgraphs };
  Attr asked = Attr::kWidth;
  std::optional<int64_t> width, depth, edges, subgraphs;  // num_current_edges ... num_subgraphs
};

// The values of line.asked that some completion uses; `max_width` bounds
// num_current_edges (e.g. a split item is narrower than the split).
IntSet values_allowed(const ChildLine& line, const ChildBudget& b, int64_t max_width);

}  // namespace tracelm
