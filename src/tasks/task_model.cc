#include "tasks/task_model.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "generate/generator.h"
#include "io/atomic_file.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "model/run_dir.h"
#include "model/safetensors.h"
#include "tasks/classifier_head.h"
#include "tasks/score.h"
#include "train/trainer.h"
#include "util/progress.h"
#include "util/rng.h"

namespace tracelm {

namespace {

// The directory holding the full model of `dir` (itself, or an adapter's base).
std::string base_model_dir(const std::string& dir) {
  if (file_exists(run_dir::config(dir))) return dir;
  if (file_exists(run_dir::adapter_config(dir))) {
    nlohmann::json a = read_json_file(run_dir::adapter_config(dir));
    std::string base = a.value("base_model_name_or_path", "");
    if (!base.empty()) return base;
  }
  throw InputError(dir, 0, "not a model directory (no config.json or adapter_config.json)");
}

std::string tokenizer_path(const std::string& dir) {
  if (file_exists(run_dir::tokenizer(dir))) return run_dir::tokenizer(dir);
  std::string base = base_model_dir(dir);
  if (file_exists(run_dir::tokenizer(base))) return run_dir::tokenizer(base);
  throw InputError(dir, 0, "no tokenizer.model");
}

// Thread count for small decode-sized products (restored on exit).
struct ThreadScope {
  int saved;
  explicit ThreadScope(int n) : saved(torch::get_num_threads()) { torch::set_num_threads(n); }
  ~ThreadScope() { torch::set_num_threads(saved); }
};

std::string greedy_answer(Llama& m, const Tokenizer& tok, const std::string& prompt,
                          int64_t max_new, int64_t max_len) {
  std::vector<int> ids = tok.encode(prompt, true, false);
  int64_t keep = std::max<int64_t>(8, max_len - max_new);
  if (static_cast<int64_t>(ids.size()) > keep)  // keep BOS and the end of the prompt
    ids.erase(ids.begin() + 1, ids.end() - (keep - 1));
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  KVCache cache;
  torch::Tensor x = torch::tensor(ids64, torch::kInt64).view({1, -1});
  torch::Tensor logits = m->forward(x, &cache);  // (1,T,V)
  std::vector<int> out;
  for (int64_t k = 0; k < max_new; ++k) {
    int next = static_cast<int>(logits[0][-1].argmax().item<int64_t>());
    if (next == tok.eos_id()) break;
    out.push_back(next);
    std::string text = tok.decode(out);
    size_t first = text.find_first_not_of(" \n");
    if (first != std::string::npos && text.find('\n', first) != std::string::npos) break;
    logits =
        m->forward(torch::tensor({static_cast<int64_t>(next)}, torch::kInt64).view({1, 1}), &cache);
  }
  return tok.decode(out);
}

std::vector<int> truncated_ids(const Tokenizer& tok, const std::string& text, int64_t context) {
  std::vector<int> ids = tok.encode(text, true, false);
  if (static_cast<int64_t>(ids.size()) > context) ids.resize(static_cast<size_t>(context));
  return ids;
}

// Features of records (N, C), in batches.
torch::Tensor record_features(Llama& m, const Tokenizer& tok,
                              const std::vector<const TaskRecord*>& recs, int64_t context,
                              const std::function<void(size_t)>& progress) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> parts;
  const size_t kBatch = 8;
  for (size_t i = 0; i < recs.size(); i += kBatch) {
    std::vector<std::vector<int>> seqs;
    for (size_t j = i; j < std::min(recs.size(), i + kBatch); ++j)
      seqs.push_back(truncated_ids(tok, recs[j]->text, context));
    parts.push_back(last_token_hidden(m, seqs));
    if (progress) progress(std::min(recs.size(), i + kBatch));
  }
  return torch::cat(parts, 0);  // (N,C)
}

torch::Tensor normal_init(int64_t rows, int64_t cols, double std, uint64_t seed) {
  Rng rng(seed);
  torch::Tensor w = torch::empty({rows, cols}, torch::kFloat32);
  float* p = w.data_ptr<float>();
  for (int64_t i = 0; i < rows * cols; ++i) {
    double u1 = std::max(rng.uniform(), 1e-12), u2 = rng.uniform();
    p[i] = static_cast<float>(std * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2));
  }
  return w;
}

Progress make_progress(const char* what, size_t n, bool on) {
  return Progress(what, static_cast<uint64_t>(n), on, "records");
}

}  // namespace

torch::Tensor last_token_hidden(Llama& model, const std::vector<std::vector<int>>& seqs) {
  int64_t B = static_cast<int64_t>(seqs.size()), T = 0;
  for (const auto& s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s.size()));
  if (B == 0 || T == 0) throw std::invalid_argument("last_token_hidden: empty sequences");
  torch::Tensor ids = torch::zeros({B, T}, torch::kInt64);
  torch::Tensor pos = torch::arange(T, torch::kInt64).unsqueeze(0).repeat({B, 1});  // (B,T)
  torch::Tensor valid = torch::zeros({B, T}, torch::kBool);
  std::vector<int64_t> last(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = seqs[static_cast<size_t>(b)];
    if (s.empty()) throw std::invalid_argument("last_token_hidden: an empty sequence");
    for (size_t t = 0; t < s.size(); ++t) ids[b][static_cast<int64_t>(t)] = s[t];
    valid[b].narrow(0, 0, static_cast<int64_t>(s.size())).fill_(true);
    last[static_cast<size_t>(b)] = static_cast<int64_t>(s.size()) - 1;
  }
  bool all_full = valid.all().item<bool>();
  torch::Tensor h =
      all_full ? model->hidden(ids) : model->hidden(ids, nullptr, pos, valid);  // (B,T,C)
  torch::Tensor idx = torch::tensor(last, torch::kInt64);                       // (B)
  return h.index({torch::arange(B, torch::kInt64), idx});                       // (B,C)
}

std::string finetune_infill(const std::vector<TaskRecord>& records, const std::string& model_dir,
                            const TaskTrainOptions& opt, const std::string& out_dir) {
  EncodedText train, val;
  train.format = val.format = "instruction";
  for (const TaskRecord& r : records) {
    if (!is_infill(r.task)) throw std::invalid_argument("finetune_infill: not an infilling record");
    if (r.split == "train") train.samples.push_back({task_prompt(r.question), r.answer + "\n"});
    if (r.split == "val") val.samples.push_back({task_prompt(r.question), r.answer + "\n"});
  }
  if (train.samples.empty()) throw std::invalid_argument("no train records to fine-tune on");
  if (val.samples.empty()) val.format.clear();
  std::filesystem::create_directories(out_dir);
  TrainStart start;
  std::string base = base_model_dir(model_dir);
  LlamaConfig mc = load_llama_config(base + "/config.json");
  if (opt.from_scratch) {
    // The same architecture and tokenizer with random weights.
    std::string init = out_dir + "/init";
    save_llama(init_llama(mc, opt.seed), init);
    std::filesystem::copy_file(tokenizer_path(model_dir), init + "/tokenizer.model",
                               std::filesystem::copy_options::overwrite_existing);
    start.base_dir = init;
  } else if (base != model_dir) {
    start.base_dir = base;
    start.adapter_dir = model_dir;  // continue the trace adapter
  } else {
    start.base_dir = model_dir;
  }
  TrainConfig cfg;
  cfg.stage = "instruct";
  cfg.lr = opt.lr;
  cfg.batch = opt.batch;
  cfg.micro_batch = std::min<int64_t>(opt.batch, 8);
  cfg.epochs = opt.epochs;
  cfg.context = std::min<int64_t>(opt.context, mc.max_position_embeddings);
  cfg.time_budget_s = opt.time_budget_s;
  cfg.eval_every = 0;
  cfg.save_every = 1 << 30;
  cfg.seed = opt.seed;
  cfg.lora = !opt.full;
  cfg.progress = opt.progress;
  // Records whose prompt fills the context lose their answer in training.
  Tokenizer tok = Tokenizer::load(tokenizer_path(model_dir));
  int64_t too_long = 0;
  for (const InstructionSample& s : train.samples)
    too_long += static_cast<int64_t>(tok.encode(s.question, true, false).size()) >= cfg.context;
  TrainResult res = train_model(train, val, {}, start, cfg, out_dir);
  return fmt::format(
      "fine-tuned {} on {} train records ({} with a prompt over the {}-token context, not "
      "learnt): {} steps, final loss {:.4f}, {} -> {}",
      opt.from_scratch ? "the un-pretrained architecture" : model_dir, train.samples.size(),
      too_long, cfg.context, res.steps, res.final_loss, opt.full ? "full" : "LoRA", out_dir);
}

std::vector<std::string> infill_answers(const std::string& model_dir,
                                        const std::vector<const TaskRecord*>& records,
                                        int64_t max_new_tokens,
                                        const std::function<void(size_t)>& progress) {
  ModelBundle b = load_model_bundle(model_dir);
  b.model->eval();
  torch::NoGradGuard ng;
  ThreadScope threads(1);
  int64_t max_len = std::max<int64_t>(b.model->config().max_position_embeddings, 64);
  std::vector<std::string> out;
  for (size_t i = 0; i < records.size(); ++i) {
    out.push_back(greedy_answer(b.model, *b.tokenizer, task_prompt(records[i]->question),
                                max_new_tokens, max_len));
    if (progress) progress(i + 1);
  }
  return out;
}

std::string train_classifier(const std::vector<TaskRecord>& records, const std::string& model_dir,
                             const TaskTrainOptions& opt, const std::string& out_dir) {
  std::vector<const TaskRecord*> train = split_records(records, "train");
  if (train.empty()) throw std::invalid_argument("no train records for the classifier");
  for (const TaskRecord* r : train)
    if (is_infill(r->task))
      throw std::invalid_argument("train_classifier: not a prediction record");
  ModelBundle b = load_model_bundle(model_dir);
  b.model->eval();
  for (auto& p : b.model->parameters()) p.set_requires_grad(false);  // frozen
  int64_t context = std::min<int64_t>(opt.context, b.model->config().max_position_embeddings);
  Progress pr = make_progress("features", train.size(), opt.progress);
  torch::Tensor feats = record_features(b.model, *b.tokenizer, train, context,
                                        [&](size_t n) { pr.update(n, n); });  // (N,C)
  pr.finish();
  std::vector<int64_t> labels;
  for (const TaskRecord* r : train) labels.push_back(r->label);
  torch::Tensor y = torch::tensor(labels, torch::kInt64);  // (N)
  int64_t C = feats.size(1), N = feats.size(0);
  torch::Tensor w = normal_init(2, C, 0.02, opt.seed).set_requires_grad(true);  // (2,C)
  torch::optim::AdamW adam({w}, torch::optim::AdamWOptions(opt.lr).weight_decay(0));
  int64_t per_epoch = (N + opt.batch - 1) / opt.batch, total = per_epoch * opt.epochs, step = 0;
  double last_loss = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int e = 0; e < opt.epochs; ++e) {
    std::vector<int64_t> order(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) order[static_cast<size_t>(i)] = i;
    Rng rng(opt.seed * 7919ull + static_cast<uint64_t>(e));
    rng.shuffle(order.begin(), order.end());
    for (int64_t i = 0; i < N; i += opt.batch) {
      int64_t n = std::min(opt.batch, N - i);
      torch::Tensor idx = torch::tensor(
          std::vector<int64_t>(order.begin() + i, order.begin() + i + n), torch::kInt64);
      double lr = opt.lr * 0.5 *
                  (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total)));
      for (auto& g : adam.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      adam.zero_grad();
      torch::Tensor loss =
          torch::nn::functional::cross_entropy(head_logits(w, feats.index({idx})), y.index({idx}));
      loss.backward();
      torch::nn::utils::clip_grad_norm_({w}, 1.0);
      adam.step();
      last_loss = loss.item<double>();
      ++step;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  torch::NoGradGuard ng;
  double train_acc =
      head_logits(w, feats).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
  std::filesystem::create_directories(out_dir);
  torch::Tensor wc = w.detach().contiguous();
  write_safetensors(out_dir + "/head.safetensors",
                    {TensorData{"score.weight",
                                "F32",
                                {2, C},
                                wc.data_ptr<float>(),
                                static_cast<size_t>(wc.numel()) * sizeof(float)}});
  nlohmann::json j;
  j["model"] = std::filesystem::absolute(model_dir).string();
  j["task"] = std::string(task_kind_name(train.front()->task));
  j["context"] = context;
  j["classes"] = {0, 1};
  j["train_records"] = N;
  j["epochs"] = opt.epochs;
  j["lr"] = opt.lr;
  j["batch"] = opt.batch;
  j["final_loss"] = last_loss;
  j["train_accuracy"] = train_acc;
  AtomicFile f(out_dir + "/head.json");
  f.write(j.dump(2) + "\n");
  f.close();
  return fmt::format(
      "classifier head on {} frozen: {} train records, {} steps in {:.1f} s, final loss {:.4f}, "
      "train accuracy {:.1f}% -> {}",
      model_dir, N, step, secs, last_loss, 100 * train_acc, out_dir);
}

std::vector<int> classify(const std::string& head_dir,
                          const std::vector<const TaskRecord*>& records,
                          const std::function<void(size_t)>& progress) {
  nlohmann::json j = read_json_file(head_dir + "/head.json");
  std::string model = j.at("model").get<std::string>();
  int64_t context = j.at("context").get<int64_t>();
  ModelBundle b = load_model_bundle(model);
  b.model->eval();
  SafetensorsFile st(head_dir + "/head.safetensors");
  TensorView v = st.get("score.weight");
  int64_t C = b.model->config().hidden_size;
  torch::Tensor w = torch::empty({2, C}, torch::kFloat32);
  if (v.numel() != w.numel())
    throw InputError(head_dir + "/head.safetensors", 0,
                     "score.weight does not match the model's hidden size " + std::to_string(C));
  to_float32(v, w.data_ptr<float>());
  torch::Tensor feats = record_features(b.model, *b.tokenizer, records, context, progress);
  torch::Tensor pred = head_logits(w, feats).argmax(1);  // (N)
  std::vector<int> out;
  for (int64_t i = 0; i < pred.size(0); ++i)
    out.push_back(static_cast<int>(pred[i].item<int64_t>()));
  return out;
}

std::vector<CallGraph> synthesize_like(const std::string& model_dir,
                                       const std::vector<CallGraph>& real, const TaskRules& rules,
                                       uint64_t seed, int retries, std::string* summary) {
  ModelBundle b = load_model_bundle(model_dir);
  std::vector<GenerateRequest> reqs;
  int64_t with_rare = 0;
  for (const CallGraph& g : real) {
    GenerateRequest r;
    r.service = g.service;
    r.num_edges = static_cast<int64_t>(g.num_edges());
    r.depth = g.depth();
    r.latency = g.latency();
    for (const Edge& e : g.edges)
      if (rules.is_rare(g.service, e)) {
        r.call = CallRequest{e.caller, e.callee, std::string(call_type_name(e.type))};
        ++with_rare;
        break;
      }
    reqs.push_back(std::move(r));
  }
  std::vector<std::optional<CallGraph>> got(reqs.size());
  std::vector<size_t> pending(reqs.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  GeneratorOptions go;
  go.sampling.seed = seed;
  for (int attempt = 0; attempt <= retries && !pending.empty(); ++attempt) {
    std::vector<GenerateRequest> batch;
    for (size_t i : pending) batch.push_back(reqs[i]);
    RecursiveGenerator gen(b, go);
    std::vector<GeneratedGraph> gs = gen.generate(batch, seed + static_cast<uint64_t>(attempt));
    std::vector<size_t> still;
    for (size_t k = 0; k < pending.size(); ++k) {
      if (gs[k].complete && is_valid(validate(gs[k].graph))) {
        got[pending[k]] = std::move(gs[k].graph);
      } else {
        still.push_back(pending[k]);
      }
    }
    pending = std::move(still);
  }
  std::vector<CallGraph> out;
  for (auto& g : got)
    if (g) out.push_back(std::move(*g));
  if (summary)
    *summary = fmt::format(
        "synthesized {} of {} requested graphs ({:.1f}% valid after up to {} retries; {} requests "
        "asked for a rare call)",
        out.size(), reqs.size(), reqs.empty() ? 0.0 : 100.0 * out.size() / reqs.size(), retries,
        with_rare);
  return out;
}

nlohmann::json evaluate_tasks(const std::vector<TaskRecord>& records, const TaskEvalOptions& opt) {
  std::vector<const TaskRecord*> test = split_records(records, "test", opt.limit);
  if (test.empty()) throw std::invalid_argument("no test records");
  bool infill = is_infill(test.front()->task);
  std::vector<std::pair<std::string, TaskScore>> scores;
  if (!opt.answers_dir.empty()) std::filesystem::create_directories(opt.answers_dir);
  for (const auto& [name, dir] : opt.models) {
    Progress pr = make_progress(name.c_str(), test.size(), opt.progress);
    auto t0 = std::chrono::steady_clock::now();
    auto step = [&](size_t n) { pr.update(n, n); };
    std::vector<std::string> answers;
    std::vector<int> labels;
    if (infill) {
      answers = infill_answers(dir, test, opt.max_new_tokens, step);
    } else {
      labels = classify(dir, test, step);
    }
    pr.finish();
    TaskScore s = infill ? score_answers(test, answers) : score_labels(test, labels);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%s: %lld test records in %.1f s\n", name.c_str(),
                 static_cast<long long>(s.n), secs);
    if (!opt.answers_dir.empty()) {
      AtomicFile f(opt.answers_dir + "/" + name + ".answers.jsonl");
      for (size_t i = 0; i < test.size(); ++i)
        f.write(
            (infill ? nlohmann::json{{"answer", answers[i]}} : nlohmann::json{{"label", labels[i]}})
                .dump() +
            "\n");
      f.close();
    }
    scores.emplace_back(name, std::move(s));
  }
  std::vector<CallGraph> prior;
  for (const std::string& p : opt.prior_corpora)
    for_each_graph(p, CsvMode::kClean, [&](CallGraph&& g) { prior.push_back(std::move(g)); });
  scores.emplace_back("frequency baseline", frequency_baseline_score(records, prior, opt.limit));
  nlohmann::json res = task_results(records, scores);
  res["n_test"] = test.size();
  return res;
}

}  // namespace tracelm
