// Constrained decoding of an instruction-format answer (docs/encodings.md
// §4): the recursive unit body with the intermediate-instruction scratchpad
// after "</edges>" (or "<split>"). It wraps a LayerConstraint, which checks
// the layer itself and every "<subgraph>" line, and adds the scratchpad:
//  - after "</edges>": the three counting lines (first and last edge id,
//    num_edges, what remains), then "finish generation" + "</layer>" when
//    the layer has no subgraphs, else a blank line and
//    "generate subgraphs of edge:k1,edge_id:k2,...": the model picks the
//    edges (increasing, exactly num_subgraphs of them, edges of the layer);
//  - per listed edge, in order: "Subgraph constraints:", the remaining-edge
//    budget and "copy start_node from edge k destination: D" (forced), then
//    the model chooses whether to write "remaining_depth should be the
//    requirement's remaining_depth:RD - 1 = RD-1": if it does, that child's
//    remaining_depth is RD-1, else smaller (the line is required for the last
//    child when no earlier one went that deep); the "<subgraph of edge_id k>"
//    line follows with remaining_depth as its first attribute, then
//    "now, num_remaining_edges is R - n = R-n";
//  - a split: "Subgraph constraints:" + budget before each item, "now, ..."
//    after it, "finish generation</split>" at the end.
// The blocks' lines come in one fixed order (training shuffles them; any
// order is one the model has seen). Where the root's remaining_depth is
// open, the model writes its value in the remaining_depth line.
//
// The answer may start with one space: the tokenizer's dummy prefix, which
// training puts there because it tokenizes the answer apart from the
// question (the assembler drops it).
// Contract: as LayerConstraint (feed/accepts/done/next_bytes); needs the
// unit's num_edges and num_subgraphs in its conditions (the generator draws
// the root's size when the request leaves it open); without them no byte
// is accepted.
#pragma once

#include <bitset>
#include <cstdint>
#include <memory>
#include <string_view>

#include "generate/layer_constraint.h"

namespace tracelm {

class InstructionConstraint : public UnitConstraint {
 public:
  InstructionConstraint(const LayerSpec& spec, const ConstraintLimits& limits);
  bool feed(std::string_view text) override;
  bool accepts(std::string_view text) const override;
  bool done() const override;
  std::bitset<256> next_bytes() const override;
  std::unique_ptr<UnitConstraint> clone() const override {
    return std::make_unique<InstructionConstraint>(*this);
  }
  int64_t max_length() const override;

  enum class Phase : uint8_t {
    kBody,       // the layer's edges (or "<split>\n"), to the inner automaton
    kForced,     // a literal (to the inner automaton too when to_inner)
    kList,       // an edge id of "generate subgraphs of edge:..."
    kRdOrSub,    // the remaining_depth line, or the <subgraph> line
    kSubStart,   // "<subgraph of edge_id k>remaining_depth:", forced, to the inner automaton
    kNextBlock,  // the next listed edge's constraint block
    kRdValue,    // the root's own remaining_depth, when it was open
    kChildR,     // the child's remaining_depth value
    kSubLine,    // the rest of the <subgraph> line
    kSplitNext,  // another split item, or the end
    kTail,       // "</layer>" / "</split>" and "\n", to the inner automaton
    kDead
  };
  // The automaton's state over an answer. Plain data (copying is a memcpy).
  struct AnswerState {
    LayerConstraint::State in;  // the layer automaton's state (edges, budgets, child lines)
    Phase ph = Phase::kBody;    // what is being written now
    bool started = false;       // a byte was read (the first may be the dummy-prefix space)
    char buf[400] = {};         // kForced: the literal being forced
    uint16_t len = 0, pos = 0;  // its length, and how much of it was read
    bool to_inner = false;      // the forced literal goes to the inner automaton too
    Phase then = Phase::kDead;  // the phase after the literal
    int64_t val = 0;            // the integer being written, so far, e.g. 12
    int nd = 0;                 // its digits so far
    int64_t lo = 0, hi = 0;     // the integer being written: allowed range
    char tail[16] = {};         // the last bytes given to the inner automaton
    int64_t rd = -1;            // the unit's remaining_depth (written by the model when open)
    int64_t ks[16] = {};        // the listed edges
    int nks = 0, blk = 0;       // how many; the block being written
    bool rd_line = false;       // this block has the remaining_depth line
    // Edges, budgets and the current child's values are the inner state's.
  };

 private:
  bool feed_byte(AnswerState& w, unsigned char ch) const;
  bool inner(AnswerState& w, unsigned char ch) const;  // gives ch to the inner automaton
  bool tail_is(const AnswerState& w, std::string_view s) const;
  void forced(AnswerState& w, std::string_view text, bool to_inner, Phase then) const;
  void enter(AnswerState& w, Phase ph) const;
  void after_edges(AnswerState& w) const;
  void begin_block(AnswerState& w) const;
  void after_sub_line(AnswerState& w) const;
  bool probe_child_r(const AnswerState& w, int64_t r) const;  // the inner accepts this child depth
  bool probe(const AnswerState& w, std::string_view text) const;
  LayerConstraint in_;
  AnswerState w_;
  bool split_ = false;
};

}  // namespace tracelm
