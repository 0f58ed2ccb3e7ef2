// `tracelm generate`: options, then one call to the generator
// (generate/generator.h) with requests from generate/requests.h, and one
// writer (export/graph_writer.h). Also the model half of `tracelm demo`.
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/distributed_options.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "eval/provenance.h"
#include "export/graph_writer.h"
#include "generate/generator.h"
#include "generate/requests.h"
#include "generate/sharded.h"
#include "model/device.h"
#include "train/trainer.h"
#include "util/progress.h"

namespace tracelm::cli {

namespace {

void print_summary(const GenerationSummary& s, const GenerateStats& st, double seconds,
                   const std::string& out, const std::optional<CallRequest>& call) {
  double secs = std::max(seconds, 1e-9);
  std::fprintf(
      stderr,
      "generate: %llu requested, %llu complete, %llu valid (%.1f%%) in %.1f s: %.2f "
      "graphs/s, %.0f tokens/s (%.1f%% jumped forward), %lld layers decoded, %.1f%% of sampled "
      "steps masked; wrote %zu to %s\n",
      static_cast<unsigned long long>(s.requested), static_cast<unsigned long long>(s.complete),
      static_cast<unsigned long long>(s.valid),
      s.requested ? 100.0 * static_cast<double>(s.valid) / static_cast<double>(s.requested) : 0.0,
      seconds, static_cast<double>(s.requested) / secs, static_cast<double>(st.tokens) / secs,
      st.tokens ? 100.0 * static_cast<double>(st.forced_tokens) / static_cast<double>(st.tokens)
                : 0.0,
      static_cast<long long>(st.sequences),
      st.tokens > st.forced_tokens ? 100.0 * static_cast<double>(st.masked_steps) /
                                         static_cast<double>(st.tokens - st.forced_tokens)
                                   : 0.0,
      s.graphs.size(), out.c_str());
  if (call)
    std::fprintf(stderr, "  %llu of %llu valid graphs contain the call %s -> %s%s%s\n",
                 static_cast<unsigned long long>(s.with_call),
                 static_cast<unsigned long long>(s.valid), call->caller.c_str(),
                 call->callee.c_str(), call->type.empty() ? "" : " of type ", call->type.c_str());
  for (auto& [reason, count] : s.failed)
    std::fprintf(stderr, "  failed: %llu x %s\n", static_cast<unsigned long long>(count),
                 reason.c_str());
}

struct GenerateOpts {
  std::string model, adapter, out;
  int64_t n = 10;
  GeneratorOptions gen;
  std::string service, rare_call, like, format = "recursive", engine = "auto", precision = "fp32",
                                        attribute_order = "fixed";
  int64_t edges = 0, depth = 0, latency = -1;
  bool unconstrained = false, constrained = false, no_jump_forward = false, high_latency = false,
       tabular = false;
  bool quiet = false;
  std::string device = "cpu";
  DistributedOptions dist;
};

void run_generate(GenerateOpts* o);

void add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOpts>();
  CLI::App* c = app.add_subcommand(
      "generate",
      "generate call graphs layer by layer with a trained model; constrained decoding makes "
      "every graph valid and meet the request (docs/generation.md)");
  c->add_option("--model", o->model, "trained model directory (full model or LoRA adapter)")
      ->required();
  c->add_option("--adapter", o->adapter, "LoRA adapter directory, when --model is the base");
  auto* n = c->add_option("-n", o->n, "graphs to generate")
                ->capture_default_str()
                ->check(CLI::Range(1, 10000000));
  auto* like = c->add_option(
      "--like", o->like,
      "one request per graph of this corpus, with its service, edges, depth and latency (the "
      "paper's protocol: prompts from held-out graphs)");
  like->excludes(n);
  c->add_option("--service", o->service, "service id (default: drawn from the training services)");
  c->add_option("--edges", o->edges, "number of edges")->check(CLI::Range(1, 100000));
  c->add_option("--depth", o->depth, "depth (levels of calls)")->check(CLI::Range(1, 1000));
  c->add_option("--latency", o->latency, "root latency in ms")->check(CLI::Range(0, 1000000000));
  c->add_option("--rare-call", o->rare_call,
                "MS_a,MS_b[,TYPE]: every graph contains this call (constrained decoding forces "
                "it; USER as MS_a makes it the root call, any other MS_a becomes the entry "
                "microservice)");
  c->add_flag("--high-latency", o->high_latency,
              "a root latency at or above the service's p90 (from the model's corpus statistics)");
  c->add_option("--temperature", o->gen.sampling.temperature,
                "0 = greedy (the paper sampled at 0.8; docs/generation.md)")
      ->capture_default_str();
  c->add_option("--top-k", o->gen.sampling.top_k, "0 = off")->capture_default_str();
  c->add_option("--top-p", o->gen.sampling.top_p, "1 = off")->capture_default_str();
  c->add_option("--seed", o->gen.sampling.seed, "seed")->capture_default_str();
  c->add_option("--batch", o->gen.batch, "sequences decoded together")->capture_default_str();
  c->add_flag("--constrained", o->constrained, "constrained decoding (the default)");
  c->add_flag("--unconstrained", o->unconstrained,
              "plain sampling; a layer that breaks the rules is generated again (--retries)");
  c->add_option("--retries", o->gen.retries, "new attempts for a layer that fails")
      ->capture_default_str();
  c->add_option("--max-layer-tokens", o->gen.max_layer_tokens, "token budget of one layer")
      ->capture_default_str();
  c->add_flag(
      "--any-names",
      [o](int64_t) {
        o->gen.known_names = false;
        o->gen.known_calls = false;
        o->gen.known_layers = false;
        o->gen.known_splits = false;
      },
      "constrained: destinations may be any name (default: only the callees of the training "
      "corpus, from the model's stats.json)");
  c->add_flag(
      "--any-callers", [o](int64_t) { o->gen.known_callers = false; },
      "constrained: subgraphs under any edge (default: under edges to names that call others in "
      "the training corpus, while the layer allows it)");
  c->add_flag(
      "--any-sizes", [o](int64_t) { o->gen.known_sizes = false; },
      "constrained: a subgraph's calls unbounded (default: at most the most calls below its "
      "destination in the training corpus, while the layer allows it)");
  c->add_flag("--known-calls", o->gen.known_calls,
              "constrained: a caller calls only the callees it calls in the training corpus (when "
              "it calls any there; default: any known name)");
  c->add_flag(
      "--any-layers", [o](int64_t) { o->gen.known_layers = false; },
      "constrained: a layer's destinations in any order and combination (default: a sequence "
      "its caller's layers of that width had in the training corpus, when it had any)");
  c->add_flag(
      "--model-entries", [o](int64_t) { o->gen.draw_entries = false; },
      "constrained: the root call goes to any of its service's training entries the model "
      "picks (default: one drawn by how many training graphs entered there)");
  c->add_flag("--known-splits", o->gen.known_splits,
              "constrained: a layer of more than 15 calls follows one of its caller's in the "
              "training corpus, drawn per layer (default: its calls are free)");
  c->add_flag(
      "--model-widths", [o](int64_t) { o->gen.draw_widths = false; },
      "constrained: a subgraph line's width (num_current_edges) is the model's pick (default: "
      "drawn from its destination's widths in the training corpus at the sizes the line may "
      "take)");
  c->add_flag(
      "--model-layers", [o](int64_t) { o->gen.draw_layers = false; },
      "constrained: a layer's destinations are the known layer the model picks (default: one "
      "drawn by how often calls to its node from its caller, of its size, made each in the "
      "training corpus)");
  c->add_flag(
      "--any-types", [o](int64_t) { o->gen.known_types = false; },
      "constrained: a call of any type (default: one its caller used with its destination in "
      "the training corpus, else one its destination had there)");
  c->add_flag(
      "--any-durations", [o](int64_t) { o->gen.known_durations = false; },
      "constrained: a call may last up to its caller's window (default: at most its "
      "destination's longest call in the training corpus)");
  c->add_option("--format", o->format,
                "prompt format: recursive (pre-trained model) or instruction (a model tuned with "
                "--stage instruct: conditions as sentences, answers with the scratchpad)")
      ->check(CLI::IsMember({"recursive", "instruction"}))
      ->capture_default_str();
  c->add_flag("--tabular", o->tabular,
              "whole graphs in the tabular encoding (a model trained with --format tabular)");
  c->add_option("--engine", o->engine,
                "decoding engine: cpu (fp32 CPU engine, src/model/cpu_decoder.h), torch "
                "(libtorch forward, any device), auto (cpu where it applies)")
      ->check(CLI::IsMember({"auto", "cpu", "torch"}))
      ->capture_default_str();
  c->add_option("--precision", o->precision,
                "CPU engine's matrix products: fp32 (the model's exact forward) or bf16 (weights "
                "and inputs rounded to bf16, fp32 sums: faster, other graphs than fp32's; native "
                "on CPUs with AVX512-BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  c->add_flag("--no-jump-forward", o->no_jump_forward,
              "sample every token, also where the constraint allows only one continuation");
  c->add_option("--attribute-order", o->attribute_order,
                "constrained recursive units: the order of an edge's five phrases: fixed "
                "(edge_id, type, destination, starts, finishes: their heads written by "
                "jump-forward without sampling) or any (the model's choice)")
      ->check(CLI::IsMember({"any", "fixed"}))
      ->capture_default_str();
  c->add_option("--threads", o->gen.decode_threads,
                "decoding threads of the CPU engine, each with its own batch (0: one per "
                "core, or one per rank with --nproc); the graphs do not depend on it")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_flag("-q,--quiet", o->quiet, "no progress line");
  c->add_option("--device", o->device, "cpu, cuda or cuda:N (bf16 on a GPU)")
      ->capture_default_str();
  add_distributed_options(*c, o->dist);
  c->add_option("-o,--output", o->out,
                "output: .jsonl (corpus), .csv (Alibaba CallGraph), .otlp.json / .otlp.jsonl "
                "(OpenTelemetry), .jaeger.json (Jaeger UI upload)")
      ->required();
  c->callback([o] { run_generate(o.get()); });
}

// Options -> requests -> generator -> one writer, and the summary.
void run_generate(GenerateOpts* o) {
  if (o->constrained && o->unconstrained)
    throw CLI::ValidationError("--constrained and --unconstrained exclude each other");
  o->gen.constrained = !o->unconstrained;
  o->gen.instruction = o->format == "instruction";
  o->gen.jump_forward = !o->no_jump_forward;
  o->gen.fixed_order = o->attribute_order == "fixed";
  o->gen.engine = o->engine == "cpu"     ? GeneratorOptions::Engine::kCpu
                  : o->engine == "torch" ? GeneratorOptions::Engine::kTorch
                                         : GeneratorOptions::Engine::kAuto;
  o->gen.precision = parse_precision(o->precision);
  if (o->gen.precision != Precision::kF32 && o->engine == "torch")
    throw CLI::ValidationError("--precision bf16 is the CPU engine's (not --engine torch)");
  if (o->gen.instruction && o->tabular)
    throw CLI::ValidationError("--format instruction and --tabular exclude each other");
  GenerateRequest r;
  if (!o->service.empty()) r.service = o->service;
  if (o->edges > 0) r.num_edges = o->edges;
  if (o->depth > 0) r.depth = o->depth;
  if (o->latency >= 0) r.latency = o->latency;
  if (!o->rare_call.empty()) {
    std::string err;
    r.call = CallRequest::parse(o->rare_call, &err);
    if (!r.call) throw CLI::ValidationError("--rare-call: " + err);
    if (o->tabular) throw CLI::ValidationError("--rare-call needs recursive generation");
  }
  if (int rc = launch_local_ranks(o->dist); rc >= 0) throw ExitCode{rc};  // --nproc N
  std::unique_ptr<DataParallelGroup> group = join_data_parallel(o->dist, &o->device);
  // Ranks are the parallelism: one decoding loop each unless --threads says.
  if (group && o->gen.decode_threads == 0) o->gen.decode_threads = 1;
  ModelBundle b = load_model_bundle(o->model, o->adapter);
  place_model(b.model, parse_device(o->device), /*training=*/false);
  std::vector<GenerateRequest> reqs;
  if (!o->like.empty()) {
    std::vector<CallGraph> like;
    for_each_graph(o->like, CsvMode::kClean, [&](CallGraph&& g) { like.push_back(std::move(g)); });
    reqs = requests_like(like);
  } else {
    try {
      reqs = same_requests(r, o->n, o->high_latency, o->gen.instruction, b.stats,
                           o->gen.sampling.seed);
    } catch (const std::invalid_argument& e) {
      throw CLI::ValidationError(e.what());
    }
  }
  RecursiveGenerator g(b, o->gen);
  auto t0 = std::chrono::steady_clock::now();
  Progress bar("generate", reqs.size(), !o->quiet && !(group && group->rank()), "graphs");
  auto run = [&](const std::vector<GenerateRequest>& part, uint64_t first) {
    g.set_first_index(first);
    return o->tabular ? g.generate_tabular(part, o->gen.sampling.seed)
                      : g.generate(part, o->gen.sampling.seed, [&](size_t done, size_t ok) {
                          bar.update(done, 0, fmt::format("{:.0f}% complete", 100.0 * ok / done));
                        });
  };
  std::vector<GeneratedGraph> gs = generate_across_ranks(reqs, group.get(), run);
  GenerateStats st = sum_across_ranks(g.stats(), group.get());
  bar.finish();
  if (group && group->rank() != 0) return;  // rank 0 writes every rank's graphs
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  GenerationSummary sum = summarize(std::move(gs), reqs);
  write_graphs(o->out, sum.graphs);
  SetProvenance prov;
  prov.generator = o->tabular           ? "tracelm-tabular"
                   : o->gen.instruction ? "tracelm-instruction"
                                        : "tracelm";
  prov.protocol = !o->like.empty() ? "like"
                  : r.service || r.num_edges || r.depth || r.latency || r.call || o->high_latency
                      ? "fixed"
                      : "open";
  prov.like = o->like;
  prov.model = o->model;
  prov.seed = o->gen.sampling.seed;
  prov.requests = reqs.size();
  if (!o->tabular) prov.settings = generator_settings(o->gen);
  write_provenance(o->out, prov);
  print_summary(sum, st, s, o->out, r.call);
}

}  // namespace

std::vector<CallGraph> demo_train_and_generate(const std::string& train_path,
                                               const std::string& val_path,
                                               const std::string& out_dir, double minutes,
                                               int64_t n, uint64_t seed) {
  std::vector<CallGraph> train = load_corpus(train_path), val = load_corpus(val_path);
  TrainStart start;
  start.preset = "tiny";
  TrainConfig cfg = quick_train_config(minutes * 60, seed);
  TrainResult r = train_model(train, val, start, cfg, out_dir);
  std::printf("      trained %lld steps: validation loss %.3f -> %.3f, %.0f tokens/s (%s)\n",
              static_cast<long long>(r.steps), r.first_val_loss, r.final_val_loss, r.tokens_per_s,
              out_dir.c_str());
  ModelBundle b = load_model_bundle(out_dir);
  GeneratorOptions go;
  go.sampling.seed = seed;
  RecursiveGenerator gen(b, go);
  std::vector<CallGraph> out;
  std::map<std::string, int> why;
  for (auto& g : gen.generate(std::vector<GenerateRequest>(static_cast<size_t>(n)), seed)) {
    if (g.complete) {
      out.push_back(std::move(g.graph));
    } else {
      ++why[g.error.substr(0, g.error.find(" '"))];
    }
  }
  for (auto& [reason, count] : why)
    std::printf("      failed after retries: %d x %s\n", count, reason.c_str());
  return out;
}

void add_generate_commands(CLI::App& app) { add_generate(app); }

}  // namespace tracelm::cli
