// Training throughput benchmark (not a test).
//
// Measures, in one run (on a shared machine, compare the best-step figures:
// other processes slow some steps, and the matmul rate is a best of 5 too):
//   - the fp32 matrix-product rate of this machine (2048^3 torch::matmul,
//     best of 5): the ceiling for training on a CPU;
//   - for each from-scratch preset (tiny, small, base) at context 512 with a
//     2048-token vocabulary: tokens/s of full training steps (forward,
//     backward, AdamW), and MFU = 6 * parameters * tokens/s / matmul rate;
//   - LoRA fine-tuning throughput of stories260K (../shared/models) when present.
// Usage: bench_train [--steps N] [--micro-batch B] [--presets tiny,small,base]
//                    [--allocator default|retain]
// (TRACELM_THREADS sets libtorch's thread count; TRACELM_PROFILE=FILE writes
// a chrome trace of one more step per preset, op by op.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>
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

struct Throughput {
  double mean = 0;  // tokens/s over the timed steps
  double best = 0;  // tokens/s of the fastest step (as the matmul rate is a best of 5)
};

// Tokens/s of training steps on random tokens (B sequences of T tokens).
Throughput train_tps(Llama& m, int64_t B, int64_t T, int steps) {
  std::vector<torch::Tensor> params;
  for (auto& p : m->parameters())
    if (p.requires_grad()) params.push_back(p);
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4));
  int64_t V = m->config().vocab_size;
  m->train();
  double t0 = 0, best = 1e30;
  for (int s = 0; s < steps + 2; ++s) {
    if (s == 2) t0 = now();  // two warm-up steps
    double ts = now();
    torch::Tensor x = torch::randint(0, V, {B, T + 1}, torch::kInt64);
    torch::Tensor logits = m->forward(x.narrow(1, 0, T));  // (B,T,V)
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, V}),
                                                              x.narrow(1, 1, T).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (s >= 2) best = std::min(best, now() - ts);
  }
  if (const char* path = std::getenv("TRACELM_PROFILE")) {  // one more step, op by op
    torch::autograd::profiler::RecordProfile guard(path);
    torch::Tensor x = torch::randint(0, V, {B, T + 1}, torch::kInt64);
    torch::Tensor logits = m->forward(x.narrow(1, 0, T));
    torch::nn::functional::cross_entropy(logits.reshape({-1, V}), x.narrow(1, 1, T).reshape({-1}))
        .backward();
    opt.step();
  }
  double tokens = static_cast<double>(B * T);
  return {tokens * steps / (now() - t0), tokens / best};
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 5;
  int64_t micro = 8;
  std::string presets = "tiny,small,base", allocator = "retain";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps") steps = std::stoi(argv[i + 1]);
    if (a == "--micro-batch") micro = std::stoll(argv[i + 1]);
    if (a == "--presets") presets = argv[i + 1];
    if (a == "--allocator") allocator = argv[i + 1];
  }
  if (allocator == "retain") retain_freed_memory();  // as train_model() does
  if (const char* t = std::getenv("TRACELM_THREADS")) torch::set_num_threads(std::atoi(t));
  // The matmul rate is measured before and after every preset and the best
  // is the reference: a rate taken while another process held a core would
  // inflate the MFU of steps that ran on an idle machine.
  double peak = matmul_gflops();
  struct Row {
    const char* preset;
    int64_t params;
    Throughput tps;
  };
  std::vector<Row> rows;
  for (const char* preset : {"tiny", "small", "base"}) {
    if (("," + presets + ",").find(std::string(",") + preset + ",") == std::string::npos) continue;
    LlamaConfig c = preset_config(preset, 2048, 512);
    Llama m = init_llama(c, 1);
    rows.push_back({preset, c.num_parameters(), train_tps(m, micro, 512, steps)});
    peak = std::max(peak, matmul_gflops());
  }
  std::printf("threads %d; fp32 matmul 2048^3: %.1f GFLOP/s (the MFU reference)\n",
              torch::get_num_threads(), peak);
  std::printf("%-8s %12s %10s %12s %8s %14s %9s\n", "preset", "parameters", "context", "tokens/s",
              "MFU", "best-step t/s", "best MFU");
  for (const Row& r : rows) {
    double flops = 6.0 * static_cast<double>(r.params) / (peak * 1e9);
    std::printf("%-8s %12lld %10d %12.0f %7.1f%% %14.0f %8.1f%%\n", r.preset,
                static_cast<long long>(r.params), 512, r.tps.mean, 100 * flops * r.tps.mean,
                r.tps.best, 100 * flops * r.tps.best);
  }
  if (presets != "tiny,small,base") return 0;
  std::string stories = std::string(TRACELM_SOURCE_DIR) + "/../shared/models/stories260K";
  try {
    Llama m = load_llama(stories);
    double full = train_tps(m, micro, 512, steps).mean;
    Llama l = load_llama(stories);
    LoraConfig lc;
    int64_t trainable = add_lora(l, lc, 1);
    double lora = train_tps(l, micro, 512, steps).mean;
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
