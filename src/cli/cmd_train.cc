// `tracelm train`, `score` and `merge`: the model commands (libtorch).
// Model subcommands (built only with libtorch): score.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/distributed_options.h"
#include "corpus/graph_source.h"
#include "io/input_error.h"
#include "model/device.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

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

struct TrainOpts {
  std::string corpus, val, text, val_text, out;
  TrainStart start;
  TrainConfig cfg;
  double lr = 0, time_budget_min = 0;
  bool full = false, resume = false, quiet = false;
  std::string targets = "q_proj,k_proj";
  DistributedOptions dist;
  bool format_given = false;  // --format was on the command line
};

// Options -> graphs or text -> train_model(), and the summary line.
void run_train(TrainOpts* o) {
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
    if (o->format_given && cfg.stage == "pretrain" && text.format != cfg.format)
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
}

void add_train(CLI::App& app) {
  auto o = std::make_shared<TrainOpts>();
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
  c->add_option("--name-tokens", o->start.name_tokens,
                "from scratch, tokenizer trained here: keep the N most frequent callee names "
                "whole (one token each)")
      ->capture_default_str();
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
  c->add_flag("--refit-schedule", o->cfg.refit_schedule,
              "with --resume and --time-budget: fit the learning-rate cosine anew to this run's "
              "budget (continue a finished run for longer; default: the checkpoint's schedule)");
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
    o->format_given = format->count() > 0;
    run_train(o.get());
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

}  // namespace

void add_model_commands(CLI::App& app) {
  add_score(app);
  add_train(app);
  add_merge(app);
}

}  // namespace tracelm::cli
