// Token sampling: a chain of samplers over one sequence's next-token logits
// (after llama.cpp's sampler chain, without its 10,000-line file).
//
// Every sampler has the same small interface: apply() narrows or reshapes the
// candidates, accept() sees the token finally chosen, reset() forgets state,
// clone() copies it for another sequence. A SamplerChain is itself a sampler
// and picks the token at the end (greedy or a seeded draw).
//
// A chain may also hold a grammar: a sampler that only removes candidates
// and advances on accept() (constrained decoding's ConstraintSampler,
// generate/constraint_sampler.h). sample() then works as llama.cpp's
// common_sampler_sample: the chain draws from the unmasked distribution, the
// grammar checks only that token, and only when it is rejected is the
// grammar applied to every candidate first and the chain drawn again.
//
// Usage, one sequence:
//   auto chain = SamplerChain::from_params(params);
//   chain->set_grammar(std::make_unique<ConstraintSampler>(...));
//   while (!done) { int32_t t = chain->sample(logits, V); if (t < 0) fail; ... }
//
// Contract:
//  - Deterministic: a chain's draws come from its own Rng, so a sequence's
//    tokens depend on its seed only, not on the batch it is decoded in or on
//    thread counts (give each sequence its own chain, seeded per sequence).
//  - Candidates hold finite logits; a sampler may remove candidates but never
//    leaves none (TopK >= 1, TopP keeps at least one). A grammar that bans
//    every candidate makes sample() return -1 (the constraint failed).
//  - Not thread-safe; one chain per sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/rng.h"

namespace tracelm {

struct Candidates {
  std::vector<int32_t> ids;
  std::vector<float> logits;  // parallel to ids
  size_t size() const { return ids.size(); }
  // All tokens 0..n-1 with their logits.
  static Candidates from_logits(const float* logits, size_t n);
  void keep(const std::vector<size_t>& idx);  // keeps these positions, in this order
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual void apply(Candidates& c) = 0;
  virtual void accept(int32_t /*token*/) {}
  virtual void reset() {}
  virtual std::unique_ptr<Sampler> clone() const = 0;
  virtual std::string name() const = 0;
};

std::unique_ptr<Sampler> temperature_sampler(double t);  // logits / t (t > 0)
std::unique_ptr<Sampler> top_k_sampler(int64_t k);       // the k largest logits (k >= 1)
std::unique_ptr<Sampler> top_p_sampler(double p);        // smallest set with probability >= p

struct SamplingParams {
  // 0 = greedy. The paper sampled at 0.8; 0.6 is more realistic with our small
  // models on both corpora measured (bench/temperature.sh, docs/generation.md).
  double temperature = 0.6;
  int64_t top_k = 50;  // 0 = off
  double top_p = 1.0;  // 1 = off
  uint64_t seed = 1;
};

class SamplerChain : public Sampler {
 public:
  explicit SamplerChain(uint64_t seed, bool greedy) : rng_(seed), seed_(seed), greedy_(greedy) {}
  static std::unique_ptr<SamplerChain> from_params(const SamplingParams& p);
  void add(std::unique_ptr<Sampler> s) { chain_.push_back(std::move(s)); }
  // The grammar checked by sample() (nullptr: none). The chain owns it.
  void set_grammar(std::unique_ptr<Sampler> g) { grammar_ = std::move(g); }
  Sampler* grammar() const { return grammar_.get(); }
  void apply(Candidates& c) override;
  void accept(int32_t token) override;
  void reset() override;
  std::unique_ptr<Sampler> clone() const override;
  std::string name() const override;
  // Applies the chain, then picks: argmax when greedy, else a draw from the
  // softmax of the remaining logits. -1 when no candidate is left.
  // The grammar is not consulted.
  int32_t pick(Candidates& c);
  // The next token from a sequence's raw logits [n], through the grammar
  // when there is one (check the draw first; mask and redraw only when it
  // fails, then *redrawn is set). The grammar and the chain accept the
  // token. -1 when the grammar allows no candidate.
  int32_t sample(const float* logits, size_t n, bool* redrawn = nullptr);
  void reseed(uint64_t seed) {
    rng_ = Rng(seed);
    seed_ = seed;
  }

 private:
  int32_t draw(Candidates& c);  // apply the chain, then argmax or a seeded draw
  std::vector<std::unique_ptr<Sampler>> chain_;
  std::unique_ptr<Sampler> grammar_;
  Rng rng_;
  uint64_t seed_;
  bool greedy_;
};

}  // namespace tracelm
