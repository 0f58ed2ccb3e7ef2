// The classifier head of the prediction tasks, in libtorch (what
// LlamaForSequenceClassification computes): the final hidden state (after
// the last norm) of each sequence's last token, times a bias-free weight.
//
// Shapes: B sequences, T padded length, C hidden size.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "model/llama.h"

namespace tracelm {

// Final hidden state of the last token of each sequence (B, C). Sequences of
// different lengths are right-padded into one batch (padding is masked out
// and never attended to), so each row equals the sequence's own forward.
torch::Tensor last_token_hidden(Llama& model, const std::vector<std::vector<int>>& seqs);

// logits (B, K) = features (B, C) x weight (K, C)^T.
inline torch::Tensor head_logits(const torch::Tensor& weight, const torch::Tensor& features) {
  return torch::matmul(features, weight.t());
}

}  // namespace tracelm
