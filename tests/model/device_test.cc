// Devices and precision (model/device.h), the learning-rate schedule and
// checkpoints (train/trainer.h).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "model/device.h"
#include "test_util.h"
#include "train/trainer.h"

namespace tracelm {
namespace {

LlamaConfig small_config() {
  LlamaConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

TEST(Device, ParsesCpuAndRefusesCudaClearlyWithoutIt) {
  EXPECT_TRUE(parse_device("cpu").is_cpu());
  try {
    parse_device("gpu");
    FAIL() << "accepted 'gpu'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected cpu, cuda or cuda:N"), std::string::npos);
  }
  EXPECT_THROW(parse_device("cuda:x"), std::invalid_argument);
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(parse_device("cuda").is_cuda());
    EXPECT_THROW(parse_device("cuda:4096"), std::invalid_argument);
  } else {
    try {
      parse_device("cuda:0");
      FAIL() << "accepted cuda without CUDA";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(compute_dtype(torch::Device(torch::kCPU)), torch::kFloat32);
  EXPECT_EQ(compute_dtype(torch::Device(torch::kCUDA, 0)), torch::kBFloat16);
}

// The GPU's precision policy (bf16 frozen weights and activations, float32
// LoRA parameters) run on the CPU: logits close to float32's, gradients
// float32 on the adapters only.
TEST(Device, Bf16WeightsWithFloat32LoraTrainAndMatchFloat32) {
  Llama ref = init_llama(small_config(), 3);
  add_lora(ref, LoraConfig{}, 4);
  {
    torch::NoGradGuard ng;  // a non-zero B, so the adapters matter
    for (auto& p : ref->named_parameters())
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.05);
  }
  Llama low = init_llama(small_config(), 3);
  add_lora(low, LoraConfig{}, 4);
  {
    torch::NoGradGuard ng;
    auto a = ref->named_parameters(), b = low->named_parameters();
    for (auto& p : a) b[p.key()].copy_(p.value());
  }
  ref->eval();
  low->eval();
  place_model(low, torch::Device(torch::kCPU), /*training=*/true, torch::kBFloat16);
  EXPECT_EQ(low->model->embed_tokens->weight.scalar_type(), torch::kBFloat16);
  for (auto& p : low->named_parameters())
    EXPECT_EQ(p.value().scalar_type(),
              p.value().requires_grad() ? torch::kFloat32 : torch::kBFloat16)
        << p.key();
  torch::Tensor ids = torch::randint(3, 64, {2, 24}, torch::kInt64);
  torch::Tensor a = ref->forward(ids), b = low->forward(ids);  // (2,24,V)
  ASSERT_EQ(b.scalar_type(), torch::kFloat32);
  double scale = a.abs().max().item<double>();
  EXPECT_LT((a - b).abs().max().item<double>(), 0.05 * scale + 0.02);
  // With a KV cache (generation's path: ragged positions, additive mask in bf16).
  KVCache cache;
  torch::Tensor first = low->forward(ids.narrow(1, 0, 20), &cache);
  torch::Tensor rest = low->forward(ids.narrow(1, 20, 4), &cache);
  EXPECT_LT((rest - b.narrow(1, 20, 4)).abs().max().item<double>(), 0.05 * scale + 0.02);
  // Backward: float32 gradients on the adapters, none on the frozen weights.
  low->train();
  torch::Tensor loss =
      torch::nn::functional::cross_entropy(low->forward(ids).reshape({-1, 64}), ids.reshape({-1}));
  loss.backward();
  int adapters = 0;
  for (auto& p : low->named_parameters()) {
    if (!p.value().requires_grad()) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
      continue;
    }
    ++adapters;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>());
  }
  EXPECT_EQ(adapters, 2 * 2 * 2);  // q,k x A,B x 2 layers
}

TEST(Schedule, WarmupThenCosineToTheFloor) {
  Schedule s{1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(cosine_lr(0, s), 0.1);      // (0 + 1) / 10
  EXPECT_DOUBLE_EQ(cosine_lr(9, s), 1.0);      // end of warm-up
  EXPECT_DOUBLE_EQ(cosine_lr(10, s), 1.0);     // cosine starts at the peak
  EXPECT_NEAR(cosine_lr(60, s), 0.55, 1e-12);  // half way: (peak + floor) / 2
  EXPECT_NEAR(cosine_lr(110, s), 0.1, 1e-12);
  EXPECT_NEAR(cosine_lr(500, s), 0.1, 1e-12);  // flat after the end
  for (int64_t t = 10; t < 110; ++t) EXPECT_GE(cosine_lr(t, s), cosine_lr(t + 1, s));
}

TEST(Checkpoint, RoundTripsAndReplacesAtomically) {
  testing::TempDir tmp;
  Llama m = init_llama(small_config(), 5);
  add_lora(m, LoraConfig{}, 6);
  std::vector<torch::Tensor> ps;
  for (auto& p : m->parameters())
    if (p.requires_grad()) ps.push_back(p);
  torch::optim::AdamW opt(ps, torch::optim::AdamWOptions(1e-2));
  torch::Tensor loss = m->forward(torch::randint(0, 64, {1, 8}, torch::kInt64)).pow(2).mean();
  loss.backward();
  opt.step();
  TrainState st;
  st.step = 7;
  st.epoch = 1;
  st.cursor = 12;
  st.total = 50;
  st.schedule = {1e-3, 0.1, 5, 40};
  st.schedule_fitted = true;
  st.first_val_loss = 3.5;
  std::string dir = tmp.file("ckpt");
  std::filesystem::create_directories(dir + ".tmp/stale");  // a killed save's leftovers
  save_checkpoint(dir, m, opt, st);
  save_checkpoint(dir, m, opt, st);  // replaces the previous one
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".old"));

  Llama m2 = init_llama(small_config(), 9);
  add_lora(m2, LoraConfig{}, 10);
  std::vector<torch::Tensor> ps2;
  for (auto& p : m2->parameters())
    if (p.requires_grad()) ps2.push_back(p);
  torch::optim::AdamW opt2(ps2, torch::optim::AdamWOptions(1e-2));
  TrainState back;
  EXPECT_FALSE(load_checkpoint(tmp.file("none"), m2, opt2, &back));
  ASSERT_TRUE(load_checkpoint(dir, m2, opt2, &back));
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.epoch, 1);
  EXPECT_EQ(back.cursor, 12);
  EXPECT_EQ(back.schedule.steps, 40);
  EXPECT_EQ(back.schedule.warmup, 5);
  EXPECT_TRUE(back.schedule_fitted);
  EXPECT_DOUBLE_EQ(back.first_val_loss, 3.5);
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(torch::equal(ps[i], ps2[i])) << i;
  // The optimizer state came back: one more identical step keeps them equal.
  for (auto* o : {&opt, &opt2}) o->zero_grad();
  for (auto& p : ps) p.mutable_grad() = torch::ones_like(p);
  for (auto& p : ps2) p.mutable_grad() = torch::ones_like(p);
  opt.step();
  opt2.step();
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(torch::allclose(ps[i], ps2[i])) << i;
}

}  // namespace
}  // namespace tracelm
