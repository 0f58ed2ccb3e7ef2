// stats.json of a model directory (model/run_dir.h): what generation needs
// to know of the corpus a model was trained on. Written by `tracelm train`,
// read by `tracelm generate`.
//
//   {"format": "tracelm-trained-stats", "version": 1,
//    "services": [["MS_27421", 312], ...],   // every root service, graphs, most first
//    "num_edges": {"1": 40, "2": 113, ...},  // graphs by number of calls
//    "roots": [["MS_27421", 5, 3, 120], ...], // (service, calls, depth, latency ms) of
//                                              // up to kMaxRoots training graphs
//    "subtree_max": {"MS_1": [12, 5, 2, 4, 0.5, 3, 40], ...}, // callee -> SubtreeSize
//                                              // (calls below one call to it, below one of
//                                              // its callees, levels below its callees,
//                                              // calls it makes, least share of its calls
//                                              // with calls below, fewest calls below one
//                                              // call to it, calls to it; older files: the
//                                              // first two or five)
//    "layers": {"MS_1": [["MS_2", "MS_3"], ...], ...}, // caller -> the callee
//                                              // sequences of its layers, splits
//                                              // included (CorpusPriors::layers)
//    "layer_counts": {"MS_1": {"USER": [[0, 4, 12], ...]}}, // node -> its caller ->
//                                              // [index into layers.MS_1, calls under the
//                                              // call, how many calls made that layer]
//                                              // (CorpusPriors::layer_counts; since 17)
//    "entries": {"S_1": [["MS_1", 2, 9, 30], ...], ...}, // service -> the callees of
//                                              // its root calls, with the fewest and most
//                                              // calls of the graphs that entered there
//                                              // and how many did (CorpusPriors::entries)
//    "durations": {"MS_1": 7, ...},           // callee -> its longest call, ms
//                                              // (CorpusPriors::durations)
//    "types": {"MS_2": {"MS_1": ["mc"], ...}, ...}, // callee -> caller -> the types
//                                              // of its calls (CorpusPriors::types)
//    "shapes": {"MS_1": [[2, 2, 40, 0], [7, 5, 3, 1], ...], ...}, // callee -> (calls
//                                              // below one call to it, calls it makes,
//                                              // how many calls to it, levels under its
//                                              // calls; no 4th before session 16)
//                                              // (CorpusPriors::shapes)
//    "entry_layers": {"S_1": {"MS_1": [["MS_2"], ...]}}, // service -> entry -> the
//                                              // callee sequences of the entry's layer
//                                              // (CorpusPriors::entry_layers)
//    "conditions": {...}}                     // ConditionStats::to_json()
//
// Contract: from_json(to_json(s)) == s. from_json also reads the layout of
// earlier versions ({"corpus": <the `tracelm stats --json` report>,
// "conditions": ...}), whose service list was capped at 1,000 services.
// Malformed files throw InputError naming the file.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"
#include "encode/condition_stats.h"
#include "encode/unit_format.h"

namespace tracelm {

// The sizes of the subtree under one call to a callee in a corpus, e.g. a
// service whose calls each make one database call: {below 1, child_below 0,
// depth 0, width 1, share 0, least 1}.
struct SubtreeSize {
  int64_t below = 0;        // calls below one call to it (its subtree's edges)
  int64_t child_below = 0;  // calls below one of the calls it makes
  // Levels below the calls it makes: the remaining_depth of the layer under
  // one call to it (encode/recursive.h); kUnknown in older stats.json.
  int64_t depth = kUnknown;
  // The most calls one call to it makes (its fan-out); kUnknown in older stats.json.
  int64_t width = kUnknown;
  // The least share of the calls one call to it makes that make calls
  // themselves (num_subgraphs / num_current_edges of the layer under it):
  // 1 when they always all do; 0 when unknown (older stats.json).
  double share = 0;
  // The fewest calls below one call to it (0 when some call to it is a leaf), and how many
  // calls to it that least is over; both 0 when unknown (older stats.json).
  int64_t least = 0;
  int64_t calls = 0;
  static constexpr int64_t kUnknown = -1;
  bool operator==(const SubtreeSize&) const = default;
};

// Per callee, per caller of it (both sorted by name): the types of the calls
// between them, as a mask (bit int(CallType)). CorpusPriors::types.
using CallTypes = std::vector<std::pair<std::string, std::vector<std::pair<std::string, uint8_t>>>>;

// One shape of the subtree under a call to a callee: `below` calls under it,
// `width` of them made by the call itself, `depth` levels of calls under its
// own calls (the remaining_depth of its subgraph line, as SubtreeSize::depth:
// 0 when its calls are leaves; kUnknown in files written before session 16),
// seen under `calls` calls. CorpusPriors::shapes.
struct CallShape {
  static constexpr int64_t kUnknown = -1;
  int64_t below = 0, width = 0;
  uint64_t calls = 0;
  int64_t depth = kUnknown;
  bool operator==(const CallShape&) const = default;
};
using CallShapes = std::vector<std::pair<std::string, std::vector<CallShape>>>;
// Per service, per entry microservice (the callee of its root call): the
// sequences of callees of the entry's layer. CorpusPriors::entry_layers.
using Sequences = std::vector<std::vector<std::string>>;
// How many calls to a node, from one caller, with `below` calls under each,
// made the node's layer `seq` (an index into its CorpusPriors::layers).
struct LayerCount {
  uint32_t seq = 0;
  int64_t below = 0;
  uint64_t calls = 0;
  bool operator==(const LayerCount&) const = default;
};
// Per caller of a node (sorted), its LayerCounts sorted by (seq, below)
// (CorpusPriors::layer_counts).
using LayerCounts = std::vector<std::pair<std::string, std::vector<LayerCount>>>;
using EntryLayers =
    std::vector<std::pair<std::string, std::vector<std::pair<std::string, Sequences>>>>;

// What the training corpus looked like, for filling in open requests.
struct CorpusPriors {
  std::vector<std::pair<std::string, uint64_t>> services;  // (service, graphs), most first
  std::vector<std::pair<int64_t, uint64_t>> num_edges;     // (edges, graphs), ascending edges
  // The root conditions of training graphs, so that open requests are drawn
  // from their joint distribution (a service's own sizes, depths and
  // latencies) rather than from independent marginals. Every graph when the
  // corpus has at most kMaxRoots, else an evenly spaced sample of kMaxRoots.
  // Empty for stats.json files written before version 2.
  struct Root {
    std::string service;
    int64_t num_edges = 0, depth = 0, latency = 0;
    bool operator==(const Root&) const = default;
  };
  static constexpr size_t kMaxRoots = 20000;
  std::vector<Root> roots;
  // Per callee that has calls below it somewhere: the sizes of the subtrees
  // under the calls to it (SubtreeSize); sorted by name. The constraint's
  // size caps (LayerSpec::subtree_caps). Empty in files written before them.
  std::vector<std::pair<std::string, SubtreeSize>> subtree_max;
  // Per caller (the callee of an edge with calls below it): the distinct
  // sequences of callees of the calls one call to it makes, in id order (a
  // layer's destinations as the recursive encoding writes them), sorted;
  // layers of up to kMaxWideLayerEdges calls. A caller's narrow layers (at
  // most kMaxLayerEdges, encode/unit_format.h) and its wide ones (splits)
  // are counted apart: when either has more than kMaxLayersPerCaller
  // distinct sequences, those are left out (too varied to list). Sorted by
  // caller. The constraint's known layers (LayerSpec::layers; a split's
  // items follow one of the wide ones, split_item_names). Empty in files
  // written before them; no wide layers in files before session 14.
  static constexpr size_t kMaxLayersPerCaller = 64;
  static constexpr size_t kMaxWideLayerEdges = 1000;
  std::vector<std::pair<std::string, std::vector<std::vector<std::string>>>> layers;
  // Per caller of `layers` (a node), per caller of it (USER for a root
  // call): how many calls to it from there, with how many calls under each,
  // made each of its sequences in the training corpus (LayerCount); sorted
  // by node. A layer's drawn sequence (draw_layer). Empty in files written
  // before session 17 (the model then picks).
  std::vector<std::pair<std::string, LayerCounts>> layer_counts;
  // Per service: the distinct callees of its graphs' root calls (the entry
  // microservices its requests reached), sorted by name, each with the
  // fewest and most calls of the graphs that entered there and how many
  // graphs did (1 in files before session 14); sorted by service. The
  // constraint's known layers for a root layer (LayerSpec::layers, keyed by
  // the service where other layers are keyed by their caller; see
  // entries_for, draw_entry). Empty in files written before them.
  struct Entry {
    std::string callee;
    int64_t min_edges = 0, max_edges = 0;
    uint64_t graphs = 1;
    bool operator==(const Entry&) const = default;
  };
  std::vector<std::pair<std::string, std::vector<Entry>>> entries;
  // Per callee: its longest call in the training corpus (finish - start, ms),
  // sorted by name. The constraint's known durations
  // (LayerSpec::durations). Empty in files written before them.
  std::vector<std::pair<std::string, int64_t>> durations;
  // Per callee, per caller of it: the types of the calls between them in the
  // training corpus, as a mask (bit int(CallType)); sorted by callee, then by
  // caller (USER for root calls). The constraint's known types
  // (LayerSpec::types, types_of). Empty in files written before them.
  CallTypes types;
  // Per callee with calls below it: the distinct (below, width) shapes of
  // the subtrees under the calls to it, sorted by (below, width), with how
  // many calls had each; sorted by callee. A child line's drawn width
  // (LayerSpec::shapes, draw_shape). Empty in files written before them.
  CallShapes shapes;
  // Per service, per entry microservice: the distinct callee sequences of
  // the layer under the root call of the service's training graphs that
  // entered there (at most kMaxLayerEdges calls; a service whose entry has
  // more than kMaxLayersPerCaller of them is left out); sorted by service,
  // then entry. The known layers of an entry's layer (it follows its
  // service's, rather than any service's, when the service has some).
  // Empty in files written before them.
  EntryLayers entry_layers;
};

// The value of `name` in a vector of (name, value) sorted by name (as
// CorpusPriors' per-name lists are); nullptr when absent.
template <class V>
const V* find_named(const std::vector<std::pair<std::string, V>>& sorted, std::string_view name) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), name,
                             [](const auto& p, std::string_view n) { return p.first < n; });
  return it != sorted.end() && it->first == name ? &it->second : nullptr;
}

// The callees a root call of `service` may go to (sorted): among its
// training entries, those whose graphs' sizes cover num_edges, else those
// nearest to it in size; all of them when num_edges is unknown. Empty when
// the service has no entries. `entries` as CorpusPriors::entries.
std::vector<std::string> entries_for(
    const std::vector<std::pair<std::string, std::vector<CorpusPriors::Entry>>>& entries,
    const std::string& service, std::optional<int64_t> num_edges);

// The destinations of a split's item: calls [offset, offset + count) of one
// of its caller's wide training layers (`seqs`, as one caller's
// CorpusPriors::layers; wide: more than kMaxLayerEdges calls), the one
// `pick` chooses (e.g. a hash of the split, so that all its items follow
// the same layer) among those of the split's `width`, else among all of
// them. A layer shorter than offset + count goes on by repeating its calls
// after the first (the first of a wide layer is often a different call:
// MS_07024 then MS_39556 48 times). Empty when there is no wide layer.
std::vector<std::string> split_item_names(const std::vector<std::vector<std::string>>& seqs,
                                          size_t width, size_t offset, size_t count, uint64_t pick);

// The sequences of `width` names among `seqs` (one caller's
// CorpusPriors::layers) whose names can hold `need` calls below them: the
// most calls below one call to each in training (`caps`, as
// CorpusPriors::subtree_max; 0 for a name without one, a callee never
// called with calls below it) add up to at least `need`. A layer of a unit
// whose num_edges its calls' caps cannot hold puts the rest under a call
// that never had it (docs/generation.md).
std::vector<std::vector<std::string>> layers_holding(
    const std::vector<std::vector<std::string>>& seqs, size_t width, int64_t need,
    const std::vector<std::pair<std::string, SubtreeSize>>& caps);

// The index of one of `candidates` (sequences of one node's layers, e.g.
// those of a unit's width that can hold its calls), drawn in proportion to
// how many calls to the node made it in training (`counts`: the node's
// CorpusPriors::layer_counts, indexing `seqs`, its CorpusPriors::layers):
// calls from `parent` (its caller) with `below` calls under them; else
// from any caller with `below`; else from `parent` of any size; else any
// (the first of these that weighs some candidate; the sizes only when
// `below` is set). A candidate not in `seqs` weighs 0. Why both: a node's
// layers depend on who calls it (MS_63670 called by USER makes other 5-call
// layers than called by itself) and, given that, on its subtree's size
// (TrainTicket: 0.27 bits of a layer's sequence left, 0.07 with the size).
// `u` in [0, 1) (e.g. from the graph's seed). nullopt when every candidate
// weighs 0.
std::optional<size_t> draw_layer(const Sequences& candidates, const Sequences& seqs,
                                 const LayerCounts& counts, std::string_view parent,
                                 std::optional<int64_t> below, double u);

// One of entries_for's callees, drawn in proportion to the training graphs
// that entered there (Entry::graphs); `u` in [0, 1) (e.g. from the graph's
// seed). Empty when the service has no entries.
std::string draw_entry(
    const std::vector<std::pair<std::string, std::vector<CorpusPriors::Entry>>>& entries,
    const std::string& service, std::optional<int64_t> num_edges, double u);

// An index of `weights` drawn in proportion to them (`u` in [0, 1), e.g.
// from a graph's seed); nullopt when they sum to 0.
std::optional<size_t> draw_weighted(const std::vector<uint64_t>& weights, double u);

// One of a callee's training shapes (`shapes`: its CallShapes entry) whose
// `width` is in `width_allowed`, whose `depth` is in `depth_allowed` (or
// unknown; when no shape of an allowed width has an allowed depth, any
// depth) and whose `below` is nearest the sizes allowed
// (`below_distance(below)`: 0 for an allowed size, else how far it is from
// one), drawn in proportion to how many calls had it; `u` in [0, 1).
// nullopt when no width is allowed. (A child line's drawn width,
// LayerSpec::shapes.)
template <class Dist, class Set, class DepthSet>
std::optional<CallShape> draw_shape(const std::vector<CallShape>& shapes,
                                    const Dist& below_distance, const Set& width_allowed,
                                    const DepthSet& depth_allowed, double u) {
  auto depth_ok = [&](const CallShape& c) {
    return c.depth == CallShape::kUnknown || depth_allowed.contains(c.depth);
  };
  bool any_depth = true;  // no shape of an allowed width has an allowed depth
  for (const CallShape& c : shapes)
    if (width_allowed.contains(c.width) && depth_ok(c)) any_depth = false;
  auto fits = [&](const CallShape& c) {
    return width_allowed.contains(c.width) && (any_depth || depth_ok(c));
  };
  int64_t nearest = std::numeric_limits<int64_t>::max();
  for (const CallShape& c : shapes)
    if (fits(c)) nearest = std::min<int64_t>(nearest, below_distance(c.below));
  std::vector<const CallShape*> fit;
  std::vector<uint64_t> calls;  // parallel to fit
  for (const CallShape& c : shapes)
    if (fits(c) && below_distance(c.below) == nearest) {
      fit.push_back(&c);
      calls.push_back(c.calls);
    }
  const std::optional<size_t> i = draw_weighted(calls, u);
  return i ? std::optional<CallShape>(*fit[*i]) : std::nullopt;
}

// The types a call from `caller` to `callee` may have, as a mask (bit
// int(CallType)): those of the calls between them in training, else those
// of any call to callee there; 0 (nothing known) when callee is not in
// `types` (as CorpusPriors::types).
uint8_t types_of(const CallTypes& types, std::string_view caller, std::string_view callee);

struct TrainedStats {
  CorpusPriors priors;
  ConditionStats conditions;

  static TrainedStats of(const std::vector<CallGraph>& graphs);
  nlohmann::json to_json() const;
  // `path` names the file in errors.
  static TrainedStats from_json(const nlohmann::json& j, const std::string& path);
  static TrainedStats load(const std::string& path);
  void save(const std::string& path) const;
};

}  // namespace tracelm
