// The recursive unit format: the constants and literal text shared by the
// writers (encode/recursive.cc, encode/instruction.cc) and the readers
// (their decoders, and the automata of generate/layer_constraint.cc and
// generate/instruction_constraint.cc), as leveldb's log_format.h is shared
// by its log reader and writer. docs/encodings.md §2-§4 gives the grammar
// these pieces fit into, with worked examples.
//
// A unit is one layer of a call graph (the sibling calls under one parent
// call, at most kMaxLayerEdges of them) or, for a wider layer, a split
// (2..kSplitFanout items, each announcing a chunk of the layer):
//
//   <layer>\n<edges>\n(edge_id is 1,destination is MS_2,...)\n</edges>\n
//   <subgraph of edge_id 1>id:MS_2/caller:.../num_subgraphs:0</subgraph>\n
//   </layer>\n
//
// The instruction format adds a scratchpad after "</edges>" (the lines of
// the `scratchpad` namespace below), written by the encoder and forced by
// the instruction automaton: both call these functions, so they cannot
// drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tracelm {

// Calls in one layer; a layer with more is written as a split.
inline constexpr size_t kMaxLayerEdges = 15;
// Items in one split block (a split holds 2..kSplitFanout items).
inline constexpr size_t kSplitFanout = 5;
// The deepest call graph the rules allow (core/validate.h): a unit's
// remaining_depth is at most kMaxDepth - 1.
inline constexpr int64_t kMaxDepth = 15;

// True when a unit of `num_current_edges` calls is written as a split.
constexpr bool is_split(int64_t num_current_edges) {
  return num_current_edges > static_cast<int64_t>(kMaxLayerEdges);
}

// Tags, as they appear on their own line (without the newline).
namespace tag {
inline constexpr std::string_view kLayer = "<layer>";
inline constexpr std::string_view kLayerEnd = "</layer>";
inline constexpr std::string_view kSplit = "<split>";
inline constexpr std::string_view kSplitEnd = "</split>";
inline constexpr std::string_view kEdges = "<edges>";
inline constexpr std::string_view kEdgesEnd = "</edges>";
// "<subgraph of edge_id K>attributes</subgraph>": a child's condition line
// (K = 0 for a split's items).
inline constexpr std::string_view kSubgraph = "<subgraph of edge_id ";
inline constexpr std::string_view kSubgraphEnd = "</subgraph>";
}  // namespace tag

// The instruction format's scratchpad lines (docs/encodings.md §4), each
// without its newline. Example for a layer of edges 1..3 with 7 edges in all
// and one subgraph under edge 2 of remaining_depth 1:
//   num generated edges = the last edge id - the first edge id + 1 = 3 - 1 + 1 = 3
//   3 edges generated out of num_edges:7
//   num_remaining_edges = num_edges:7 - generated:3 = 4
//   (blank line)
//   generate subgraphs of edge:2
//   Subgraph constraints:
//   num_edges <= num_remaining_edges:4
//   copy start_node from edge 2 destination: MS_5
//   remaining_depth should be the requirement's remaining_depth:2 - 1 = 1
//   <subgraph of edge_id 2>...</subgraph>
//   now, num_remaining_edges is 4 - 4 = 0
//   finish generation</layer>
namespace scratchpad {
inline constexpr std::string_view kFinish = "finish generation";
inline constexpr std::string_view kGenerateSubgraphs = "generate subgraphs of edge:";
inline constexpr std::string_view kListSeparator = ",edge_id:";
inline constexpr std::string_view kConstraints = "Subgraph constraints:";
inline constexpr std::string_view kDepthPrefix =
    "remaining_depth should be the requirement's remaining_depth:";
std::string generated_edges(int64_t last, int64_t first);  // "num generated edges = ..."
std::string generated_out_of(int64_t n, int64_t num_edges);
std::string remaining_after_layer(int64_t num_edges, int64_t n);
std::string budget(int64_t remaining);  // "num_edges <= num_remaining_edges:R"
std::string copy_start_node(int64_t k, std::string_view destination);
std::string depth(int64_t rd);  // kDepthPrefix + "RD - 1 = RD-1"
std::string now_remaining(int64_t before, int64_t child_edges);
}  // namespace scratchpad

}  // namespace tracelm
