// Jump-forward decoding (as in SGLang's compressed finite-state machines):
// where a unit's automaton allows exactly one continuation (a fixed tag such
// as "<layer>\n<edges>\n(", the rest of a phrase once its first word is
// written, a copied attribute), its bytes are appended without sampling
// them token by token. The model still reads those tokens (they are fed in
// the next forward pass, several per sequence, as a prompt is), but no
// forward pass, vocabulary copy or draw is spent on a token with no choice.
//
//  - forced_text(u): the longest text every accepted continuation of u's
//    current state starts with, found byte by byte (exactly one next byte
//    allowed, and the unit not yet done); at most `max_bytes` bytes.
//  - ForcedTokens::tokenize(s): the tokens the model's own tokenizer gives
//    a prefix of s, cut where its tokenization cannot depend on the text
//    that follows (before a space, which starts a new SentencePiece word,
//    and after a newline, which is a byte piece of its own), so that the
//    model reads the forced text tokenized as its training text was. A
//    forced text without such a cut point is not jumped (it is sampled).
//
// Contract: forced_text() does not change u. Decoding with jump-forward is
// still deterministic for a seed at any batch size and with either engine,
// but it writes different graphs than decoding without it (the skipped
// draws no longer advance the sampler's random stream).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "generate/layer_constraint.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {

std::string forced_text(const UnitConstraint& u, size_t max_bytes = 4096);

class ForcedTokens {
 public:
  explicit ForcedTokens(const Tokenizer& tok) : tok_(tok) {}
  std::vector<int32_t> tokenize(std::string_view s) const;

 private:
  const Tokenizer& tok_;
};

}  // namespace tracelm
