// Generation benchmark (not a test).
//
// With a trained model directory (--model; default: trains the tiny preset
// on the built-in synthetic sample for --train-seconds), measures in one run:
//   - tokens/s and graphs/s of recursive generation at batch 1 and batched;
//   - constrained vs unconstrained decoding on the same requests: the cost
//     of the constraint (target <= 1.15x), both as the whole-run time per
//     generated token and as the constraint's own timed work; the share of
//     steps where the sampled token had to be masked; the valid-graph rate
//     of both.
//   - the two decoding engines on the same requests and seed: libtorch's
//     forward over a ragged KV cache (the reference) and the CPU engine
//     (model/cpu_decoder.h); the ratio of their tokens/s, whether they wrote
//     the same graphs, and model forwards per graph;
//   - the same graphs at batch 1 and batch B (CPU engine);
//   - jump-forward decoding (generate/jump_forward.h) on and off: the share
//     of tokens appended without sampling, forwards per graph, and the
//     speed-up over the reference (the torch engine without jump-forward,
//     the decoding path the issue measured, every phrase order sampled),
//     with valid graphs per second per core (one decoding thread);
//   - the fixed phrase order (LayerSpec::fixed_order) against any order;
//   - one decoding thread per core (GeneratorOptions::decode_threads): the
//     speed-up over the reference and over one thread, and whether the
//     graphs are the same as one thread's;
//   - bf16 products (GeneratorOptions::precision): tokens/s over fp32 and
//     over the reference, valid graphs/s per core, batch 1 vs batch B.
// Usage: bench_generate [--model DIR] [-n GRAPHS] [--batch B] [--train-seconds S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <torch/torch.h>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "generate/generator.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "train/trainer.h"
#include "util/parallel.h"

using namespace tracelm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Run {
  double seconds = 0;
  int64_t tokens = 0, masked = 0, graphs = 0, valid = 0, layers = 0, forwards = 0, forced = 0;
  int64_t prompt = 0;  // prompt tokens fed (prefill)
  double constraint_seconds = 0, model_seconds = 0, matmul_seconds = 0;
};

std::vector<std::string> last_graphs;  // of the last run, as JSON lines

Run run(ModelBundle& b, GeneratorOptions go, const std::vector<GenerateRequest>& reqs) {
  RecursiveGenerator gen(b, go);
  double t = now();
  std::vector<GeneratedGraph> out = gen.generate(reqs, 1);
  last_graphs.clear();
  for (const GeneratedGraph& g : out)
    last_graphs.push_back(g.complete ? graph_to_json(g.graph) : "-");
  Run r;
  r.seconds = now() - t;
  r.tokens = gen.stats().tokens;
  r.masked = gen.stats().masked_steps;
  r.layers = gen.stats().sequences;
  r.forwards = gen.stats().forward_calls;
  r.forced = gen.stats().forced_tokens;
  r.prompt = gen.stats().prompt_tokens;
  r.constraint_seconds = gen.stats().constraint_seconds;
  r.model_seconds = gen.stats().model_seconds;
  r.matmul_seconds = gen.stats().matmul_seconds;
  r.graphs = static_cast<int64_t>(out.size());
  for (const GeneratedGraph& g : out) r.valid += g.complete && is_valid(validate(g.graph));
  return r;
}

void print(const char* name, const Run& r) {
  std::printf(
      "%-34s %7.2f s %8.0f tokens/s %7.2f graphs/s  valid %5.1f%%  masked %5.1f%% of sampled "
      "steps  jumped %4.1f%%  %4.1f forwards/graph  %5.2f prompt tokens/token\n",
      name, r.seconds, r.tokens / r.seconds, r.graphs / r.seconds,
      100.0 * r.valid / std::max<int64_t>(1, r.graphs),
      100.0 * r.masked / std::max<int64_t>(1, r.tokens - r.forced),
      100.0 * r.forced / std::max<int64_t>(1, r.tokens),
      static_cast<double>(r.forwards) / std::max<int64_t>(1, r.graphs),
      static_cast<double>(r.prompt) / std::max<int64_t>(1, r.tokens));
}

std::string train_default(double seconds) {
  std::string dir = "/tmp/tracelm-bench-generate";
  std::string csv = dir + ".csv";
  {
    FILE* f = std::fopen(csv.c_str(), "w");
    std::string text = synthetic_raw_csv({});
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  std::vector<CallGraph> graphs;
  ingest({csv}, {}, {[&](CallGraph&& g) { graphs.push_back(std::move(g)); }, nullptr, nullptr});
  TrainStart start;
  start.preset = "tiny";
  TrainConfig cfg = quick_train_config(seconds, 1);
  cfg.eval_every = 0;
  cfg.save_every = 0;
  cfg.progress = false;
  std::printf("training the tiny preset for %.0f s on the built-in synthetic sample (%zu graphs)\n",
              seconds, graphs.size());
  std::vector<CallGraph> val(graphs.begin(), graphs.begin() + std::min<size_t>(20, graphs.size()));
  train_model(graphs, val, start, cfg, dir);
  return dir;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model;
  int64_t n = 64, batch = 16;
  double train_seconds = 90;
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--model"))
      model = next();
    else if (!std::strcmp(argv[i], "-n"))
      n = std::atoll(next());
    else if (!std::strcmp(argv[i], "--batch"))
      batch = std::atoll(next());
    else if (!std::strcmp(argv[i], "--train-seconds"))
      train_seconds = std::atof(next());
    else {
      std::fprintf(stderr,
                   "usage: bench_generate [--model DIR] [-n N] [--batch B] "
                   "[--train-seconds S]\n");
      return 2;
    }
  }
  if (model.empty()) model = train_default(train_seconds);
  ModelBundle b = load_model_bundle(model);
  int64_t params = 0;
  for (auto& p : b.model->parameters()) params += p.numel();
  std::printf("model %s: %.2f M parameters, vocabulary %d\n", model.c_str(), params / 1e6,
              b.tokenizer->vocab_size());
  // Open requests: service and size drawn from the model's corpus statistics.
  std::vector<GenerateRequest> reqs(static_cast<size_t>(n));
  GeneratorOptions go;
  go.sampling.temperature = 0.8;
  char name[64];
  // The reference: libtorch's forward over a ragged KV cache, every token
  // sampled (what `generate` did before the CPU engine and jump-forward).
  go.engine = GeneratorOptions::Engine::kTorch;
  go.batch = batch;
  go.jump_forward = false;
  go.fixed_order = false;
  go.decode_threads = 1;  // one decoding thread unless said otherwise
  Run ref = run(b, go, reqs);
  std::snprintf(name, sizeof name, "reference: torch, no jump, batch %lld",
                static_cast<long long>(batch));
  print(name, ref);
  go.engine = GeneratorOptions::Engine::kCpu;
  Run cpu_nojump = run(b, go, reqs);
  std::snprintf(name, sizeof name, "CPU engine, no jump, batch %lld",
                static_cast<long long>(batch));
  print(name, cpu_nojump);
  go.jump_forward = true;
  Run any_order = run(b, go, reqs);
  std::snprintf(name, sizeof name, "CPU engine, jump, any order, batch %lld",
                static_cast<long long>(batch));
  print(name, any_order);
  go.fixed_order = true;
  go.engine = GeneratorOptions::Engine::kTorch;
  Run torch_run = run(b, go, reqs);
  std::vector<std::string> torch_graphs = last_graphs;
  std::snprintf(name, sizeof name, "torch engine, batch %lld", static_cast<long long>(batch));
  print(name, torch_run);
  go.engine = GeneratorOptions::Engine::kCpu;
  go.batch = 1;
  std::vector<GenerateRequest> few(reqs.begin(), reqs.begin() + std::min<int64_t>(n, 16));
  Run one = run(b, go, few);
  std::vector<std::string> one_graphs = last_graphs;
  print("constrained, batch 1", one);
  go.batch = batch;
  Run con = run(b, go, reqs);
  std::snprintf(name, sizeof name, "constrained, batch %lld", static_cast<long long>(batch));
  print(name, con);
  std::vector<std::string> con_graphs = last_graphs;
  const size_t cores = default_threads();
  go.decode_threads = static_cast<int>(cores);
  Run par = run(b, go, reqs);
  go.decode_threads = 1;
  std::snprintf(name, sizeof name, "constrained, batch %lld x %zu threads",
                static_cast<long long>(batch), cores);
  print(name, par);
  size_t same_threads = 0;
  for (size_t i = 0; i < last_graphs.size(); ++i) same_threads += last_graphs[i] == con_graphs[i];
  last_graphs = con_graphs;
  size_t same_engine = 0, same_batch = 0;
  for (size_t i = 0; i < last_graphs.size(); ++i) same_engine += last_graphs[i] == torch_graphs[i];
  for (size_t i = 0; i < one_graphs.size(); ++i) same_batch += one_graphs[i] == last_graphs[i];
  std::printf(
      "CPU engine over torch engine: %.2fx tokens/s, %.2fx graphs/s; %zu of %zu graphs identical "
      "(fp rounding may flip a sampled token); batch 1 vs batch %lld: %zu of %zu identical\n",
      (con.tokens / con.seconds) / (torch_run.tokens / torch_run.seconds),
      (con.graphs / con.seconds) / (torch_run.graphs / torch_run.seconds), same_engine,
      last_graphs.size(), static_cast<long long>(batch), same_batch, one_graphs.size());
  std::printf(
      "CPU engine time: model forwards %.1f%% of the run, matrix products %.1f%% of the "
      "forwards\n",
      100.0 * con.model_seconds / con.seconds,
      100.0 * con.matmul_seconds / std::max(1e-9, con.model_seconds));
  std::printf("model forwards per graph: %.1f (CPU engine), %.1f (torch engine)\n",
              static_cast<double>(con.forwards) / std::max<int64_t>(1, con.graphs),
              static_cast<double>(torch_run.forwards) / std::max<int64_t>(1, torch_run.graphs));
  std::printf(
      "jump-forward (CPU engine): %.1f%% of tokens appended without sampling, %.2fx tokens/s "
      "over no jump; fixed phrase order: %.1f%% appended, %.2fx valid graphs/s over any "
      "order\n",
      100.0 * any_order.forced / std::max<int64_t>(1, any_order.tokens),
      (any_order.tokens / any_order.seconds) / (cpu_nojump.tokens / cpu_nojump.seconds),
      100.0 * con.forced / std::max<int64_t>(1, con.tokens),
      (con.valid / con.seconds) / std::max(1e-9, any_order.valid / any_order.seconds));
  std::printf("one decoding thread over the reference: %.2fx tokens/s, %.2fx valid graphs/s\n",
              (con.tokens / con.seconds) / (ref.tokens / ref.seconds),
              (con.valid / con.seconds) / std::max(1e-9, ref.valid / ref.seconds));
  std::printf(
      "%zu decoding threads (one per core) over the reference: %.2fx tokens/s, %.2fx valid "
      "graphs/s (target 10x tokens/s); %.2fx over one thread; %zu of %zu graphs identical to "
      "one thread's\n",
      cores, (par.tokens / par.seconds) / (ref.tokens / ref.seconds),
      (par.valid / par.seconds) / std::max(1e-9, ref.valid / ref.seconds),
      (par.tokens / par.seconds) / (con.tokens / con.seconds), same_threads, con_graphs.size());
  std::printf("valid graphs per second per core (one decoding thread): %.2f (target >= 50)\n",
              con.valid / con.seconds);
  // bf16 products (`generate --precision bf16`): the same runs again.
  go.precision = Precision::kBF16;
  Run bf16 = run(b, go, reqs);
  std::vector<std::string> bf16_graphs = last_graphs;
  print("constrained, bf16", bf16);
  go.batch = 1;
  run(b, go, few);
  size_t bf16_same_batch = 0;
  for (size_t i = 0; i < last_graphs.size(); ++i)
    bf16_same_batch += last_graphs[i] == bf16_graphs[i];
  go.batch = batch;
  go.decode_threads = static_cast<int>(cores);
  Run bf16_par = run(b, go, reqs);
  std::snprintf(name, sizeof name, "constrained, bf16, %zu threads", cores);
  print(name, bf16_par);
  go.decode_threads = 1;
  go.precision = Precision::kF32;
  std::printf(
      "bf16 products (%s): one thread %.2fx fp32's tokens/s, %.2f valid graphs/s per core; %zu "
      "threads %.2fx the reference's tokens/s; valid %.1f%% (fp32 %.1f%%); batch 1 vs batch "
      "%lld: %zu of %zu identical\n",
      bf16_native() ? "native AVX512-BF16" : "fp32 vectors",
      (bf16.tokens / bf16.seconds) / (con.tokens / con.seconds), bf16.valid / bf16.seconds, cores,
      (bf16_par.tokens / bf16_par.seconds) / (ref.tokens / ref.seconds),
      100.0 * bf16.valid / std::max<int64_t>(1, bf16.graphs),
      100.0 * con.valid / std::max<int64_t>(1, con.graphs), static_cast<long long>(batch),
      bf16_same_batch, few.size());
  go.constrained = false;
  go.retries = 3;
  Run free = run(b, go, reqs);
  std::snprintf(name, sizeof name, "unconstrained (3 retries), batch %lld",
                static_cast<long long>(batch));
  print(name, free);
  double per_token_con = con.seconds / std::max<int64_t>(1, con.tokens);
  double per_token_free = free.seconds / std::max<int64_t>(1, free.tokens);
  std::printf("batched over batch 1: %.2fx tokens/s\n",
              (con.tokens / con.seconds) / (one.tokens / one.seconds));
  // Two views of the constraint's cost. The whole-run ratio compares runs
  // that decode different layers: unconstrained graphs fail at their root,
  // so every attempt is independent and the batch stays full, while a
  // constrained graph's deeper layers wait for their parents and the batch
  // runs less full ("tokens per forward"). The direct measure times the
  // constraint's own work inside the constrained run.
  std::printf(
      "whole-run time per generated token: constrained %.3fx of unconstrained "
      "(%.1f vs %.1f tokens per layer)\n",
      per_token_con / per_token_free,
      static_cast<double>(con.tokens) / std::max<int64_t>(1, con.layers),
      static_cast<double>(free.tokens) / std::max<int64_t>(1, free.layers));
  std::printf(
      "constraint work: %.3f s of %.3f s (%.1f%%): decoding costs %.3fx of the same "
      "decoding without it (target <= 1.15)\n",
      con.constraint_seconds, con.seconds, 100.0 * con.constraint_seconds / con.seconds,
      con.seconds / std::max(1e-9, con.seconds - con.constraint_seconds));
  std::printf("valid graphs per second: constrained %.2f, unconstrained %.2f",
              con.valid / con.seconds, free.valid / free.seconds);
  if (free.valid > 0)
    std::printf(" (%.1fx)", (con.valid / con.seconds) / (free.valid / free.seconds));
  std::printf("\n");
  return 0;
}
