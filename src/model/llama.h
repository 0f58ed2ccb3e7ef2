// Llama: a Llama-architecture decoder in libtorch (RMSNorm, rotary position
// embeddings in the Hugging Face rotate-half layout, SwiGLU MLP, grouped-query
// attention, tied or untied embeddings), with Hugging Face parameter names
// so that checkpoints load and save as `model.safetensors`.
//
// Shapes: B batch, T new tokens, L cached + new tokens, C hidden size,
// H query heads, K key/value heads, D head dim, V vocabulary.
//
// Contract:
//  - forward(ids) computes next-token logits (B, T, V) in float32.
//  - With a KVCache, forward() appends the new keys/values and attends over
//    everything cached: feeding a sequence in pieces gives the logits of the
//    whole-sequence forward (tested). Rows of a batch may hold sequences of
//    different lengths: pass `positions` (B, T) and `valid` (B, T) (false for
//    padding tokens, which nothing attends to).
//  - load_llama() reads config.json and model.safetensors (or a sharded
//    index) from a directory, F32/F16/BF16 on disk; save_llama() writes the
//    same layout in F32. Errors name the file and tensor (InputError).
//  - Not thread-safe: one forward at a time per model (libtorch uses the
//    machine's threads inside each operation).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/config.h"

namespace tracelm {

// Keys and values of every layer for the tokens seen so far.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer: (B, K, L, D)
  torch::Tensor positions;          // (B, L) int64: position of each cached token
  torch::Tensor valid;              // (B, L) bool: false for padding
  int64_t length() const { return positions.defined() ? positions.size(1) : 0; }
  void clear() { *this = KVCache{}; }
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // (..., C) -> (..., C)
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// A bias-free projection y = x W^T (W: (out, in), Hugging Face layout), with
// an optional LoRA update y += dropout(x) A^T B^T * (alpha / r), where
// A: (r, in) and B: (out, r). Parameters: "weight", and "lora_A"/"lora_B"
// once enable_lora() is called.
class ProjImpl : public torch::nn::Module {
 public:
  ProjImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);  // (..., in) -> (..., out)
  void enable_lora(int64_t r, double alpha, double dropout, torch::Generator& gen);
  // The adapter's update of forward(x) (dropout in training mode); needs has_lora().
  torch::Tensor lora_delta(const torch::Tensor& x);
  void merge_lora();  // W += B A * scale, then drop the adapter
  bool has_lora() const { return lora_active_; }
  torch::Tensor weight, lora_A, lora_B;
  double scale = 0, dropout = 0;

 private:
  bool lora_active_ = false;
};
TORCH_MODULE(Proj);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const LlamaConfig& c);
  // x (B,T,C); cos/sin (B or 1,1,T,D); mask (B or 1,1,T,L) additive; cache: this
  // layer's k,v. causal: mask is the plain causal mask (1,1,T,T) (no cache),
  // and queries are processed in chunks that skip the keys after them.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        bool causal = false);
  static constexpr int64_t kCausalChunk = 128;  // queries per chunk
  Proj q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const LlamaConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // (B,T,C) -> (B,T,C)
  Proj gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const LlamaConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        bool causal = false);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

// The decoder body ("model." in Hugging Face names).
class LlamaBodyImpl : public torch::nn::Module {
 public:
  explicit LlamaBodyImpl(const LlamaConfig& c);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaBody);

class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(const LlamaConfig& c);
  // ids (B,T) int64 -> logits (B,T,V). positions/valid: see the contract.
  torch::Tensor forward(const torch::Tensor& ids, KVCache* cache = nullptr,
                        torch::Tensor positions = {}, torch::Tensor valid = {});
  // Hidden states after the final norm (B,T,C), for heads other than the LM.
  torch::Tensor hidden(const torch::Tensor& ids, KVCache* cache = nullptr,
                       torch::Tensor positions = {}, torch::Tensor valid = {});
  torch::Tensor logits(const torch::Tensor& h);  // (B,T,C) -> (B,T,V)
  const LlamaConfig& config() const { return config_; }

  LlamaBody model{nullptr};
  Proj lm_head{nullptr};  // null when the embeddings are tied

 private:
  void rope_table(int64_t upto);
  LlamaConfig config_;
  torch::Tensor cos_, sin_;    // (P, D) for positions 0..P-1
  torch::Tensor causal_mask_;  // (1,1,T,T) additive, for the last T without a cache
};
TORCH_MODULE(Llama);

// Loads a Hugging Face model directory (config.json + safetensors).
Llama load_llama(const std::string& dir);
// Writes config.json and model.safetensors (F32) into dir (created if needed).
void save_llama(const Llama& model, const std::string& dir);
// A model with random weights (normal, std 0.02), seeded.
Llama init_llama(const LlamaConfig& c, uint64_t seed);

// LoRA (docs: paper §3; PEFT layout on disk).
struct LoraConfig {
  int64_t r = 8;         // rank
  double alpha = 16;     // scaling alpha / r
  double dropout = 0.1;  // on the adapter's input, in training mode only
  std::vector<std::string> target_modules = {"q_proj", "k_proj"};  // the paper's choice
  nlohmann::json to_json(const std::string& base_model) const;     // adapter_config.json
  static LoraConfig from_json(const nlohmann::json& j, const std::string& file);
};
// Adds adapters to every projection named in target_modules (A: Kaiming
// uniform as PEFT, B: zeros, so the model is unchanged) and freezes every
// other parameter. Returns the number of trainable parameters.
int64_t add_lora(Llama& m, const LoraConfig& c, uint64_t seed);
// adapter_config.json + adapter_model.safetensors with PEFT tensor names
// (base_model.model.<module>.lora_A.weight).
void save_lora(const Llama& m, const LoraConfig& c, const std::string& dir,
               const std::string& base_model = "");
// Reads an adapter directory (PEFT layout), adds and fills the adapters.
LoraConfig load_lora(Llama& m, const std::string& dir);
// Folds every adapter into its weight (W += B A * alpha/r) and removes it.
void merge_lora(Llama& m);

}  // namespace tracelm
