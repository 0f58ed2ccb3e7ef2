#include "model/llama.h"

#include <sys/stat.h>

#include <cmath>
#include <limits>

#include "io/atomic_file.h"
#include "io/input_error.h"
#include "model/safetensors.h"

namespace tracelm {

namespace {

Proj linear(int64_t in, int64_t out) { return Proj(in, out); }

// (..., D) -> (..., D): (x1, x2) -> (-x2, x1) over the two halves.
torch::Tensor rotate_half(const torch::Tensor& x) {
  int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

ProjImpl::ProjImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
}

torch::Tensor ProjImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::nn::functional::linear(x, weight);
  return lora_active_ ? y + lora_delta(x) : y;
}

torch::Tensor ProjImpl::lora_delta(const torch::Tensor& x) {
  torch::Tensor h = x;
  if (is_training() && dropout > 0) h = torch::dropout(h, dropout, true);
  // (..., in) x (in, r) x (r, out)
  return torch::matmul(torch::matmul(h, lora_A.t()), lora_B.t()) * scale;
}

namespace {

// The projections of `ps` (same input width) of x in one matrix product over
// their concatenated weights, plus each one's LoRA update: (..., in) ->
// (..., out_i) each (views into one tensor). One product reads x once, and
// its backward gives the gradient of x in one product instead of a sum.
std::vector<torch::Tensor> project(const torch::Tensor& x, std::initializer_list<ProjImpl*> ps) {
  std::vector<torch::Tensor> ws;
  for (ProjImpl* p : ps) ws.push_back(p->weight);
  std::vector<int64_t> sizes;
  for (ProjImpl* p : ps) sizes.push_back(p->weight.size(0));
  torch::Tensor y = torch::nn::functional::linear(x, torch::cat(ws, 0));  // (..., sum out)
  // split (not narrow): its backward is one cat, not a zero-filled tensor per part.
  std::vector<torch::Tensor> out = y.split_with_sizes(sizes, -1);
  size_t i = 0;
  for (ProjImpl* p : ps) {
    if (p->has_lora()) out[i] = out[i] + p->lora_delta(x);
    ++i;
  }
  return out;
}

}  // namespace

void ProjImpl::enable_lora(int64_t r, double alpha, double drop, torch::Generator& gen) {
  if (lora_A.defined()) throw std::logic_error("LoRA already added to this projection");
  int64_t in = weight.size(1), out = weight.size(0);
  lora_A = register_parameter("lora_A", torch::empty({r, in}));
  lora_B = register_parameter("lora_B", torch::zeros({out, r}));
  {
    torch::NoGradGuard ng;
    // PEFT: kaiming_uniform_(a=sqrt(5)) on A: bound = 1/sqrt(in).
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    lora_A.uniform_(-bound, bound, gen);
  }
  scale = alpha / static_cast<double>(r);
  dropout = drop;
  lora_active_ = true;
}

void ProjImpl::merge_lora() {
  if (!lora_active_) return;
  {
    torch::NoGradGuard ng;
    weight.add_(torch::matmul(lora_B, lora_A) * scale);  // (out,r)x(r,in)
  }
  // libtorch 1.13 cannot unregister parameters: keep them, inactive and
  // frozen (save_llama skips adapter tensors).
  lora_A.set_requires_grad(false);
  lora_B.set_requires_grad(false);
  lora_active_ = false;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  torch::Tensor var = x.pow(2).mean(-1, /*keepdim=*/true);  // (..., 1)
  return x * torch::rsqrt(var + eps_) * weight;
}

AttentionImpl::AttentionImpl(const LlamaConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim()) {
  q_proj = register_module("q_proj", linear(c.hidden_size, heads_ * head_dim_));
  k_proj = register_module("k_proj", linear(c.hidden_size, kv_heads_ * head_dim_));
  v_proj = register_module("v_proj", linear(c.hidden_size, kv_heads_ * head_dim_));
  o_proj = register_module("o_proj", linear(heads_ * head_dim_, c.hidden_size));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& mask,
                                     torch::Tensor* cache_k, torch::Tensor* cache_v, bool causal) {
  int64_t B = x.size(0), T = x.size(1);
  std::vector<torch::Tensor> qkv = project(x, {q_proj.get(), k_proj.get(), v_proj.get()});
  torch::Tensor q = qkv[0].view({B, T, heads_, head_dim_}).transpose(1, 2);     // (B,H,T,D)
  torch::Tensor k = qkv[1].view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // (B,K,T,D)
  torch::Tensor v = qkv[2].view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // (B,K,T,D)
  q = q * cos + rotate_half(q) * sin;  // contiguous (B,H,T,D)
  k = k * cos + rotate_half(k) * sin;
  if (cache_k) {
    if (cache_k->defined()) {
      k = torch::cat({*cache_k, k}, 2);  // (B,K,L,D)
      v = torch::cat({*cache_v, v}, 2);
    }
    *cache_k = k;
    *cache_v = v;
  }
  if (heads_ != kv_heads_) {
    k = k.repeat_interleave(heads_ / kv_heads_, 1);  // (B,H,L,D)
    v = v.repeat_interleave(heads_ / kv_heads_, 1);
  }
  int64_t L = k.size(2);
  double scale = 1.0 / std::sqrt(double(head_dim_));
  torch::Tensor qf = q.reshape({B * heads_, T, head_dim_});                  // (B*H,T,D)
  torch::Tensor kt = k.reshape({B * heads_, L, head_dim_}).transpose(1, 2);  // (B*H,D,L)
  torch::Tensor vf = v.reshape({B * heads_, L, head_dim_});                  // (B*H,L,D)
  torch::Tensor y;
  if (causal && T > kCausalChunk) {
    // Causal: queries [s, e) see keys [0, e) only, so each chunk of queries
    // skips the products (and softmax) over keys that the mask would zero.
    // (split, not narrow, for the queries: its backward is one cat.)
    std::vector<torch::Tensor> ys, qs = qf.split(kCausalChunk, 1);
    for (size_t c = 0; c < qs.size(); ++c) {
      int64_t s = static_cast<int64_t>(c) * kCausalChunk, e = s + qs[c].size(1);
      torch::Tensor m = mask.view({1, T, L}).narrow(1, s, e - s).narrow(2, 0, e);  // (1,Tc,e)
      torch::Tensor kc = e == L ? kt : kt.narrow(2, 0, e), vc = e == L ? vf : vf.narrow(1, 0, e);
      torch::Tensor att = torch::baddbmm(m, qs[c], kc, 1.0, scale);  // (B*H,Tc,e)
      ys.push_back(torch::bmm(torch::softmax(att, -1), vc));         // (B*H,Tc,D)
    }
    y = torch::cat(ys, 1);  // (B*H,T,D)
  } else {
    // scale * q k^T + mask in one batched product; a mask shared by every
    // row (1,1,T,L) broadcasts without a copy.
    torch::Tensor m = mask.size(0) == 1
                          ? mask.view({1, T, L})
                          : mask.expand({B, heads_, T, L}).reshape({B * heads_, T, L});
    torch::Tensor att = torch::baddbmm(m, qf, kt, 1.0, scale);  // (B*H,T,L)
    y = torch::bmm(torch::softmax(att, -1), vf);                // (B*H,T,D)
  }
  y = y.view({B, heads_, T, head_dim_}).transpose(1, 2).reshape({B, T, heads_ * head_dim_});
  return o_proj(y);
}

MlpImpl::MlpImpl(const LlamaConfig& c) {
  gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size));
  down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> gu = project(x, {gate_proj.get(), up_proj.get()});  // (B,T,I) x2
  return down_proj(torch::silu(gu[0]) * gu[1]);
}

BlockImpl::BlockImpl(const LlamaConfig& c) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", Attention(c));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", Mlp(c));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& mask,
                                 torch::Tensor* cache_k, torch::Tensor* cache_v, bool causal) {
  torch::Tensor h = x + self_attn(input_layernorm(x), cos, sin, mask, cache_k, cache_v, causal);
  return h + mlp(post_attention_layernorm(h));
}

LlamaBodyImpl::LlamaBodyImpl(const LlamaConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(Block(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

LlamaImpl::LlamaImpl(const LlamaConfig& c) : config_(c) {
  model = register_module("model", LlamaBody(c));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", linear(c.hidden_size, c.vocab_size));
}

void LlamaImpl::rope_table(int64_t upto) {
  if (cos_.defined() && cos_.size(0) >= upto) return;
  int64_t n = std::max<int64_t>(upto, config_.max_position_embeddings);
  int64_t d = config_.head_dim();
  // inv_freq[i] = theta^(-2i/D), computed in double then rounded, as HF does in float32.
  torch::Tensor inv = torch::pow(config_.rope_theta,
                                 -torch::arange(0, d, 2, torch::kFloat64) / static_cast<double>(d))
                          .to(torch::kFloat32);         // (D/2)
  torch::Tensor t = torch::arange(n, torch::kFloat32);  // (P)
  torch::Tensor freqs = torch::outer(t, inv);           // (P, D/2)
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);   // (P, D)
  cos_ = emb.cos();
  sin_ = emb.sin();
}

torch::Tensor LlamaImpl::hidden(const torch::Tensor& ids, KVCache* cache, torch::Tensor positions,
                                torch::Tensor valid) {
  int64_t B = ids.size(0), T = ids.size(1);
  int64_t start = cache ? cache->length() : 0;
  torch::Tensor cos, sin, mask;
  bool causal = false;  // mask is causal_mask_ (T x T)
  if (!positions.defined() && !valid.defined() && start == 0) {
    // Every row at positions 0..T-1, all valid: one causal mask and one RoPE
    // table slice shared by the rows (no gathers, no (B,T,L) mask).
    rope_table(T);
    cos = cos_.narrow(0, 0, T).view({1, 1, T, -1});  // (1,1,T,D)
    sin = sin_.narrow(0, 0, T).view({1, 1, T, -1});
    if (!causal_mask_.defined() || causal_mask_.size(-1) != T)
      causal_mask_ =
          torch::full({T, T}, -std::numeric_limits<float>::infinity()).triu(1).view({1, 1, T, T});
    mask = causal_mask_;
    causal = true;
    if (cache) {
      positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T});
      valid = torch::ones({B, T}, torch::kBool);
    }
  } else {
    if (!positions.defined())
      positions = torch::arange(start, start + T, torch::kInt64).unsqueeze(0).expand({B, T});
    if (!valid.defined()) valid = torch::ones({B, T}, torch::kBool);
    rope_table(positions.max().item<int64_t>() + 1);
    cos = cos_.index({positions}).unsqueeze(1);  // (B,1,T,D)
    sin = sin_.index({positions}).unsqueeze(1);
    torch::Tensor key_pos = positions, key_valid = valid;  // (B,L)
    if (cache && cache->length() > 0) {
      key_pos = torch::cat({cache->positions, positions}, 1);
      key_valid = torch::cat({cache->valid, valid}, 1);
    }
    // A query sees valid keys at positions <= its own (B,T,L); a query that
    // sees nothing (padding) sees everything instead, to keep softmax finite.
    torch::Tensor allowed =
        key_pos.unsqueeze(1).le(positions.unsqueeze(2)) & key_valid.unsqueeze(1);
    allowed = allowed | ~allowed.any(-1, /*keepdim=*/true);
    mask = torch::zeros(allowed.sizes(), torch::kFloat32)
               .masked_fill(~allowed, -std::numeric_limits<float>::infinity())
               .unsqueeze(1);  // (B,1,T,L)
    positions = key_pos;
    valid = key_valid;
  }
  if (cache) {
    if (cache->k.empty()) {
      cache->k.resize(static_cast<size_t>(config_.num_hidden_layers));
      cache->v.resize(static_cast<size_t>(config_.num_hidden_layers));
    }
    cache->positions = positions;
    cache->valid = valid;
  }
  torch::Tensor h = model->embed_tokens(ids);  // (B,T,C)
  for (size_t i = 0; i < model->layers->size(); ++i) {
    h = model->layers[i]->as<BlockImpl>()->forward(
        h, cos, sin, mask, cache ? &cache->k[i] : nullptr, cache ? &cache->v[i] : nullptr, causal);
  }
  return model->norm(h);
}

torch::Tensor LlamaImpl::logits(const torch::Tensor& h) {
  if (!lm_head.is_empty()) return lm_head(h);
  return torch::matmul(h, model->embed_tokens->weight.t());  // tied: (B,T,C) x (C,V)
}

torch::Tensor LlamaImpl::forward(const torch::Tensor& ids, KVCache* cache, torch::Tensor positions,
                                 torch::Tensor valid) {
  return logits(hidden(ids, cache, std::move(positions), std::move(valid)));
}

Llama load_llama(const std::string& dir) {
  LlamaConfig c = load_llama_config(dir + "/config.json");
  Llama m(c);
  SafetensorsModel st(dir);
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) {
    const std::string& name = p.key();
    if (!st.has(name)) throw InputError(dir, 0, "the checkpoint has no tensor \"" + name + "\"");
    TensorView view = st.get(name);
    std::vector<int64_t> want(p.value().sizes().begin(), p.value().sizes().end());
    if (view.shape != want)
      throw InputError(dir, 0, "tensor \"" + name + "\" has the wrong shape for this config");
    if (view.dtype != "F32" && view.dtype != "F16" && view.dtype != "BF16")
      throw InputError(
          dir, 0,
          "tensor \"" + name + "\" has dtype " + view.dtype + " (expected F32, F16 or BF16)");
    torch::Tensor dst = torch::empty(p.value().sizes(), torch::kFloat32);
    to_float32(view, dst.data_ptr<float>());
    p.value().copy_(dst);
  }
  return m;
}

void save_llama(const Llama& model, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  std::vector<torch::Tensor> keep;
  std::vector<TensorData> tensors;
  for (auto& p : model->named_parameters()) {
    if (p.key().find(".lora_") != std::string::npos) continue;  // adapters: save_lora()
    torch::Tensor t = p.value().detach().to(torch::kFloat32).contiguous();
    keep.push_back(t);
    tensors.push_back({p.key(), "F32", std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                       t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float)});
  }
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  AtomicFile cfg(dir + "/config.json");
  cfg.write(model->config().to_json().dump(2) + "\n");
  cfg.close();
}

Llama init_llama(const LlamaConfig& c, uint64_t seed) {
  Llama m(c);
  auto gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) {
    if (p.value().dim() >= 2) p.value().normal_(0.0, 0.02, gen);
  }
  return m;
}

}  // namespace tracelm
