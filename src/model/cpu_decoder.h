// A decoding engine for small Llama models on CPUs, after llm.c and
// llama.cpp: the model's weights copied once into fp32 matrices packed for
// its product kernel (LoRA adapters merged; model/cpu_kernels.h), every
// sequence's keys and values in its own growing buffer (a token appends one
// row; nothing earlier is copied), and one forward pass over any mix of
// sequences and tokens made of a few matrix products and plain loops, with
// no per-op dispatch and no allocation once the buffers have grown.
//
// Why: decoding a 3 M-parameter model is a few MFLOP per token; libtorch's
// per-op overhead, its KV-cache concatenation (O(length) copies per step)
// and mask building cost more than the arithmetic (bench/generate_bench.cc
// prints both engines side by side).
//
// Usage:
//   CpuDecoder eng(model);
//   int s = eng.add_slot();                        // a new sequence
//   eng.forward({{s, 1, false}, {s, 42, true}});   // its prompt; logits of the last token
//   const float* l = eng.logits(0);                // (V) next-token logits
//   eng.forward({{s, next, true}});                // one more token
//   eng.release(s);
//
// Contract:
//  - forward() appends each token to its slot's sequence (a slot's tokens in
//    the call are consecutive positions, in the order given) and computes
//    exactly the model's forward (Llama::forward, fp32; tests compare logits
//    within 1e-4). Rows do not interact: a sequence's logits do not depend
//    on the other slots in the call.
//  - Only for fp32 models on the CPU; the model is read once, at
//    construction (later changes to it are not seen).
//  - Precision::kBF16: the products' weights and inputs rounded to bf16
//    (model/cpu_kernels.h; norms, attention, the KV cache and the sums stay
//    fp32): not the model's exact logits (tests bound the difference), but
//    still rows that do not interact, so the same graphs at any batch size.
//  - Not thread-safe (one engine per decoding loop). Engines on several
//    threads share one copy of the weights: CpuDecoder(shared_weights()).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/cpu_kernels.h"
#include "model/llama.h"

namespace tracelm {

class CpuDecoder {
 public:
  // The model's weights as the engine reads them (immutable once built).
  struct Weights;
  explicit CpuDecoder(const Llama& model, Precision precision = Precision::kF32);
  // Another engine over the same weights (e.g. on another thread).
  explicit CpuDecoder(std::shared_ptr<const Weights> weights);
  std::shared_ptr<const Weights> shared_weights() const { return w_; }

  struct Token {
    int32_t slot;  // the sequence (add_slot())
    int32_t id;    // the token
    bool logits;   // compute its next-token logits
  };
  // Appends the tokens; afterwards logits(i) holds the i-th requested
  // row of logits (in the order of the tokens with logits = true).
  void forward(const std::vector<Token>& tokens);
  const float* logits(size_t i) const { return logits_.data() + i * static_cast<size_t>(vocab()); }

  int32_t add_slot();  // an empty sequence (reuses released slots)
  void release(int32_t slot);
  int64_t length(int32_t slot) const { return slots_[static_cast<size_t>(slot)].length; }
  int64_t vocab() const;
  // Wall seconds inside forward(), and the part of them in matrix products.
  double forward_seconds() const { return forward_s_; }
  double matmul_seconds() const { return matmul_s_; }

 private:
  struct Slot {
    int64_t length = 0, capacity = 0;
    bool used = false;
    // Per layer: keys in blocks of 16 positions (capacity/16, K*D, 16), values (capacity, K*D).
    std::vector<std::vector<float>> k, v;
  };
  void reserve(Slot& s, int64_t n);
  void rope(float* x, int64_t heads, int64_t pos);  // in place, heads x D
  // m consecutive tokens of a slot from position pos0 (model/cpu_kernels.h)
  void attend(const float* q, const Slot& s, int64_t layer, int64_t pos0, int64_t m, float* out);
  void matmul(const float* x, int64_t n, const PackedMatrix& w, float* y);  // y = x W^T, timed
  // One layer's two halves over the call's rows (x_ in place).
  void attention_block(const std::vector<Token>& tokens, int64_t layer);
  void mlp_block(int64_t n, int64_t layer);

  std::shared_ptr<const Weights> w_;
  std::vector<float> cos_, sin_;  // (positions, D/2), grown on use
  std::vector<Slot> slots_;
  double forward_s_ = 0, matmul_s_ = 0;
  // Work buffers, grown as needed: (n, .) for n tokens in a call.
  std::vector<float> x_, xn_, qkv_, att_, gu_, act_, tmp_, logits_, scores_;
  std::vector<int64_t> pos_;  // (n) each token's position in its slot
};

}  // namespace tracelm
