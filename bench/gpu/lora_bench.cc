// LoRA fine-tuning and generation throughput of tracelm's libtorch Llama on
// one device (bench/gpu/run.sh runs it against Hugging Face transformers +
// PEFT in the same run; not a test).
//
// The model is Llama-2-7B-shaped (vocabulary 32000, width 4096, 32 layers,
// 32 heads, SwiGLU 11008) with random weights (no model hub is reachable),
// bfloat16 on a GPU with float32 LoRA adapters (r 8, alpha 16, on q_proj and
// k_proj: the paper's setting) and float32 AdamW state. Training steps are
// forward + backward of `accum` micro-batches of `micro` random sequences of
// `context` tokens, clipping 1.0 and one AdamW step (the trainer's step);
// the first `warmup` steps are not timed. MFU = model FLOPs/s over the
// device's dense bf16 peak (--peak-tflops), with model FLOPs per token
//   4 N + 12 L d T
// (forward 2N, input gradients 2N: frozen weights need no weight gradients;
// attention scores and values, forward and backward, as PaLM counts them),
// and also printed with the common 6N + 12 L d T count (N: parameters in
// matrix products, i.e. without the embedding table).
// Generation: greedy decoding with the KV cache of a batch of `gen_batch`
// prompts of `gen_prompt` random tokens, `gen_tokens` new tokens each.
//
// Usage: bench_gpu_lora [--device cuda] [--tiny] [--context 4096] [--micro 1]
//          [--accum 4] [--steps 3] [--warmup 1] [--gen-batch 16] [--gen-prompt 128]
//          [--gen-tokens 128] [--peak-tflops 989] [--fit]
//   --tiny: a 2-layer, width-64 model (exercises the program on a CPU)
//   --fit:  halve the context until a training step fits in memory
// Prints one JSON line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "model/device.h"
#include "model/llama.h"

using namespace tracelm;

namespace {

struct Args {
  std::string device = "cuda";
  bool tiny = false, fit = false;
  int64_t context = 4096, micro = 1, accum = 4, steps = 3, warmup = 1;
  int64_t gen_batch = 16, gen_prompt = 128, gen_tokens = 128;
  double peak_tflops = 989;  // H100/H200 SXM dense bf16
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--device")
      a.device = val();
    else if (k == "--tiny")
      a.tiny = true;
    else if (k == "--fit")
      a.fit = true;
    else if (k == "--context")
      a.context = std::stoll(val());
    else if (k == "--micro")
      a.micro = std::stoll(val());
    else if (k == "--accum")
      a.accum = std::stoll(val());
    else if (k == "--steps")
      a.steps = std::stoll(val());
    else if (k == "--warmup")
      a.warmup = std::stoll(val());
    else if (k == "--gen-batch")
      a.gen_batch = std::stoll(val());
    else if (k == "--gen-prompt")
      a.gen_prompt = std::stoll(val());
    else if (k == "--gen-tokens")
      a.gen_tokens = std::stoll(val());
    else if (k == "--peak-tflops")
      a.peak_tflops = std::stod(val());
    else
      throw std::invalid_argument("unknown option " + k);
  }
  return a;
}

LlamaConfig shape(const Args& a) {
  LlamaConfig c;
  if (a.tiny) {
    c.vocab_size = 512, c.hidden_size = 64, c.intermediate_size = 172;
    c.num_hidden_layers = 2, c.num_attention_heads = 4, c.num_key_value_heads = 4;
  } else {  // Llama-2-7B
    c.vocab_size = 32000, c.hidden_size = 4096, c.intermediate_size = 11008;
    c.num_hidden_layers = 32, c.num_attention_heads = 32, c.num_key_value_heads = 32;
  }
  c.max_position_embeddings = std::max<int64_t>(4096, a.context + a.gen_prompt + a.gen_tokens);
  return c;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One optimizer step over `accum` micro-batches; returns the mean loss.
double train_step(Llama& m, torch::optim::AdamW& opt, const std::vector<torch::Tensor>& params,
                  const Args& a, int64_t T, const torch::Device& dev) {
  int64_t V = m->config().vocab_size;
  opt.zero_grad();
  torch::Tensor total = torch::zeros({}, torch::TensorOptions().device(dev));
  for (int64_t k = 0; k < a.accum; ++k) {
    torch::Tensor seq = torch::randint(3, V, {a.micro, T + 1},
                                       torch::TensorOptions().device(dev).dtype(torch::kInt64));
    torch::Tensor x = seq.narrow(1, 0, T), y = seq.narrow(1, 1, T);  // (micro, T)
    torch::Tensor logits = m->forward(x);                            // (micro, T, V) float32
    torch::Tensor l =
        torch::nn::functional::cross_entropy(logits.reshape({-1, V}), y.reshape({-1})) /
        static_cast<double>(a.accum);
    l.backward();
    total += l.detach();
  }
  torch::nn::utils::clip_grad_norm_(params, 1.0);
  opt.step();
  return total.item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    if (a.tiny) {
      a.context = std::min<int64_t>(a.context, 128);
      a.gen_prompt = std::min<int64_t>(a.gen_prompt, 16);
      a.gen_tokens = std::min<int64_t>(a.gen_tokens, 16);
      a.gen_batch = std::min<int64_t>(a.gen_batch, 4);
    }
    torch::Device dev = parse_device(a.device);
    torch::manual_seed(1);
    LlamaConfig c = shape(a);
    double t_init = now();
    Llama m(c);  // random weights (Kaiming uniform projections, normal embeddings)
    LoraConfig lc;
    lc.r = 8;
    lc.alpha = 16;
    lc.dropout = 0.05;
    int64_t lora_params = add_lora(m, lc, 1);
    place_model(m, dev, /*training=*/true);  // bf16 base on a GPU, float32 adapters
    sync(dev);
    t_init = now() - t_init;
    int64_t n_params = c.num_parameters();
    // Parameters in matrix products: all but the embedding table (a lookup).
    int64_t n_matmul = n_params - c.vocab_size * c.hidden_size;
    std::vector<torch::Tensor> params;
    for (auto& p : m->parameters())
      if (p.requires_grad()) params.push_back(p);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-4).betas({0.9, 0.95}));
    m->train();

    int64_t T = a.context;
    double loss = 0;
    while (true) {
      try {
        for (int64_t s = 0; s < a.warmup; ++s) loss = train_step(m, opt, params, a, T, dev);
        break;
      } catch (const c10::Error& e) {
        std::string what = e.what();
        bool oom = what.find("out of memory") != std::string::npos;
        if (!a.fit || !oom || T <= 128) throw;
        T /= 2;
        std::fprintf(stderr, "bench_gpu_lora: out of memory; trying context %lld\n",
                     static_cast<long long>(T));
      }
    }
    sync(dev);
    double t0 = now();
    for (int64_t s = 0; s < a.steps; ++s) loss = train_step(m, opt, params, a, T, dev);
    sync(dev);
    double train_s = now() - t0;
    double tokens = static_cast<double>(a.steps * a.accum * a.micro * T);
    double tps = tokens / train_s;
    double L = static_cast<double>(c.num_hidden_layers), d = static_cast<double>(c.hidden_size);
    double attn = 12.0 * L * d * static_cast<double>(T);
    double flops_lora = 4.0 * static_cast<double>(n_matmul) + attn;
    double flops_6n = 6.0 * static_cast<double>(n_matmul) + attn;
    double peak = a.peak_tflops * 1e12;

    // Generation: greedy, KV cache, one batch.
    m->eval();
    double gen_tps = 0;
    {
      torch::NoGradGuard ng;
      torch::Tensor prompt =
          torch::randint(3, c.vocab_size, {a.gen_batch, a.gen_prompt},
                         torch::TensorOptions().device(dev).dtype(torch::kInt64));
      for (int pass = 0; pass < 2; ++pass) {  // pass 0 warms up
        int64_t new_tokens = pass == 0 ? 4 : a.gen_tokens;
        sync(dev);
        double g0 = now();
        KVCache cache;
        torch::Tensor next = m->forward(prompt, &cache).select(1, -1).argmax(-1);  // (B)
        for (int64_t t = 1; t < new_tokens; ++t)
          next = m->forward(next.unsqueeze(1), &cache).select(1, 0).argmax(-1);
        sync(dev);
        if (pass == 1) gen_tps = static_cast<double>(a.gen_batch * new_tokens) / (now() - g0);
      }
    }
    nlohmann::ordered_json out = {
        {"impl", "tracelm"},
        {"device", a.device},
        {"shape", a.tiny ? "tiny" : "llama-2-7b"},
        {"parameters", n_params},
        {"lora_parameters", lora_params},
        {"context", T},
        {"micro_batch", a.micro},
        {"accumulation", a.accum},
        {"timed_steps", a.steps},
        {"final_loss", loss},
        {"init_s", t_init},
        {"train_tokens_per_s", tps},
        {"mfu", tps * flops_lora / peak},
        {"mfu_6n", tps * flops_6n / peak},
        {"peak_tflops", a.peak_tflops},
        {"gen_batch", a.gen_batch},
        {"gen_prompt", a.gen_prompt},
        {"gen_new_tokens", a.gen_tokens},
        {"gen_tokens_per_s", gen_tps},
    };
    std::printf("%s\n", out.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu_lora: %s\n", e.what());
    return 1;
  }
}
