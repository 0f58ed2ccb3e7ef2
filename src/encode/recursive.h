// The recursive (layer-by-layer) encoding of call graphs (docs/encodings.md
// §2-§3), and the unit plan shared with the instruction format.
//
// A graph is cut into units in pre-order. A unit is a layer (the sibling
// edges under one parent edge, at most 15) or, for a wider layer, a split
// (groups of chunks of 13-15 edges). Each unit is written as its condition
// line, then "<layer>...</layer>" or "<split>...</split>"; the conditions of
// a unit's children are announced in its "<subgraph of edge_id k>" lines.
//
// Contract:
//  - plan_units() is deterministic for a given Rng state (the chunk size of
//    each wide layer is drawn from it); encode_recursive() also shuffles and
//    drops with it. decode_recursive(encode_recursive(g)) gives back g's
//    service and edges exactly, for any seed.
//  - Parsing never throws, never recurses on input, allocates O(input), and
//    reports a ParseError (what, byte offset) on any malformed text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "encode/tabular.h"
#include "encode/text_format.h"
#include "encode/unit_format.h"

namespace tracelm {

// The 10 condition attributes of a unit (docs/encodings.md §2.4).
struct LayerConditions {
  std::string id;  // service id (always present)
  std::optional<int64_t> num_edges, start_edge_id, start_communication_at, latency;
  std::optional<int64_t> num_subgraphs, remaining_depth, num_current_edges;
  std::optional<std::string> start_node, caller;

  Attributes to_attributes() const;  // present ones, in a fixed order
  static bool from_attributes(const Attributes& a, LayerConditions* out, std::string* error);
  bool operator==(const LayerConditions&) const = default;
};

struct Unit {
  enum class Kind { kLayer, kSplit };
  Kind kind = Kind::kLayer;
  LayerConditions cond;       // complete (caller absent at the root)
  std::string prefix;         // full rpc id of the parent edge ("" for the root layer)
  std::vector<size_t> edges;  // graph edge indices covered, in id order
  // Children, in order: (edge_id k, unit index). k is the last id component
  // of the parent edge for a layer's subgraphs, 0 for a split's items.
  std::vector<std::pair<uint64_t, size_t>> subs;
};

// All units of a canonical graph, in pre-order (units[0] is the root layer).
std::vector<Unit> plan_units(const CallGraph& g, Rng& rng);

struct RecursiveOptions {
  bool shuffle = true;
  double p_drop = 0.1;          // each root condition other than id and latency
  double p_drop_latency = 0.5;  // the root latency (docs/encodings.md §2.5)
};

// Condition line of a unit (no newline). At the root: "[GENERATE GRAPH]" and
// the drops; elsewhere all attributes.
std::string format_conditions(const LayerConditions& c, bool root, const RecursiveOptions& opt,
                              Rng& rng);
// "<layer>...</layer>\n" or "<split>...</split>\n" of units[u].
std::string format_unit_body(const CallGraph& g, const std::vector<Unit>& units, size_t u,
                             const RecursiveOptions& opt, Rng& rng);

std::string encode_recursive(const CallGraph& g, const RecursiveOptions& opt, Rng& rng);
// The same text cut into units (condition line + body each): the units of a
// graph are what generation produces one step at a time.
std::vector<std::string> encode_recursive_units(const CallGraph& g, const RecursiveOptions& opt,
                                                Rng& rng);

// One parsed unit body: what a single generation step produces.
struct ParsedUnit {
  Unit::Kind kind = Unit::Kind::kLayer;
  std::vector<EdgeText> edges;                        // layer only; edge_id is an integer string
  std::vector<std::pair<uint64_t, Attributes>> subs;  // announced child conditions
};
// Parses "<edges>" ... "</edges>" (5-phrase edges with integer ids) at the
// scanner: the part of a layer before its subgraphs.
bool parse_layer_edges(LineScanner& sc, std::vector<EdgeText>* edges, ParseError* err);
// Parses "<layer>...</layer>" or "<split>...</split>" at the scanner.
bool parse_unit_body(LineScanner& sc, ParsedUnit* out, ParseError* err);

// Decodes one complete recursive graph text (the first graph of `text`).
bool decode_recursive(std::string_view text, CallGraph* out, ParseError* err,
                      size_t* consumed = nullptr);

}  // namespace tracelm
