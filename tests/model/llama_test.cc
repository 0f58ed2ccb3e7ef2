// The Llama model against a real pre-trained checkpoint (stories260K) and
// its reference logits, the KV cache against the full forward, save/load.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "io/input_error.h"
#include "model/llama.h"
#include "model/safetensors.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {
namespace {

const char* kStories = "models/stories260K";

nlohmann::json reference() {
  std::ifstream f(testing::shared_path("models/stories260K/reference.json"));
  return nlohmann::json::parse(f);
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return torch::tensor(ids).unsqueeze(0);
}

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

// tests/data/tiny-llama was written by tests/tools/make_tiny_llama.py, which
// computes its reference logits in plain Python from Hugging Face's Llama
// equations: the model's numerics are checked on a fresh clone too.
TEST(Llama, TinyFixtureReproducesThePlainPythonReferenceLogits) {
  torch::NoGradGuard ng;
  std::string dir = std::string(TRACELM_SOURCE_DIR) + "/tests/data/tiny-llama";
  Llama m = load_llama(dir);
  nlohmann::json ref = nlohmann::json::parse(testing::read_file(dir + "/reference.json"));
  std::vector<int64_t> ids = ref["ids"].get<std::vector<int64_t>>();
  torch::Tensor out = m->forward(ids_tensor(ids));  // (1, T, V)
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, static_cast<int64_t>(ids.size()), 40}));
  for (size_t p = 0; p < ids.size(); ++p) {
    torch::Tensor want = torch::tensor(ref["logits"][p].get<std::vector<float>>());
    float err = (out[0][static_cast<int64_t>(p)] - want).abs().max().item<float>();
    EXPECT_LT(err, 1e-4) << "position " << p;
  }
  // The same logits one token at a time through the KV cache.
  KVCache cache;
  for (size_t p = 0; p < ids.size(); ++p) {
    torch::Tensor step = m->forward(ids_tensor({ids[p]}), &cache);  // (1, 1, V)
    torch::Tensor want = torch::tensor(ref["logits"][p].get<std::vector<float>>());
    EXPECT_LT((step[0][0] - want).abs().max().item<float>(), 1e-4) << "cached position " << p;
  }
}

TEST(Llama, Stories260KReproducesTheReferenceLogits) {
  REQUIRE_SHARED(kStories);
  torch::NoGradGuard ng;
  Llama m = load_llama(testing::shared_path(kStories));
  nlohmann::json ref = reference();
  std::vector<int64_t> ids = {1};
  for (auto& v : ref["greedy_ids_after_bos"]) ids.push_back(v.get<int64_t>());
  auto& logits = ref["logits"];
  torch::Tensor out = m->forward(ids_tensor(std::vector<int64_t>(ids.begin(), ids.begin() + 4)));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 512}));
  for (int p = 0; p < 4; ++p) {
    std::vector<float> want = logits[p].get<std::vector<float>>();
    torch::Tensor w = torch::tensor(want);
    float err = (out[0][p] - w).abs().max().item<float>();
    EXPECT_LT(err, 1e-4) << "position " << p;
  }
}

TEST(Llama, Stories260KGreedyDecodingWithTheKvCacheMatchesTheReference) {
  REQUIRE_SHARED(kStories);
  torch::NoGradGuard ng;
  Llama m = load_llama(testing::shared_path(kStories));
  nlohmann::json ref = reference();
  KVCache cache;
  std::vector<int64_t> got;
  torch::Tensor x = ids_tensor({1});
  for (int i = 0; i < 64; ++i) {
    torch::Tensor logits = m->forward(x, &cache);  // (1,1,V)
    int64_t next = logits[0][-1].argmax().item<int64_t>();
    got.push_back(next);
    x = ids_tensor({next});
  }
  EXPECT_EQ(got, ref["greedy_ids_after_bos"].get<std::vector<int64_t>>());
  Tokenizer tok = Tokenizer::load(testing::shared_path("models/stories260K/tokenizer.model"));
  std::string text = tok.decode(std::vector<int>(got.begin(), got.end()));
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily", 0), 0u) << text;
}

TEST(Llama, IncrementalForwardEqualsFullForward) {
  torch::NoGradGuard ng;
  Llama m = init_llama(tiny_config(), 7);
  torch::Tensor ids = torch::randint(0, 40, {1, 12}, torch::kInt64);
  torch::Tensor full = m->forward(ids);  // (1,12,V)
  KVCache cache;
  std::vector<torch::Tensor> parts;
  for (auto [a, b] : std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {5, 6}, {6, 12}})
    parts.push_back(m->forward(ids.narrow(1, a, b - a), &cache));
  torch::Tensor inc = torch::cat(parts, 1);
  EXPECT_TRUE(torch::allclose(full, inc, 1e-5, 1e-5));
  EXPECT_EQ(cache.length(), 12);
}

// Training's fast path (a shared causal mask, queries in chunks that skip
// later keys, fused projections) against the general masked path, in values
// and in gradients, on a sequence longer than one chunk.
TEST(Llama, ChunkedCausalAttentionEqualsTheMaskedPath) {
  LlamaConfig c = tiny_config();
  c.max_position_embeddings = 512;
  Llama m = init_llama(c, 3);
  int64_t T = 2 * AttentionImpl::kCausalChunk + 37;
  torch::Tensor ids = torch::randint(0, 40, {2, T}, torch::kInt64);
  torch::Tensor pos = torch::arange(T, torch::kInt64).unsqueeze(0).expand({2, T});
  torch::Tensor valid = torch::ones({2, T}, torch::kBool);
  torch::Tensor fast = m->forward(ids);  // (2,T,V)
  torch::Tensor fw =
      torch::autograd::grad({fast.pow(2).sum()}, {m->model->embed_tokens->weight})[0];
  torch::Tensor slow = m->forward(ids, nullptr, pos, valid);
  torch::Tensor sw =
      torch::autograd::grad({slow.pow(2).sum()}, {m->model->embed_tokens->weight})[0];
  EXPECT_TRUE(torch::allclose(fast, slow, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(fw, sw, 1e-4, 1e-5));
  // And the KV cache fed in pieces gives the same logits.
  torch::NoGradGuard ng;
  KVCache cache;
  torch::Tensor a = m->forward(ids.narrow(1, 0, 200), &cache);
  torch::Tensor b = m->forward(ids.narrow(1, 200, T - 200), &cache);
  EXPECT_TRUE(torch::allclose(fast.detach(), torch::cat({a, b}, 1), 1e-5, 1e-5));
}

TEST(Llama, BatchedSequencesOfDifferentLengthsMatchSingleRuns) {
  torch::NoGradGuard ng;
  Llama m = init_llama(tiny_config(), 3);
  std::vector<int64_t> a = {1, 5, 9, 12, 7}, b = {1, 33, 2};
  // Left-pad b to a's length: padding is invalid and positions start at 0.
  torch::Tensor ids = torch::tensor({1, 5, 9, 12, 7, 0, 0, 1, 33, 2}).view({2, 5});
  torch::Tensor pos = torch::tensor({0, 1, 2, 3, 4, 0, 0, 0, 1, 2}).view({2, 5});
  torch::Tensor valid = torch::tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1}).to(torch::kBool).view({2, 5});
  KVCache cache;
  torch::Tensor batched = m->forward(ids, &cache, pos, valid);  // (2,5,V)
  torch::Tensor ra = m->forward(ids_tensor(a)), rb = m->forward(ids_tensor(b));
  EXPECT_TRUE(torch::allclose(batched[0], ra[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(batched[1].narrow(0, 2, 3), rb[0], 1e-5, 1e-5));
  // One more token each, through the cache, at each row's own position.
  torch::Tensor next = torch::tensor({3, 4}).view({2, 1});
  torch::Tensor npos = torch::tensor({5, 3}).view({2, 1});
  torch::Tensor step = m->forward(next, &cache, npos, torch::ones({2, 1}, torch::kBool));
  a.push_back(3);
  b.push_back(4);
  EXPECT_TRUE(torch::allclose(step[0][0], m->forward(ids_tensor(a))[0][-1], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(step[1][0], m->forward(ids_tensor(b))[0][-1], 1e-5, 1e-5));
}

TEST(Llama, SaveAndLoadRoundTripExactly) {
  testing::TempDir tmp;
  torch::NoGradGuard ng;
  for (bool tied : {false, true}) {
    LlamaConfig c = tiny_config();
    c.tie_word_embeddings = tied;
    Llama m = init_llama(c, 11);
    save_llama(m, tmp.file("m"));
    Llama back = load_llama(tmp.file("m"));
    auto pa = m->named_parameters(), pb = back->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
    torch::Tensor ids = torch::randint(0, 40, {2, 6}, torch::kInt64);
    EXPECT_TRUE(torch::equal(m->forward(ids), back->forward(ids)));
  }
}

TEST(Llama, BadConfigsAndCheckpointsAreClearErrors) {
  EXPECT_THROW(parse_llama_config(nlohmann::json::parse(R"({"vocab_size": 10})"), "c.json"),
               InputError);
  auto j = tiny_config().to_json();
  j["num_key_value_heads"] = 3;
  EXPECT_THROW(parse_llama_config(j, "c.json"), InputError);
  testing::TempDir tmp;
  EXPECT_THROW(load_llama(tmp.file("missing")), InputError);
  // A checkpoint for another shape.
  Llama m = init_llama(tiny_config(), 1);
  save_llama(m, tmp.file("m"));
  LlamaConfig other = tiny_config();
  other.hidden_size = 32;
  std::ofstream(tmp.file("m/config.json")) << other.to_json().dump();
  try {
    load_llama(tmp.file("m"));
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("wrong shape"), std::string::npos) << e.what();
  }
}

TEST(Llama, ParameterCountMatchesTheModule) {
  for (bool tied : {false, true}) {
    LlamaConfig c = tiny_config();
    c.tie_word_embeddings = tied;
    Llama m(c);
    int64_t n = 0;
    for (auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, c.num_parameters());
  }
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

TEST(Lora, UntrainedAdapterChangesNothingAndFreezesTheBase) {
  torch::NoGradGuard ng;
  Llama m = init_llama(tiny_config(), 5);
  torch::Tensor ids = torch::randint(0, 40, {2, 7}, torch::kInt64);
  torch::Tensor before = m->forward(ids);
  LoraConfig lc;
  lc.target_modules = {"q_proj", "v_proj"};
  int64_t trainable = add_lora(m, lc, 1);
  // 2 layers x 2 targets x (A: 8x16 + B: out x 8); q out 16, v out 8.
  EXPECT_EQ(trainable, 2 * ((8 * 16 + 16 * 8) + (8 * 16 + 8 * 8)));
  m->eval();
  EXPECT_TRUE(torch::equal(before, m->forward(ids)));  // B starts at zero
  int64_t grads = 0;
  for (auto& p : m->named_parameters()) grads += p.value().requires_grad() ? p.value().numel() : 0;
  EXPECT_EQ(grads, trainable);
}

TEST(Lora, SavesAndLoadsInThePeftLayoutAndMerges) {
  testing::TempDir tmp;
  Llama m = init_llama(tiny_config(), 6);
  add_lora(m, {}, 2);
  {
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1);
  }
  m->eval();
  torch::Tensor ids = torch::randint(0, 40, {1, 9}, torch::kInt64);
  torch::Tensor want = m->forward(ids);
  save_llama(m, tmp.file("base"));
  save_lora(m, {}, tmp.file("adapter"), "base");
  SafetensorsFile st(tmp.file("adapter/adapter_model.safetensors"));
  EXPECT_TRUE(st.has("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(st.has("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"));
  EXPECT_EQ(st.size(), 2u * 2 * 2);
  Llama back = load_llama(tmp.file("base"));
  LoraConfig lc = load_lora(back, tmp.file("adapter"));
  EXPECT_EQ(lc.r, 8);
  back->eval();
  EXPECT_TRUE(torch::allclose(want, back->forward(ids), 1e-6, 1e-6));
  merge_lora(back);
  EXPECT_TRUE(torch::allclose(want, back->forward(ids), 1e-5, 1e-5));
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

TEST(Score, CliPrintsPerTokenLogprobsThatSumAndMatchTheModel) {
  REQUIRE_SHARED(kStories);
  std::string dir = testing::shared_path(kStories);
  auto r = testing::run_tracelm("score --model " + dir +
                                " --text 'Once upon a time, there was a little girl named Lily.'");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  double sum = 0;
  for (auto& t : j["tokens"]) sum += t["logprob"].get<double>();
  EXPECT_NEAR(sum, j["sum_logprob"].get<double>(), 1e-9);
  EXPECT_EQ(j["tokens"].size() + 1, j["ids"].size());
  // The greedy continuation is likely under the model: mean logprob > log(1/512).
  EXPECT_GT(j["mean_logprob"].get<double>(), -std::log(512.0) / 2);
  r = testing::run_tracelm("score --model " + dir + "/nope --text hi");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tracelm
