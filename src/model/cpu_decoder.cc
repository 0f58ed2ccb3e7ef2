#include "model/cpu_decoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

namespace tracelm {

namespace {

// A projection's effective weight (out, in), LoRA update merged, as fp32.
std::vector<float> weight_of(Proj& p) {
  torch::NoGradGuard ng;
  torch::Tensor w = p->weight.detach().to(torch::kFloat32);
  if (p->has_lora())
    w = w +
        torch::mm(p->lora_B.detach().to(torch::kFloat32), p->lora_A.detach().to(torch::kFloat32)) *
            p->scale;
  w = w.contiguous();
  return std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
}

std::vector<float> vec_of(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<float> concat(std::initializer_list<std::vector<float>> parts) {
  std::vector<float> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

struct CpuDecoder::Weights {
  // Products' weights packed once (model/cpu_kernels.h); shapes (out, in).
  struct Layer {
    std::vector<float> attn_norm, mlp_norm;  // (C)
    PackedMatrix wqkv;                       // (H*D + 2*K*D, C): q, k, v rows
    PackedMatrix wo;                         // (C, H*D)
    PackedMatrix wgu;                        // (2*I, C): gate, up rows
    PackedMatrix wdown;                      // (C, I)
  };
  int64_t C, H, K, D, I, vocab, layers;
  double eps;
  std::vector<float> embed, final_norm;  // (V, C), (C)
  PackedMatrix lm_head;                  // (V, C)
  std::vector<Layer> layer;
  std::vector<float> inv_freq;  // (D/2)
};

namespace {

std::shared_ptr<const CpuDecoder::Weights> weights_of(const Llama& model, Precision precision) {
  auto w = std::make_shared<CpuDecoder::Weights>();
  const LlamaConfig& c = model->config();
  w->C = c.hidden_size;
  w->H = c.num_attention_heads;
  w->K = c.num_key_value_heads;
  w->D = c.head_dim();
  w->I = c.intermediate_size;
  w->vocab = c.vocab_size;
  w->layers = c.num_hidden_layers;
  w->eps = c.rms_norm_eps;
  if (w->H % w->K != 0)
    throw std::invalid_argument("attention heads must be a multiple of kv heads");
  Llama m = model;  // a handle: shares the modules
  LlamaBody body = m->model;
  if (body->embed_tokens->weight.device().type() != torch::kCPU)
    throw std::invalid_argument("CpuDecoder needs a model on the CPU");
  w->embed = vec_of(body->embed_tokens->weight);
  w->final_norm = vec_of(body->norm->weight);
  auto pack = [precision](const std::vector<float>& v, int64_t rows, int64_t cols) {
    return pack_matrix(v.data(), rows, cols, precision);
  };
  const int64_t NQKV = (w->H + 2 * w->K) * w->D;
  w->lm_head = pack(m->lm_head.is_empty() ? w->embed : weight_of(m->lm_head), w->vocab, w->C);
  for (int64_t l = 0; l < w->layers; ++l) {
    BlockImpl* b = body->layers[static_cast<size_t>(l)]->as<BlockImpl>();
    CpuDecoder::Weights::Layer L;
    L.attn_norm = vec_of(b->input_layernorm->weight);
    L.mlp_norm = vec_of(b->post_attention_layernorm->weight);
    L.wqkv = pack(concat({weight_of(b->self_attn->q_proj), weight_of(b->self_attn->k_proj),
                          weight_of(b->self_attn->v_proj)}),
                  NQKV, w->C);
    L.wo = pack(weight_of(b->self_attn->o_proj), w->C, w->H * w->D);
    L.wgu =
        pack(concat({weight_of(b->mlp->gate_proj), weight_of(b->mlp->up_proj)}), 2 * w->I, w->C);
    L.wdown = pack(weight_of(b->mlp->down_proj), w->C, w->I);
    w->layer.push_back(std::move(L));
  }
  // inv_freq[i] = theta^(-2i/D), computed in double then rounded, as HF does.
  for (int64_t i = 0; i < w->D / 2; ++i)
    w->inv_freq.push_back(static_cast<float>(
        std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(w->D))));
  return w;
}

}  // namespace

CpuDecoder::CpuDecoder(const Llama& model, Precision precision)
    : w_(weights_of(model, precision)) {}

CpuDecoder::CpuDecoder(std::shared_ptr<const Weights> weights) : w_(std::move(weights)) {}

int64_t CpuDecoder::vocab() const { return w_->vocab; }

int32_t CpuDecoder::add_slot() {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].used) {
      slots_[i].used = true;
      slots_[i].length = 0;
      return static_cast<int32_t>(i);
    }
  Slot s;
  s.used = true;
  s.k.resize(static_cast<size_t>(w_->layers));
  s.v.resize(static_cast<size_t>(w_->layers));
  slots_.push_back(std::move(s));
  return static_cast<int32_t>(slots_.size() - 1);
}

void CpuDecoder::release(int32_t slot) {
  slots_[static_cast<size_t>(slot)].used = false;
  slots_[static_cast<size_t>(slot)].length = 0;
}

void CpuDecoder::reserve(Slot& s, int64_t n) {
  if (n <= s.capacity) return;
  int64_t cap = std::max<int64_t>({n, 2 * s.capacity, 256});
  cap = (cap + kPanel - 1) / kPanel * kPanel;  // whole blocks of 16 positions
  const int64_t rows = w_->K * w_->D;          // floats per position
  for (int64_t l = 0; l < w_->layers; ++l) {   // blocks and rows are appended: nothing moves
    s.k[static_cast<size_t>(l)].resize(static_cast<size_t>(cap * rows));
    s.v[static_cast<size_t>(l)].resize(static_cast<size_t>(cap * rows));
  }
  s.capacity = cap;
}

void CpuDecoder::rope(float* x, int64_t heads, int64_t pos) {
  // Hugging Face's rotate_half: (a, b) -> (a cos - b sin, b cos + a sin) for
  // the pairs (j, j + D/2); angles in fp32 as torch computes them, tabulated
  // per position on first use.
  const int64_t half = w_->D / 2;
  while (static_cast<int64_t>(cos_.size()) < (pos + 1) * half) {
    float p = static_cast<float>(static_cast<int64_t>(cos_.size()) / half);
    for (int64_t j = 0; j < half; ++j) {
      float ang = p * w_->inv_freq[static_cast<size_t>(j)];
      cos_.push_back(std::cos(ang));
      sin_.push_back(std::sin(ang));
    }
  }
  const float* cs = cos_.data() + pos * half;
  const float* sn = sin_.data() + pos * half;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * w_->D;
    for (int64_t j = 0; j < half; ++j) {
      float a = v[j], b = v[j + half];
      v[j] = a * cs[j] - b * sn[j];
      v[j + half] = b * cs[j] + a * sn[j];
    }
  }
}

void CpuDecoder::matmul(const float* x, int64_t n, const PackedMatrix& w, float* y) {
  auto t0 = std::chrono::steady_clock::now();
  matmul_packed(x, n, w, y);
  matmul_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Causal attention of m tokens of the call, consecutive positions of one
// slot from pos0 (rows of q and out: H*D + 2*K*D and H*D floats): each key/
// value head's cache is read once for the run's tokens and the query heads
// that share it.
void CpuDecoder::attend(const float* q, const Slot& s, int64_t l, int64_t pos0, int64_t m,
                        float* out) {
  const int64_t K = w_->K, D = w_->D, NKV = K * D, group = w_->H / K, NQ = w_->H * D;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  const float* kt = s.k[static_cast<size_t>(l)].data();
  const float* vc = s.v[static_cast<size_t>(l)].data();
  const int64_t padded = (pos0 + m + kPanel - 1) / kPanel * kPanel;
  grow(scores_, static_cast<size_t>(m * group * padded));
  for (int64_t kvh = 0; kvh < K; ++kvh)
    attend_rows(q + kvh * group * D, NQ + 2 * NKV, m, group, kt + kvh * D * kPanel, NKV * kPanel,
                vc + kvh * D, NKV, pos0 + 1, D, scale, scores_.data(), out + kvh * group * D, NQ);
}

void CpuDecoder::forward(const std::vector<Token>& tokens) {
  auto t0 = std::chrono::steady_clock::now();
  const size_t un = tokens.size();
  const int64_t NQ = w_->H * w_->D, NKV = w_->K * w_->D;
  // Positions: each slot's tokens follow its current length, in order.
  pos_.resize(un);
  for (size_t i = 0; i < un; ++i) {
    Slot& s = slots_[static_cast<size_t>(tokens[i].slot)];
    pos_[i] = s.length++;
  }
  for (size_t i = 0; i < un; ++i) {
    Slot& s = slots_[static_cast<size_t>(tokens[i].slot)];
    reserve(s, s.length);
  }
  grow(x_, un * static_cast<size_t>(w_->C));
  grow(xn_, un * static_cast<size_t>(w_->C));
  grow(qkv_, un * static_cast<size_t>(NQ + 2 * NKV));
  grow(att_, un * static_cast<size_t>(NQ));
  grow(gu_, un * static_cast<size_t>(2 * w_->I));
  grow(act_, un * static_cast<size_t>(w_->I));
  grow(tmp_, un * static_cast<size_t>(w_->C));
  for (size_t i = 0; i < un; ++i) {
    int32_t id = tokens[i].id;
    if (id < 0 || id >= w_->vocab) throw std::out_of_range("CpuDecoder: token id out of range");
    std::copy_n(w_->embed.data() + static_cast<size_t>(id) * static_cast<size_t>(w_->C), w_->C,
                x_.data() + i * static_cast<size_t>(w_->C));
  }
  for (int64_t l = 0; l < w_->layers; ++l) {
    attention_block(tokens, l);
    mlp_block(static_cast<int64_t>(un), l);
  }
  // Final norm and the LM head, only for the rows whose logits are wanted.
  size_t m = 0;
  for (size_t i = 0; i < un; ++i)
    if (tokens[i].logits) {
      rms_norm_rows(x_.data() + i * static_cast<size_t>(w_->C), w_->final_norm.data(),
                    xn_.data() + m * static_cast<size_t>(w_->C), 1, w_->C,
                    static_cast<float>(w_->eps));
      ++m;
    }
  grow(logits_, m * static_cast<size_t>(w_->vocab));
  if (m > 0) matmul(xn_.data(), static_cast<int64_t>(m), w_->lm_head, logits_.data());
  forward_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// x += attention(norm(x)) for layer l: q k v in one product, RoPE, the new
// keys and values appended to their slots, attention per run of a slot's
// tokens, the output projection.
void CpuDecoder::attention_block(const std::vector<Token>& tokens, int64_t l) {
  const Weights::Layer& L = w_->layer[static_cast<size_t>(l)];
  const size_t un = tokens.size();
  const int64_t n = static_cast<int64_t>(un);
  const int64_t NQ = w_->H * w_->D, NKV = w_->K * w_->D, NQKV = NQ + 2 * NKV;
  rms_norm_rows(x_.data(), L.attn_norm.data(), xn_.data(), n, w_->C, static_cast<float>(w_->eps));
  matmul(xn_.data(), n, L.wqkv, qkv_.data());
  for (size_t i = 0; i < un; ++i) {
    float* q = qkv_.data() + i * static_cast<size_t>(NQKV);
    rope(q, w_->H, pos_[i]);
    rope(q + NQ, w_->K, pos_[i]);
    Slot& s = slots_[static_cast<size_t>(tokens[i].slot)];
    // The key block of 16 positions holding pos_[i] (model/cpu_kernels.h).
    float* kb = s.k[static_cast<size_t>(l)].data() + (pos_[i] / kPanel) * NKV * kPanel;
    for (int64_t r = 0; r < NKV; ++r) kb[r * kPanel + pos_[i] % kPanel] = q[NQ + r];
    std::copy_n(q + NQ + NKV, NKV,
                s.v[static_cast<size_t>(l)].data() + static_cast<size_t>(pos_[i] * NKV));
  }
  for (size_t i = 0; i < un;) {  // runs of one slot's tokens
    size_t j = i + 1;
    while (j < un && tokens[j].slot == tokens[i].slot) ++j;
    attend(qkv_.data() + i * static_cast<size_t>(NQKV), slots_[static_cast<size_t>(tokens[i].slot)],
           l, pos_[i], static_cast<int64_t>(j - i), att_.data() + i * static_cast<size_t>(NQ));
    i = j;
  }
  matmul(att_.data(), n, L.wo, tmp_.data());
  for (size_t j = 0; j < un * static_cast<size_t>(w_->C); ++j) x_[j] += tmp_[j];
}

// x += down(silu(gate(norm(x))) * up(norm(x))) for layer l, over n rows
// (gate and up in one product).
void CpuDecoder::mlp_block(int64_t n, int64_t l) {
  const Weights::Layer& L = w_->layer[static_cast<size_t>(l)];
  const int64_t I = w_->I;
  rms_norm_rows(x_.data(), L.mlp_norm.data(), xn_.data(), n, w_->C, static_cast<float>(w_->eps));
  matmul(xn_.data(), n, L.wgu, gu_.data());
  for (int64_t i = 0; i < n; ++i)
    swiglu_rows(gu_.data() + i * 2 * I, gu_.data() + i * 2 * I + I, act_.data() + i * I, I);
  matmul(act_.data(), n, L.wdown, tmp_.data());
  for (size_t j = 0; j < static_cast<size_t>(n * w_->C); ++j) x_[j] += tmp_[j];
}

}  // namespace tracelm
