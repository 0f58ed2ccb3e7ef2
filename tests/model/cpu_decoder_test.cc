// The CPU decoding engine (model/cpu_decoder.h) against the reference
// logits of tests/data/tiny-llama and against the libtorch forward.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/cpu_decoder.h"
#include "model/llama.h"
#include "test_util.h"

namespace tracelm {
namespace {

std::string tiny_dir() { return std::string(TRACELM_SOURCE_DIR) + "/tests/data/tiny-llama"; }

float max_diff(const float* a, const torch::Tensor& b) {
  torch::Tensor t = torch::from_blob(const_cast<float*>(a), {b.numel()}, torch::kFloat32);
  return (t - b.reshape({-1})).abs().max().item<float>();
}

TEST(CpuDecoder, PromptLogitsMatchThePlainPythonReference) {
  Llama m = load_llama(tiny_dir());
  nlohmann::json ref = nlohmann::json::parse(testing::read_file(tiny_dir() + "/reference.json"));
  std::vector<int64_t> ids = ref["ids"].get<std::vector<int64_t>>();
  CpuDecoder eng(m);
  int32_t s = eng.add_slot();
  std::vector<CpuDecoder::Token> toks;
  for (int64_t id : ids) toks.push_back({s, static_cast<int32_t>(id), true});
  eng.forward(toks);
  EXPECT_EQ(eng.length(s), static_cast<int64_t>(ids.size()));
  for (size_t p = 0; p < ids.size(); ++p) {
    torch::Tensor want = torch::tensor(ref["logits"][p].get<std::vector<float>>());
    EXPECT_LT(max_diff(eng.logits(p), want), 1e-4) << "position " << p;
  }
}

// A 2-layer model of 4 heads over 2 key/value heads, vocabulary 50.
LlamaConfig two_layers(int64_t hidden, int64_t intermediate) {
  LlamaConfig c;
  c.vocab_size = 50;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = true;
  return c;
}

TEST(CpuDecoder, InterleavedSequencesMatchTheTorchForward) {
  torch::NoGradGuard ng;
  Llama m = init_llama(two_layers(32, 40), 5);
  LoraConfig lc;
  lc.target_modules = {"q_proj", "v_proj", "down_proj"};
  add_lora(m, lc, 9);
  for (auto& p : m->named_parameters())  // B = 0 after add_lora: make the adapters matter
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05);
  m->eval();
  std::vector<int64_t> a = {1, 4, 9, 16, 25, 36, 49}, b = {1, 3, 5, 7, 11};
  torch::Tensor ra = m->forward(torch::tensor(a).unsqueeze(0))[0];  // (Ta, V)
  torch::Tensor rb = m->forward(torch::tensor(b).unsqueeze(0))[0];
  CpuDecoder eng(m);
  int32_t sa = eng.add_slot(), sb = eng.add_slot();
  // a's prompt (3 tokens) and b's first token in one call, then single tokens.
  eng.forward({{sa, 1, false}, {sa, 4, false}, {sa, 9, true}, {sb, 1, true}});
  EXPECT_LT(max_diff(eng.logits(0), ra[2]), 1e-4);
  EXPECT_LT(max_diff(eng.logits(1), rb[0]), 1e-4);
  size_t ia = 3, ib = 1;
  while (ia < a.size() || ib < b.size()) {
    std::vector<CpuDecoder::Token> t;
    if (ia < a.size()) t.push_back({sa, static_cast<int32_t>(a[ia]), true});
    if (ib < b.size()) t.push_back({sb, static_cast<int32_t>(b[ib]), true});
    eng.forward(t);
    size_t k = 0;
    if (ia < a.size()) EXPECT_LT(max_diff(eng.logits(k++), ra[static_cast<int64_t>(ia++)]), 1e-4);
    if (ib < b.size()) EXPECT_LT(max_diff(eng.logits(k++), rb[static_cast<int64_t>(ib++)]), 1e-4);
  }
  // A released slot is reused from the start.
  eng.release(sb);
  int32_t sc = eng.add_slot();
  EXPECT_EQ(sc, sb);
  EXPECT_EQ(eng.length(sc), 0);
  eng.forward({{sc, 1, true}});
  EXPECT_LT(max_diff(eng.logits(0), rb[0]), 1e-4);
}

// bf16 products: logits near the fp32 engine's (a 2-layer random model,
// logits of size ~1), and a sequence's logits the same bits alone or batched.
TEST(CpuDecoder, Bf16LogitsAreNearFp32AndIndependentOfTheBatch) {
  torch::NoGradGuard ng;
  LlamaConfig c = two_layers(64, 96);
  Llama m = init_llama(c, 6);
  for (auto& p : m->named_parameters())  // std 0.02 weights give near-flat logits: widen them
    if (p.key().find("norm") == std::string::npos) p.value().mul_(10);
  std::vector<int32_t> a = {1, 4, 9, 16, 25, 36, 49}, b = {1, 3, 5};
  CpuDecoder f32(m), alone(m, Precision::kBF16), batched(m, Precision::kBF16);
  int32_t s32 = f32.add_slot(), s1 = alone.add_slot();
  int32_t sa = batched.add_slot(), sb = batched.add_slot();
  float worst = 0, spread = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    f32.forward({{s32, a[i], true}});
    alone.forward({{s1, a[i], true}});
    std::vector<CpuDecoder::Token> t = {{sa, a[i], true}};
    if (i < b.size()) t.insert(t.begin(), {sb, b[i], true});
    batched.forward(t);
    const float* mine = batched.logits(i < b.size() ? 1 : 0);
    for (int64_t v = 0; v < c.vocab_size; ++v) {
      ASSERT_EQ(mine[v], alone.logits(0)[v]) << "token " << i << " logit " << v;
      worst = std::max(worst, std::abs(alone.logits(0)[v] - f32.logits(0)[v]));
      spread = std::max(spread, std::abs(f32.logits(0)[v]));
    }
  }
  EXPECT_GT(spread, 1.0f);           // logits that mean something
  EXPECT_GT(worst, 0.0f);            // bf16 is not fp32
  EXPECT_LT(worst, 0.05f * spread);  // but near it
}

}  // namespace
}  // namespace tracelm
