// The tabular encoding (the GReaT-style baseline, docs/encodings.md): one
// block per graph, the graph attributes on a header line, then one line per
// edge with six phrases.
//
//   [GENERATE GRAPH]id:S_1/latency:8/num_edges:7/depth:3
//   <edges>
//   (source is USER,edge_id is 0,communication finishes at 8 milliseconds,...)
//   ...
//   </edges>
//
// Contract: encode_tabular() is deterministic for a given Rng state; with
// shuffle off and p_drop 0 it is canonical. decode_tabular() parses one block
// (or a text holding exactly one) and never throws; decode(encode(g)) == g
// (service and edges) whatever the shuffle and drops.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "encode/text_format.h"

namespace tracelm {

inline constexpr std::string_view kGenerateGraph = "[GENERATE GRAPH]";

struct EncodeOptions {
  bool shuffle = true;  // phrase order in edges, attribute order in lines
  double p_drop = 0.1;  // probability of dropping each droppable attribute
};

// True when every name of g is a plain name (is_plain_name): only such
// graphs can be written in the text encodings and read back.
bool text_representable(const CallGraph& g);

std::string encode_tabular(const CallGraph& g, const EncodeOptions& opt, Rng& rng);

struct TabularGraph {
  CallGraph graph;
  Attributes attributes;  // as written (id, latency, num_edges, depth; some may be absent)
};
// Parses the first block of `text`; *consumed (optional) gets its length.
bool decode_tabular(std::string_view text, TabularGraph* out, ParseError* err,
                    size_t* consumed = nullptr);

// Splits a text of many blocks (an encoded corpus) at each "[GENERATE GRAPH]"
// line start.
std::vector<std::string_view> split_blocks(std::string_view text);

}  // namespace tracelm
