// LlamaConfig: the architecture of a Llama-family decoder, read from and
// written to a Hugging Face `config.json` (docs/architecture.md, "Models").
//
// Contract: parse_llama_config() validates what the model code relies on
// (positive sizes, heads dividing the hidden size, KV heads dividing the
// heads, a SiLU MLP) and throws InputError naming the file and the field.
// Fields not listed here are ignored on read. Plain data, no libtorch.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tracelm {

struct LlamaConfig {
  int64_t vocab_size = 512;         // tokens
  int64_t hidden_size = 64;         // model width (dim)
  int64_t intermediate_size = 172;  // SwiGLU hidden width
  int64_t num_hidden_layers = 5;    // transformer blocks
  int64_t num_attention_heads = 8;  // query heads
  int64_t num_key_value_heads = 4;  // key/value heads (grouped-query attention)
  int64_t max_position_embeddings = 512;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;  // lm_head shares the embedding matrix
  int64_t bos_token_id = 1, eos_token_id = 2;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Parameters of the model (embedding counted once when tied).
  int64_t num_parameters() const;
  nlohmann::json to_json() const;  // a config.json Hugging Face accepts
};

LlamaConfig parse_llama_config(const nlohmann::json& j, const std::string& file);
LlamaConfig load_llama_config(const std::string& path);  // a config.json file

}  // namespace tracelm
