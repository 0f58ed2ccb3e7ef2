// Constrained decoding of one recursive unit (docs/encodings.md §2-§3): a
// character-level automaton that accepts exactly the unit bodies that obey
// the layer's syntax and arithmetic, given the conditions the prompt
// announced. Generation feeds it the text of each sampled token; a token
// whose text the automaton rejects is masked out (docs/generation.md).
//
// What it enforces, for a layer with conditions (sid, N, NE, S, RD, sca, lat):
//  - "<layer>" when N <= 15, "<split>" when N > 15; exactly N edges with
//    edge ids sid, sid+1, ...; each edge's five phrases once (any order);
//    destinations are plain names (letters, digits, _ . -), not a
//    missing-data marker; types http rpc mc db mq;
//    the first edge starts at sca, every edge sca <= start <= finish <= lat;
//    at the root (start_node USER, no caller), finish - start = latency.
//  - Exactly S "<subgraph of edge_id k>" lines (any number up to the edges
//    when S is unknown), k an edge of the layer, increasing; each line's
//    attributes in one fixed order (id, caller, start_node, start_edge_id,
//    start_communication_at, latency, num_current_edges, remaining_depth,
//    num_edges, num_subgraphs), with id, caller and start_node copied,
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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "encode/text_format.h"

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

// A call a unit must contain (a rare call the user asked for): an edge of
// the layer to `dest`, of `type` (any type when empty). When `child_dest` is
// set, that edge must also have a subgraph, and the subgraph's layer must
// contain an edge to child_dest of child_type (the assembler passes that on).
struct RequiredCall {
  std::string dest, type;
  std::string child_dest, child_type;
};

// The announced conditions of a unit, from its prompt's attributes.
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
  // Fails when `require` cannot be met under these conditions.
  bool check_require(std::string* error) const;
  // Fails (with a message) on a malformed value or conditions that no unit
  // can satisfy (e.g. num_edges < num_current_edges).
  static bool from_attributes(const Attributes& a, LayerSpec* out, std::string* error);
};

// A set of integers as up to 8 disjoint intervals, ascending.
struct IntSet {
  std::array<std::pair<int64_t, int64_t>, 8> iv{};
  int n = 0;
  void add(int64_t lo, int64_t hi);  // appended above the last interval (dropped when full)
  bool empty() const { return n == 0; }
  bool contains(int64_t v) const;
  bool intersects(int64_t lo, int64_t hi) const;
  // Some member's decimal form starts with the `digits` digits of v.
  bool has_prefix(int64_t v, int digits) const;
  static IntSet range(int64_t lo, int64_t hi) {
    IntSet s;
    s.add(lo, hi);
    return s;
  }
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
};

class LayerConstraint : public UnitConstraint {
 public:
  LayerConstraint(const LayerSpec& spec, const ConstraintLimits& limits);
  bool feed(std::string_view text) override;
  bool accepts(std::string_view text) const override;
  bool done() const override;
  std::bitset<256> next_bytes() const override;
  // Failed when the automaton has no way on (only with inconsistent specs).
  bool dead() const;

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
    int64_t subs_done = 0, last_k = -1, rn = 0, rc = 0, next_sid = 0;
    bool need_deep = false;
    // the required call (LayerSpec::require): the edge that met it, and
    // whether its subgraph line was written
    int16_t req_edge = -1;
    bool req_child = false;
    // the current child line
    int64_t k = 0, sca = 0, lat = 0, c = 0, r = 0, n = 0, sg = 0;
    uint16_t attrs_left = 0, known = 0;  // bit per attribute (see the .cc's Attr)
    uint8_t attr = 0;                    // the attribute being written
    int64_t m_lo = 0, m_hi = 0;          // further lines after this one
  };

  const State& state() const { return st_; }
  bool feed_byte(State& s, unsigned char ch) const;
  std::bitset<256> next_bytes_of(const State& s) const;
  bool done_state(const State& s) const { return s.ex == Ex::kEnd || s.ex == Ex::kDone; }

 private:
  void complete(State& s) const;
  void open_subs(State& s) const;
  void open_phrase(State& s) const;
  bool known_names() const { return spec_->names && !spec_->names->empty(); }
  bool req_pending(const State& s) const;      // no edge met the requirement yet
  bool req_sub_pending(const State& s) const;  // its edge's subgraph line is still due
  int type_index_ = -1;                        // the required type's table index (-1: any)
  std::shared_ptr<const LayerSpec> spec_;
  ConstraintLimits lim_;
  State st_;
};

}  // namespace tracelm
