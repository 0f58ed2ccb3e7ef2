// Model subcommands (built only with libtorch): score.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/distributed_options.h"
#include "core/validate.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "export/alibaba_csv.h"
#include "export/jaeger.h"
#include "export/otlp.h"
#include "generate/generator.h"
#include "generate/sharded.h"
#include "io/input_error.h"
#include "model/device.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"
#include "util/progress.h"

namespace tracelm::cli {

namespace {

void add_score(CLI::App& app) {
  struct Opts {
    std::string model, adapter, text, file, device = "cpu";
    bool no_bos = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "score", "log-probability of a text under a model (JSON: ids, per-token logprobs, sum)");
  c->add_option("--model", o->model,
                "model directory (config.json, model.safetensors, tokenizer.model)")
      ->required();
  c->add_option("--adapter", o->adapter, "LoRA adapter directory (PEFT layout)");
  auto* t = c->add_option("--text", o->text, "text to score");
  auto* f = c->add_option("--file", o->file, "file whose content is scored");
  t->excludes(f);
  c->add_flag("--no-bos", o->no_bos, "do not prepend the BOS token");
  c->add_option("--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  c->callback([o] {
    if (o->text.empty() && o->file.empty())
      throw CLI::ValidationError("--text or --file is required");
    std::string text = o->text;
    if (!o->file.empty()) {
      std::ifstream in(o->file, std::ios::binary);
      if (!in) throw InputError(o->file, 0, "cannot open");
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    torch::NoGradGuard no_grad;
    Llama model = load_llama(o->model);
    if (!o->adapter.empty()) load_lora(model, o->adapter);
    model->eval();
    place_model(model, parse_device(o->device), /*training=*/false);
    Tokenizer tok = Tokenizer::load(o->model + "/tokenizer.model");
    std::vector<int> ids = tok.encode(text, !o->no_bos, false);
    if (ids.size() < 2)
      throw InputError(o->file.empty() ? "--text" : o->file, 0, "text too short to score");
    int64_t ctx = model->config().max_position_embeddings;
    if (static_cast<int64_t>(ids.size()) > ctx)
      throw InputError(o->file.empty() ? "--text" : o->file, 0,
                       "text has " + std::to_string(ids.size()) +
                           " tokens, more than the model's " + std::to_string(ctx));
    torch::Tensor x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
    torch::Tensor logp = torch::log_softmax(model->forward(x), -1)[0].to(torch::kCPU);  // (T,V)
    nlohmann::ordered_json out;
    out["ids"] = ids;
    nlohmann::ordered_json tokens = nlohmann::ordered_json::array();
    double sum = 0;
    for (size_t i = 1; i < ids.size(); ++i) {
      double lp = logp[static_cast<int64_t>(i - 1)][ids[i]].item<double>();
      sum += lp;
      tokens.push_back({{"id", ids[i]}, {"piece", tok.piece(ids[i])}, {"logprob", lp}});
    }
    out["tokens"] = tokens;
    out["sum_logprob"] = sum;
    out["mean_logprob"] = sum / static_cast<double>(ids.size() - 1);
    std::printf("%s\n", out.dump(2).c_str());
  });
}

void add_train(CLI::App& app) {
  struct Opts {
    std::string corpus, val, text, val_text, out;
    TrainStart start;
    TrainConfig cfg;
    double lr = 0, time_budget_min = 0;
    bool full = false, resume = false, quiet = false;
    std::string targets = "q_proj,k_proj";
    DistributedOptions dist;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "train",
      "train a Llama model on a corpus or on encoded text: LoRA on --base, or from scratch with "
      "--preset");
  c->add_option("--corpus", o->corpus,
                "training corpus (JSONL, or CallGraph CSV cleaned first), encoded on the fly; "
                "with --text: only for the statistics in stats.json (and the tokenizer)");
  c->add_option("--val", o->val, "validation corpus (for the validation loss)");
  c->add_option("--text", o->text,
                "train on pre-encoded text as `tracelm encode` writes it (recursive or tabular "
                "for pretrain, instruction for --stage instruct; the format is read from the "
                "text)");
  c->add_option("--val-text", o->val_text, "validation text (same format as --text)");
  c->add_option("-o,--output", o->out, "output directory")->required();
  c->add_option("--base", o->start.base_dir, "base model directory (Hugging Face layout)");
  c->add_option("--adapter", o->start.adapter_dir,
                "continue this LoRA adapter (e.g. instruct after pretrain)");
  c->add_option("--preset", o->start.preset, "from scratch: tiny, small or base")
      ->check(CLI::IsMember({"tiny", "small", "base"}));
  c->add_option("--tokenizer", o->start.tokenizer,
                "from scratch: tokenizer.model (else trained on the corpus)");
  c->add_option("--stage", o->cfg.stage, "pretrain or instruct")
      ->check(CLI::IsMember({"pretrain", "instruct"}))
      ->capture_default_str();
  auto* format = c->add_option("--format", o->cfg.format, "pretraining encoding")
                     ->check(CLI::IsMember({"recursive", "tabular"}))
                     ->capture_default_str();
  c->add_option("--context", o->cfg.context, "tokens per sequence")->capture_default_str();
  c->add_option("--batch", o->cfg.batch, "sequences per optimizer step")->capture_default_str();
  c->add_option("--micro-batch", o->cfg.micro_batch, "sequences per forward pass")
      ->capture_default_str();
  c->add_option("--lr", o->lr, "peak learning rate (default 3e-4 pretrain, 1e-4 instruct)");
  c->add_option("--weight-decay", o->cfg.weight_decay, "AdamW weight decay (matrices only)")
      ->capture_default_str();
  c->add_option("--warmup", o->cfg.warmup, "warm-up steps (at most 10% of the run)")
      ->capture_default_str();
  c->add_option("--epochs", o->cfg.epochs, "passes over the corpus")->capture_default_str();
  c->add_option("--max-steps", o->cfg.max_steps, "optimizer steps (0: from the epochs)")
      ->capture_default_str();
  c->add_option("--time-budget", o->time_budget_min, "stop after this many minutes (and save)");
  c->add_option("--eval-every", o->cfg.eval_every, "validation loss every N steps")
      ->capture_default_str();
  c->add_option("--save-every", o->cfg.save_every, "checkpoint every N steps")
      ->capture_default_str();
  c->add_option("--seed", o->cfg.seed, "seed")->capture_default_str();
  c->add_option("--instruction-fraction", o->cfg.instruction_fraction,
                "instruct: fraction of graphs turned into samples")
      ->capture_default_str();
  c->add_flag("--full", o->full, "with --base: full fine-tuning instead of LoRA");
  c->add_option("--lora-targets", o->targets, "LoRA target modules")->capture_default_str();
  c->add_option("--lora-r", o->cfg.lora_config.r, "LoRA rank")->capture_default_str();
  c->add_option("--lora-alpha", o->cfg.lora_config.alpha, "LoRA alpha")->capture_default_str();
  c->add_option("--lora-dropout", o->cfg.lora_config.dropout, "LoRA dropout")
      ->capture_default_str();
  c->add_flag("--resume", o->resume, "continue from OUTPUT/checkpoint");
  c->add_option("--device", o->cfg.device, "cpu, cuda or cuda:N (bf16 weights on a GPU)")
      ->capture_default_str();
  c->add_option("--log-every", o->cfg.log_every, "metrics.jsonl line every N steps")
      ->capture_default_str();
  c->add_option("--stop-after", o->cfg.stop_after,
                "stop (and save) at this step, keeping the whole run's schedule (a job that "
                "continues with --resume)");
  add_distributed_options(*c, o->dist);
  c->add_flag("-q,--quiet", o->quiet, "no progress line");
  c->callback([o, format] {
    if (int rc = launch_local_ranks(o->dist); rc >= 0) throw ExitCode{rc};  // --nproc N
    std::unique_ptr<DataParallelGroup> group = join_data_parallel(o->dist, &o->cfg.device);
    o->cfg.sync = group.get();
    if (o->corpus.empty() && o->text.empty())
      throw CLI::ValidationError("--corpus or --text is required");
    if (!o->val.empty() && !o->text.empty())
      throw CLI::ValidationError("with --text, give the validation text as --val-text");
    if (!o->val_text.empty() && o->text.empty())
      throw CLI::ValidationError("--val-text needs --text");
    TrainConfig cfg = o->cfg;
    cfg.lr = o->lr > 0 ? o->lr : (cfg.stage == "instruct" ? 1e-4 : 3e-4);
    cfg.lora = !o->full;
    cfg.time_budget_s = o->time_budget_min * 60;
    cfg.progress = !o->quiet;
    cfg.lora_config.target_modules.clear();
    std::stringstream ss(o->targets);
    for (std::string t; std::getline(ss, t, ',');)
      if (!t.empty()) cfg.lora_config.target_modules.push_back(t);
    std::vector<CallGraph> train, val;
    if (!o->corpus.empty())
      for_each_graph(o->corpus, CsvMode::kClean,
                     [&](CallGraph&& g) { train.push_back(std::move(g)); });
    if (!o->val.empty())
      for_each_graph(o->val, CsvMode::kClean, [&](CallGraph&& g) { val.push_back(std::move(g)); });
    TrainResult r;
    if (!o->text.empty()) {
      EncodedText text = read_encoded_text(o->text), val_text;
      if (!o->val_text.empty()) val_text = read_encoded_text(o->val_text);
      if (format->count() > 0 && cfg.stage == "pretrain" && text.format != cfg.format)
        throw CLI::ValidationError("--format " + cfg.format + ", but " + o->text + " holds " +
                                   text.format + " text");
      r = train_model(text, val_text, train, o->start, cfg, o->out, o->resume);
    } else {
      r = train_model(train, val, o->start, cfg, o->out, o->resume);
    }
    bool has_val = !o->val.empty() || !o->val_text.empty();
    std::string val_text = has_val ? fmt::format("validation loss {:.4f} (from {:.4f})",
                                                 r.final_val_loss, r.first_val_loss)
                                   : std::string("no validation set (--val)");
    if (group && group->rank() != 0) return;  // rank 0 reports
    std::fprintf(stderr, "train: %lld steps, loss %.4f, %s, %.0f tokens/s; model in %s\n",
                 static_cast<long long>(r.steps), r.final_loss, val_text.c_str(), r.tokens_per_s,
                 o->out.c_str());
  });
}

void add_merge(CLI::App& app) {
  struct Opts {
    std::string base, adapter, out;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "merge", "fold a LoRA adapter into its base model and write the merged model");
  c->add_option("--base", o->base, "base model directory")->required();
  c->add_option("--adapter", o->adapter, "LoRA adapter directory (PEFT layout)")->required();
  c->add_option("-o,--output", o->out, "merged model directory")->required();
  c->callback([o] {
    torch::NoGradGuard no_grad;
    Llama model = load_llama(o->base);
    load_lora(model, o->adapter);
    merge_lora(model);
    save_llama(model, o->out);
    std::ifstream tok(o->base + "/tokenizer.model", std::ios::binary);
    if (tok) {
      std::ofstream out(o->out + "/tokenizer.model", std::ios::binary);
      out << tok.rdbuf();
    }
    std::fprintf(stderr, "merged %s into %s: %s\n", o->adapter.c_str(), o->base.c_str(),
                 o->out.c_str());
  });
}

// Writes graphs in the format named by the output's extension.
void write_graphs(const std::string& path, const std::vector<CallGraph>& graphs) {
  std::string text;
  if (path.ends_with(".otlp.json")) {
    text = to_otlp_json(graphs);
  } else if (path.ends_with(".jaeger.json")) {
    text = to_jaeger_json(graphs);
  } else if (path.ends_with(".csv")) {
    text = std::string(kAlibabaCsvHeader) + "\n";
    for (size_t i = 0; i < graphs.size(); ++i) append_alibaba_rows(graphs[i], i, 0, text);
  } else if (path.ends_with(".jsonl")) {
    for (const CallGraph& g : graphs) text += graph_to_json(g) + "\n";
  } else {
    throw std::invalid_argument("output " + path +
                                ": expected .jsonl, .csv, .otlp.json or .jaeger.json");
  }
  AtomicFile out(path);
  out.write(text);
  out.close();
}

void add_generate(CLI::App& app) {
  struct Opts {
    std::string model, adapter, out;
    int64_t n = 10;
    GeneratorOptions gen;
    std::string service, rare_call, format = "recursive";
    int64_t edges = 0, depth = 0, latency = -1;
    bool unconstrained = false, constrained = false, high_latency = false, tabular = false;
    bool quiet = false;
    std::string device = "cpu";
    DistributedOptions dist;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "generate",
      "generate call graphs layer by layer with a trained model; constrained decoding makes "
      "every graph valid and meet the request (docs/generation.md)");
  c->add_option("--model", o->model, "trained model directory (full model or LoRA adapter)")
      ->required();
  c->add_option("--adapter", o->adapter, "LoRA adapter directory, when --model is the base");
  c->add_option("-n", o->n, "graphs to generate")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000000));
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
  c->add_option("--temperature", o->gen.sampling.temperature, "0 = greedy")->capture_default_str();
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
      "--any-names", [o](int64_t) { o->gen.known_names = false; },
      "constrained: destinations may be any name (default: only the callees of the training "
      "corpus, from the model's stats.json)");
  c->add_option("--format", o->format,
                "prompt format: recursive (pre-trained model) or instruction (a model tuned with "
                "--stage instruct: conditions as sentences, answers with the scratchpad)")
      ->check(CLI::IsMember({"recursive", "instruction"}))
      ->capture_default_str();
  c->add_flag("--tabular", o->tabular,
              "whole graphs in the tabular encoding (a model trained with --format tabular)");
  c->add_flag("-q,--quiet", o->quiet, "no progress line");
  c->add_option("--device", o->device, "cpu, cuda or cuda:N (bf16 on a GPU)")
      ->capture_default_str();
  add_distributed_options(*c, o->dist);
  c->add_option("-o,--output", o->out,
                "output: .jsonl (corpus), .csv (Alibaba CallGraph), .otlp.json (OpenTelemetry), "
                ".jaeger.json (Jaeger UI upload)")
      ->required();
  c->callback([o] {
    if (o->constrained && o->unconstrained)
      throw CLI::ValidationError("--constrained and --unconstrained exclude each other");
    o->gen.constrained = !o->unconstrained;
    o->gen.instruction = o->format == "instruction";
    if (o->gen.instruction && o->tabular)
      throw CLI::ValidationError("--format instruction and --tabular exclude each other");
    if (int rc = launch_local_ranks(o->dist); rc >= 0) throw ExitCode{rc};  // --nproc N
    std::unique_ptr<DataParallelGroup> group = join_data_parallel(o->dist, &o->device);
    ModelBundle b = load_model_bundle(o->model, o->adapter);
    place_model(b.model, parse_device(o->device), /*training=*/false);
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
    std::vector<GenerateRequest> reqs(static_cast<size_t>(o->n), r);
    if (o->high_latency) {
      if (r.latency) throw CLI::ValidationError("--high-latency and --latency exclude each other");
      if (!r.service) throw CLI::ValidationError("--high-latency needs --service");
      if (o->gen.instruction) {  // the question says it in words
        for (auto& q : reqs) q.high_latency = true;
      }
    }
    if (o->high_latency && !o->gen.instruction) {
      double p90 = b.stats.latency_p90(*r.service);
      if (p90 <= 0)
        throw CLI::ValidationError("the model's statistics have no latency for service " +
                                   *r.service);
      Rng rng(o->gen.sampling.seed);
      for (auto& q : reqs)  // uniform in [p90, 2 p90]
        q.latency = static_cast<int64_t>(std::ceil(p90)) +
                    static_cast<int64_t>(rng.next() % (static_cast<uint64_t>(p90) + 1));
    }
    RecursiveGenerator g(b, o->gen);
    auto t0 = std::chrono::steady_clock::now();
    Progress bar("generate", static_cast<uint64_t>(o->n), !o->quiet && !(group && group->rank()),
                 "graphs");
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
    std::vector<CallGraph> keep;
    uint64_t complete = 0, valid = 0, with_call = 0;
    std::map<std::string, int> why;
    for (auto& x : gs) {
      if (!x.complete) {
        ++why[x.error.substr(0, 60)];
        continue;
      }
      ++complete;
      if (!is_valid(validate(x.graph))) continue;
      ++valid;
      with_call += r.call && has_call(x.graph, *r.call);
      keep.push_back(std::move(x.graph));
    }
    write_graphs(o->out, keep);
    std::fprintf(stderr,
                 "generate: %zu requested, %llu complete, %llu valid (%.1f%%) in %.1f s: %.2f "
                 "graphs/s, %.0f tokens/s, %lld layers decoded, %.1f%% of steps masked; wrote %llu "
                 "to %s\n",
                 gs.size(), static_cast<unsigned long long>(complete),
                 static_cast<unsigned long long>(valid),
                 gs.empty() ? 0.0 : 100.0 * valid / gs.size(), s, gs.size() / std::max(s, 1e-9),
                 st.tokens / std::max(s, 1e-9), static_cast<long long>(st.sequences),
                 st.tokens ? 100.0 * st.masked_steps / st.tokens : 0.0,
                 static_cast<unsigned long long>(keep.size()), o->out.c_str());
    if (r.call)
      std::fprintf(stderr, "  %llu of %llu valid graphs contain the call %s -> %s%s%s\n",
                   static_cast<unsigned long long>(with_call),
                   static_cast<unsigned long long>(valid), r.call->caller.c_str(),
                   r.call->callee.c_str(), r.call->type.empty() ? "" : " of type ",
                   r.call->type.c_str());
    for (auto& [reason, count] : why)
      std::fprintf(stderr, "  failed: %d x %s\n", count, reason.c_str());
  });
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

void add_model_commands(CLI::App& app) {
  add_generate(app);
  add_eval_commands(app);
  add_score(app);
  add_train(app);
  add_merge(app);
}

}  // namespace tracelm::cli
