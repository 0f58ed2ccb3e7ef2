// The constraint as one more sampler in the chain (after llama.cpp's grammar
// sampler): ConstraintSampler wraps a unit automaton (UnitConstraint:
// LayerConstraint or InstructionConstraint) and speaks the Sampler
// interface, so decoding a constrained layer is pick -> accept -> done?.
//
//  - apply(c) drops the candidates whose piece text the automaton rejects
//    (control, unknown and unused pieces are always dropped);
//  - accept(token) feeds the token's text to the automaton;
//  - done() says that the unit is complete.
//
// SamplerChain::sample() uses it the way llama.cpp's common_sampler_sample
// does: the chain draws from the unmasked distribution, the grammar checks
// only the drawn token, and only when that token is rejected is the whole
// vocabulary masked and the token drawn again (sampler.h). The mask is
// therefore computed on a few percent of the steps of a trained model.
//
// Contract: the piece table (Tokenizer::piece_texts()) outlives the sampler;
// `seconds`, when given, accumulates the wall time of the sampler's own work
// (checking, masking, advancing), which GenerateStats reports.
#pragma once

#include <memory>
#include <vector>

#include "generate/layer_constraint.h"
#include "generate/sampler.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {

class ConstraintSampler : public Sampler {
 public:
  ConstraintSampler(std::unique_ptr<UnitConstraint> unit, const std::vector<PieceText>& pieces,
                    double* seconds = nullptr)
      : unit_(std::move(unit)), pieces_(pieces), seconds_(seconds) {}
  void apply(Candidates& c) override;
  void accept(int32_t token) override;
  std::unique_ptr<Sampler> clone() const override;
  std::string name() const override { return "constraint"; }
  // The token's text continues the unit (false for control/unknown pieces).
  bool allows(int32_t token) const;
  bool done() const { return unit_->done(); }
  const UnitConstraint& unit() const { return *unit_; }

 private:
  std::unique_ptr<UnitConstraint> unit_;
  const std::vector<PieceText>& pieces_;
  double* seconds_;
};

// A piece that decoding can write: it has text and is not a control,
// unknown or unused piece.
bool is_writable_piece(const PieceText& p);

}  // namespace tracelm
