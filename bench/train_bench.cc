// Training throughput benchmark (not a test).
//
// Measures, in one run:
//   - the fp32 matrix-product rate of this machine (2048^3 torch::matmul,
//     best of 5): the ceiling for training on a CPU;
//   - for each from-scratch preset (tiny, small, base) at context 512 with a
//     2048-token vocabulary: tokens/s of full training steps (forward,
//     backward, AdamW), and MFU = 6 * parameters * tokens/s / matmul rate;
//   - LoRA fine-tuning throughput of stories260K (../shared/models) when present.
// Usage: bench_train [--steps N] [--micro-batch B]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <torch/torch.h>

#include "model/llama.h"
#include "train/trainer.h"

using namespace tracelm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double matmul_gflops() {
  torch::NoGradGuard ng;
  torch::Tensor a = torch::randn({2048, 2048}), b = torch::randn({2048, 2048});
  torch::matmul(a, b);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    double t = now();
    torch::Tensor c = torch::matmul(a, b);
    best = std::min(best, now() - t);
  }
  return 2.0 * 2048.0 * 2048.0 * 2048.0 / best / 1e9;
}

// Tokens/s of training steps on random tokens (B sequences of T tokens).
double train_tps(Llama& m, int64_t B, int64_t T, int steps) {
  std::vector<torch::Tensor> params;
  for (auto& p : m->parameters())
    if (p.requires_grad()) params.push_back(p);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4));
  int64_t V = m->config().vocab_size;
  m->train();
  double t0 = 0;
  for (int s = 0; s < steps + 2; ++s) {
    if (s == 2) t0 = now();  // two warm-up steps
    torch::Tensor x = torch::randint(0, V, {B, T + 1}, torch::kInt64);
    torch::Tensor logits = m->forward(x.narrow(1, 0, T));  // (B,T,V)
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, V}),
                                                              x.narrow(1, 1, T).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return static_cast<double>(B * T * steps) / (now() - t0);
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 5;
  int64_t micro = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps") steps = std::stoi(argv[i + 1]);
    if (a == "--micro-batch") micro = std::stoll(argv[i + 1]);
  }
  if (const char* t = std::getenv("TRACELM_THREADS")) torch::set_num_threads(std::atoi(t));
  double peak = matmul_gflops();
  std::printf("threads %d; fp32 matmul 2048^3: %.1f GFLOP/s (the MFU reference)\n",
              torch::get_num_threads(), peak);
  std::printf("%-8s %12s %10s %12s %8s\n", "preset", "parameters", "context", "tokens/s", "MFU");
  for (const char* preset : {"tiny", "small", "base"}) {
    LlamaConfig c = preset_config(preset, 2048, 512);
    Llama m = init_llama(c, 1);
    double tps = train_tps(m, micro, 512, steps);
    double mfu = 6.0 * static_cast<double>(c.num_parameters()) * tps / (peak * 1e9);
    std::printf("%-8s %12lld %10d %12.0f %7.1f%%\n", preset,
                static_cast<long long>(c.num_parameters()), 512, tps, 100 * mfu);
  }
  std::string stories = std::string(TRACELM_SOURCE_DIR) + "/../shared/models/stories260K";
  try {
    Llama m = load_llama(stories);
    double full = train_tps(m, micro, 512, steps);
    Llama l = load_llama(stories);
    LoraConfig lc;
    int64_t trainable = add_lora(l, lc, 1);
    double lora = train_tps(l, micro, 512, steps);
    std::printf(
        "stories260K (%lld parameters): full fine-tuning %.0f tokens/s; LoRA r=8 on q,k "
        "(%lld trainable) %.0f tokens/s (%.2fx)\n",
        static_cast<long long>(m->config().num_parameters()), full,
        static_cast<long long>(trainable), lora, lora / full);
  } catch (const std::exception& e) {
    std::printf("stories260K: skipped (%s)\n", e.what());
  }
  return 0;
}
