// Constrained decoding of one recursive unit (docs/encodings.md §2-§3): a
// character-level automaton that accepts exactly the unit bodies that obey
// the layer's syntax and arithmetic, given the conditions the prompt
// announced. Generation feeds it the text of each sampled token; a token
// whose text the automaton rejects is masked out (docs/generation.md).
//
// What it enforces, for a layer with conditions (sid, N, NE, S, RD, sca, lat):
//  - "<layer>" when N <= 15, "<split>" when N > 15; exactly N edges with
//    edge ids sid, sid+1, ...; each edge's five phrases once (any order, or
//    edge_id, destination, type, starts, finishes with
//    LayerSpec::fixed_order); with LayerSpec::types, a type written after
//    its destination is one of the destination's known types;
//    destinations are plain names (letters, digits, _ . -), not a
//    missing-data marker; types http rpc mc db mq;
//    the first edge starts at sca, every edge sca <= start <= finish <= lat;
//    at the root (start_node USER, no caller), finish - start = latency.
//  - Exactly S "<subgraph of edge_id k>" lines (any number up to the edges
//    when S is unknown), k an edge of the layer, increasing; each line's
//    ten attributes once, in any order, with id, caller and start_node
//    copied,
//    start_edge_id >= 1, start_communication_at in [start_k, finish_k],
//    latency in [that, finish_k]; remaining_depth <= RD-1 and one child
//    exactly RD-1; child edge budgets summing to NE - N; num_subgraphs
//    consistent with the child's own edges and depth (a child wider than 15
//    edges is a split: 2-5 items).
//  - A split's items: edge_id 0, start_edge_id consecutive, num_current_edges
//    summing to N (each item smaller than N), num_edges summing to NE,
//    latency copied, remaining_depth <= RD with one item exactly RD.
//  Every child line is checked for feasibility: whatever the automaton lets
//  through can always be completed, and so can the child units.
//
// Contract:
//  - feed() consumes text and returns false (leaving the state unchanged)
//    when any byte is not allowed; accepts() asks the same without changing
//    anything. Both cost O(text) and do not allocate.
//  - done() once the closing tag ("</layer>" or "</split>", then an optional
//    "\n") has been read; no byte is accepted after "\n".
//  - Values without a bound in the prompt (the root's latency or num_edges
//    may be absent) are bounded by ConstraintLimits.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "encode/recursive.h"
#include "encode/text_format.h"
#include "generate/feasibility.h"
#include "stats/trained_stats.h"

namespace tracelm {

struct ConstraintLimits {
  int64_t max_time_ms = 10'000'000;  // times when the latency is not given
  int64_t max_edges = 500;           // a graph's edges when num_edges is not given
  int64_t max_depth = 16;            // remaining_depth when not given
  int64_t max_start_edge_id = 999;   // a child layer's first edge id
  int max_name = 24;                 // bytes of a destination name
};

// A destination name the automaton can write: 1-31 bytes of letters,
// digits, '_', '.', '-' (the names of the Alibaba traces: MS_123, UNKNOWN).
bool is_generatable_name(std::string_view s);
// A corpus callee that generation may write: generatable and not a
// missing-data marker (core/validate.h).
bool is_known_callee_name(std::string_view s);

// A call a unit must contain (a rare call the user asked for): an edge of
// the layer to `dest`, of `type` (any type when empty). When `child_dest` is
// set, that edge must also have a subgraph, and the subgraph's layer must
// contain an edge to child_dest of child_type (the assembler passes that on).
struct RequiredCall {
  std::string dest, type;
  std::string child_dest, child_type;
};

// The destination sequences that one caller's layers of one width had in
// training (CorpusPriors::layers), as a trie: node 0 is the empty prefix;
// each node's names are sorted and distinct, next[i] is the node after
// names[i]. Every path from node 0 has the same length (the width), so a
// layer that follows it always has a name for its next edge.
struct LayerTrie {
  struct Node {
    std::vector<std::string> names;
    std::vector<int32_t> next;  // parallel to names; -1 after the last edge
    // The names that are also in `callers` (sorted): what the node offers
    // when the destination must be a caller (LayerSpec::callers).
    std::vector<std::string> callers;
  };
  std::vector<Node> nodes;
  // The trie of the sequences of `width` names whose names all pass `keep`;
  // nullptr when there is none. `callers` (sorted; may be null) fills each
  // node's callers.
  static std::shared_ptr<const LayerTrie> of(const std::vector<std::vector<std::string>>& seqs,
                                             size_t width,
                                             const std::function<bool(const std::string&)>& keep,
                                             const std::vector<std::string>* callers = nullptr);
};

// A unit's announced conditions (the ten attributes of LayerConditions,
// encode/recursive.h, parsed by it) checked for consistency, plus what the
// generator requires of the unit (a call, the names it may write): what the
// automaton is built from.
struct LayerSpec {
  std::string service, start_node;
  std::optional<std::string> caller;  // absent at the root
  std::optional<int64_t> num_edges, num_current_edges, num_subgraphs, remaining_depth;
  std::optional<int64_t> start_edge_id, start_communication_at, latency;
  bool root = false;  // start_node USER and no caller
  // Not a prompt attribute: what the generator requires of the unit. In a
  // layer, the first edge to dest with type meets it; while none has, the
  // layer's last edge is forced to (and, with child_dest, gets a subgraph).
  // A split passes it on to its first item.
  std::optional<RequiredCall> require;
  // When set (and not empty): destinations come from these names only
  // (sorted; e.g. the callees of the training corpus), so that a model that
  // has not yet learned its names cannot invent any. Names the automaton
  // cannot write (is_generatable_name) are ignored.
  std::shared_ptr<const std::vector<std::string>> names;
  // When set (and not empty): "<subgraph of edge_id k>" takes, among the
  // edges the line may name, those whose destination is one of these names
  // (sorted; e.g. the callers of the training corpus), or any of them when
  // none is left (a request still completes); and, with `names`, when the
  // layer states num_current_edges and num_subgraphs, its last edges'
  // destinations come from these names while the layer has fewer edges to
  // callers than subgraphs. Not in a layer with a required call.
  std::shared_ptr<const std::vector<std::string>> callers;
  // When set (and not empty): per callee, the sizes of the subtrees under
  // the calls to it in the training corpus, sorted by name
  // (CorpusPriors::subtree_max). In a "<subgraph of edge_id k>" line to X:
  // num_edges at most X's `below` and at most what leaves each line still
  // due its callee's floor (least_of, or 1); at least X's floor and what
  // the caps of the later edges the remaining lines may take cannot hold;
  // num_current_edges + num_subgraphs within that most, and enough of both
  // to reach that least, when written before num_edges; remaining_depth at
  // most X's `depth`; num_subgraphs at least X's `share` of
  // num_current_edges; and the last of its three sizes written keeps
  // num_edges - num_current_edges <= num_subgraphs * X's `child_below`.
  // Each is soft: when no value meets it (or X has no cap), the values
  // without it stand, so every request still completes. Without them a
  // layer's last line takes whatever budget the earlier ones left (21
  // database calls under a configuration service that makes one:
  // docs/generation.md). Not in a split or a layer with a required call.
  std::shared_ptr<const std::vector<std::pair<std::string, SubtreeSize>>> subtree_caps;
  // When set (and with `names`): the layer's destinations, in edge order,
  // follow one of the sequences its caller's layers of this width had in
  // training (the generator passes only a layer's whole width, never a
  // split's item). When an edge's destination must be a caller (see
  // `callers`), the known layers' callers there; a soft rule: when they
  // have none, the rest of the layer is free. Not in a split or a layer
  // with a required call.
  std::shared_ptr<const LayerTrie> layers;
  // When set (and not empty): per callee, its longest call in the training
  // corpus (ms; CorpusPriors::durations), sorted by name. An edge lasts
  // (finish - start) at most that of its destination when the destination
  // is written before the edge's second time, else at most the longest of
  // the names the known layers offer for it (none without them). Always
  // feasible (an edge may last 0 ms); not for the root's first edge when
  // the root latency is fixed. Without it a model wrote a 10.6 s call to a
  // callee whose calls never lasted 8 ms in training (docs/generation.md).
  std::shared_ptr<const std::vector<std::pair<std::string, int64_t>>> durations;
  // When set (and not empty): per callee, per caller, the types of their
  // calls in the training corpus (CorpusPriors::types). An edge whose
  // destination is written before its type takes one of those the layer's
  // caller used with it (types_of), or any when none is known. A small
  // model wrote 4% of its calls with a type its callee never had in
  // training (docs/generation.md).
  std::shared_ptr<const CallTypes> types;
  // When set (and not empty): per callee, the (below, width) shapes of the
  // subtrees under the calls to it in training, with their counts
  // (CorpusPriors::shapes). A "<subgraph of edge_id k>" line to X writes,
  // as num_current_edges, one width drawn (draw_shape, from draw_seed and
  // k) among X's training shapes whose width the line allows and whose size
  // (below) its num_edges may take (its value when written, else what the
  // arithmetic and the caps allow), or else is nearest such a size; the
  // allowed widths stand when X has no shape of an allowed width. A small
  // model at temperature 0.6 wrote MS_63670's 5-call layer with 4 calls
  // five times as often as training has it (docs/generation.md). Not in a
  // split or a layer with a required call.
  // draw_seed: per unit (the generator mixes the graph's seed and the
  // unit's tree key), so that a graph does not depend on the batch.
  std::shared_ptr<const CallShapes> shapes;
  uint64_t draw_seed = 0;
  // When set: an edge's five phrases come in one fixed order (edge_id,
  // destination, type, starts, finishes) instead of any order, so that their
  // heads are forced text that jump-forward appends without sampling, and
  // the type follows the destination (`types`). The training text shuffles
  // them, so the order is one the model has seen. Child lines keep the
  // model's order: fixing theirs too made fan-out worse (docs/generation.md).
  bool fixed_order = false;
  // Fails when `require` cannot be met under these conditions.
  bool check_require(std::string* error) const;
  // Fails (with a message) on a malformed value or conditions that no unit
  // can satisfy (e.g. num_edges < num_current_edges).
  static bool from_conditions(const LayerConditions& c, LayerSpec* out, std::string* error);
  // LayerConditions::from_attributes, then from_conditions.
  static bool from_attributes(const Attributes& a, LayerSpec* out, std::string* error);
};

// What constrained decoding needs of an automaton over a unit's text
// (LayerConstraint: recursive bodies; InstructionConstraint: instruction
// answers).
class UnitConstraint {
 public:
  virtual ~UnitConstraint() = default;
  // Consumes text; false (state unchanged) when any byte is not allowed.
  virtual bool feed(std::string_view text) = 0;
  virtual bool accepts(std::string_view text) const = 0;
  virtual bool done() const = 0;
  // Bytes that may come next (for masking a vocabulary by first byte).
  virtual std::bitset<256> next_bytes() const = 0;
  // A copy in the same state.
  virtual std::unique_ptr<UnitConstraint> clone() const = 0;
  // An upper bound on the bytes of any text the automaton accepts from its
  // start (the language is finite: names, numbers, edges and lines are all
  // bounded). Every token writes at least one byte, so a unit decoded with a
  // budget of max_length() tokens always completes.
  virtual int64_t max_length() const = 0;
};

class LayerConstraint : public UnitConstraint {
 public:
  LayerConstraint(const LayerSpec& spec, const ConstraintLimits& limits);
  bool feed(std::string_view text) override;
  bool accepts(std::string_view text) const override;
  bool done() const override;
  std::bitset<256> next_bytes() const override;
  std::unique_ptr<UnitConstraint> clone() const override {
    return std::make_unique<LayerConstraint>(*this);
  }
  int64_t max_length() const override;
  // Failed when the automaton has no way on (only with inconsistent specs).
  bool dead() const;
  // The calls to a callee over which its fewest calls below one call
  // (SubtreeSize::least) is trusted as a floor: a callee seen once would have
  // its one size forced on every call to it.
  static constexpr int64_t kLeastSupport = 5;
  // A callee's fewest calls below one call to it, when seen over at least
  // kLeastSupport calls; else 0.
  static int64_t least_of(const SubtreeSize& c) { return c.calls >= kLeastSupport ? c.least : 0; }

  const LayerSpec& spec() const { return *spec_; }

  // Everything below is the automaton's state; public only so that the
  // implementation's helpers (and wrappers such as InstructionConstraint,
  // which run it on their own State copies) can reach it. Plain data:
  // copying is a memcpy.
  enum class Ex : uint8_t { kLit, kChoice, kInt, kName, kEnd, kDone, kDead };
  enum class Step : uint8_t;
  struct EdgeRec {
    int64_t id = 0, start = 0, finish = 0;
    char dest[32] = {};
    uint8_t dlen = 0;
    uint8_t type = 0xff;  // index into the type table
  };
  struct State {
    Ex ex = Ex::kDead;
    Step step{};
    // kLit
    char buf[640] = {};
    uint16_t len = 0, pos = 0;
    // kChoice
    uint8_t table = 0, choice = 0;
    uint16_t alive = 0;
    uint16_t cpos = 0;
    // kInt
    IntSet set;
    int64_t val = 0;
    int ndig = 0;
    // kName
    char name[32] = {};
    uint8_t nlen = 0;
    // the layer so far
    std::array<EdgeRec, 16> edges{};
    int nedges = 0;
    EdgeRec cur;
    uint8_t phrases_left = 0;  // bit per phrase not yet written in the current edge
    bool has_start = false, has_finish = false;
    // children lines so far
    int64_t subs_done = 0;      // "<subgraph>" lines written, e.g. 2
    int64_t last_k = -1;        // edge id of the last one (lines go up), e.g. 4
    int64_t edges_left = 0;     // num_edges still to give to child lines, e.g. 12
    int64_t width_left = 0;     // split: calls of the layer not yet in an item, e.g. 17
    int64_t next_sid = 0;       // split: the next item's start_edge_id, e.g. 16
    bool need_deep = false;     // no child line has reached the depth target yet
    bool callers_only = false;  // this destination must be a caller (LayerSpec::callers)
    int32_t seen = -1;          // node of LayerSpec::layers after the edges so far; -1: free
    // the required call (LayerSpec::require): the edge that met it, and
    // whether its subgraph line was written
    int16_t req_edge = -1;
    bool req_child = false;
    // the current child line "<subgraph of edge_id K>...": its values so far
    int64_t sub_k = 0;                   // K: the parent edge's id (0 for a split item), e.g. 3
    int64_t sub_start = 0;               // start_communication_at, e.g. 14
    int64_t sub_latency = 0;             // latency, e.g. 52
    int64_t sub_width = 0;               // num_current_edges, e.g. 4
    int64_t sub_depth = 0;               // remaining_depth, e.g. 1
    int64_t sub_edges = 0;               // num_edges, e.g. 6
    int64_t sub_subgraphs = 0;           // num_subgraphs, e.g. 2
    uint16_t attrs_left = 0, known = 0;  // bit per attribute (see the .cc's Attr)
    uint8_t attr = 0;                    // the attribute being written
    int64_t more_lines_min = 0, more_lines_max = 0;  // child lines still due after this one
  };

  const State& state() const { return st_; }
  bool feed_byte(State& s, unsigned char ch) const;
  std::bitset<256> next_bytes_of(const State& s) const;
  bool done_state(const State& s) const { return s.ex == Ex::kEnd || s.ex == Ex::kDone; }

 private:
  void complete(State& s) const;
  void complete_edges(State& s) const;       // opening tags and edges
  void complete_child_line(State& s) const;  // the <subgraph> lines
  void open_child_value(State& s) const;     // after an attribute name in one
  void open_phrase_value(State& s) const;    // after an edge's phrase head
  ChildBudget child_budget(const State& s) const;
  int64_t first_start() const;    // when the unit's first call starts (start_communication_at)
  int64_t latest_finish() const;  // the latest a call of the unit may finish
  void open_subs(State& s) const;
  void open_phrase(State& s) const;
  void open_child_attr(State& s) const;  // the name of a child-line attribute
  bool known_names() const { return spec_->names && !spec_->names->empty(); }
  bool req_pending(const State& s) const;      // no edge met the requirement yet
  bool req_sub_pending(const State& s) const;  // its edge's subgraph line is still due
  // Whether edge i's destination is one of LayerSpec::callers.
  bool callable(const State& s, int i) const;
  // The ids in [lo, hi] of edges to a caller that leave `after` more of
  // them for the lines to come, or all of [lo, hi] when there are none (or
  // no callers, or a required call).
  IntSet callable_edges(const State& s, int64_t lo, int64_t hi, int64_t after) const;
  // Edge i's destination's SubtreeSize (LayerSpec::subtree_caps), both
  // kNoCap when unknown.
  static constexpr int64_t kNoCap = int64_t{1} << 40;
  SubtreeSize cap_of(const State& s, int i) const;
  // The longest the current edge may last (LayerSpec::durations): its
  // destination's longest call when written, else the longest among the
  // names the known layers offer for it; kNoCap when unknown.
  int64_t duration_cap(const State& s) const;
  // The current child line's values `plain` of its asked size attribute
  // narrowed by the caps (LayerSpec::subtree_caps), each rule dropped when
  // it leaves none.
  IntSet capped_sizes(const State& s, const IntSet& plain) const;
  // The current child line's num_current_edges: one of `allowed` drawn
  // from its destination's training shapes (LayerSpec::shapes), or
  // `allowed` when there are none.
  IntSet drawn_width(const State& s, const IntSet& allowed) const;
  // The next destination must be a caller: the layer owes num_subgraphs
  // lines and has no more edges than callers still missing.
  bool must_call(const State& s) const;
  const std::vector<std::string>& name_list(const State& s) const {
    if (s.seen >= 0) {
      const LayerTrie::Node& n = spec_->layers->nodes[static_cast<size_t>(s.seen)];
      return s.callers_only ? n.callers : n.names;
    }
    return s.callers_only ? *spec_->callers : *spec_->names;
  }
  int type_index_ = -1;  // the required type's table index (-1: any)
  std::shared_ptr<const LayerSpec> spec_;
  ConstraintLimits lim_;
  State st_;
};

}  // namespace tracelm
