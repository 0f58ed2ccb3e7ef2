#include "train/trainer.h"

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "corpus/corpus.h"
#include "encode/condition_stats.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "ingest/ingest.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "model/run_dir.h"
#include "model/safetensors.h"
#include "stats/stats.h"
#include "stats/trained_stats.h"
#include "tokenizer/tokenizer.h"
#include "util/progress.h"

namespace tracelm {

namespace {

constexpr int64_t kIgnore = -100;

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) throw InputError(from, 0, "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  AtomicFile out(to);
  out.write(ss.str());
  out.close();
}

using Sequence = TrainSequence;

// Lines of `text` ("\n"-terminated, the last one possibly not).
size_t line_of(std::string_view text, size_t offset) {
  return 1 + static_cast<size_t>(
                 std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n'));
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

std::string with_newline(std::string_view s) {
  std::string out(s);
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

// Splits text at every line that starts with `head`; the text before the
// first such line must be blank.
std::vector<std::string_view> split_records(std::string_view text, std::string_view head,
                                            const std::string& name) {
  std::vector<std::string_view> out;
  size_t start = std::string_view::npos;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    if (text.substr(pos, head.size()) == head) {
      if (start != std::string_view::npos) out.push_back(text.substr(start, pos - start));
      start = pos;
    } else if (start == std::string_view::npos && !blank(text.substr(pos, end - pos))) {
      throw InputError(name, line_of(text, pos),
                       "expected a record starting with '" + std::string(head) + "'");
    }
    pos = end;
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start));
  return out;
}

}  // namespace

EncodedText parse_encoded_text(std::string_view text, const std::string& name) {
  EncodedText out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) throw InputError(name, 0, "no records (empty text)");
  std::string_view rest = text.substr(first);
  if (rest.starts_with("{"))
    throw InputError(name, line_of(text, first),
                     "JSON Lines: train on the plain text (tracelm encode without --jsonl)");
  auto fail = [&](std::string_view rec, const ParseError& e) {
    size_t off = static_cast<size_t>(rec.data() - text.data()) + e.offset;
    throw InputError(name, line_of(text, off), e.what);
  };
  // What follows the record must be blank.
  auto check_end = [&](std::string_view rec, size_t consumed, const char* what) {
    if (consumed < rec.size() && !blank(rec.substr(consumed)))
      throw InputError(name,
                       line_of(text, static_cast<size_t>(rec.data() - text.data()) + consumed),
                       std::string("unexpected text after the end of ") + what);
  };
  if (rest.starts_with("### Question:")) {
    out.format = "instruction";
    for (std::string_view rec : split_records(text, "### Question:", name)) {
      ParsedInstruction p;
      ParseError err;
      size_t consumed = 0;
      if (!parse_instruction(rec, &p, &err, &consumed)) fail(rec, err);
      check_end(rec, consumed, "the sample");
      // The question runs to the end of the " ### Answer: " line.
      size_t head = rec.find("\n ### Answer:");
      size_t nl = head == std::string_view::npos ? head : rec.find('\n', head + 1);
      if (nl == std::string_view::npos || nl >= consumed)
        fail(rec, ParseError{"expected ' ### Answer: '", 0});
      out.samples.push_back({std::string(rec.substr(0, nl + 1)),
                             with_newline(rec.substr(nl + 1, consumed - nl - 1))});
    }
    return out;
  }
  if (!rest.starts_with(kGenerateGraph))
    throw InputError(name, line_of(text, first),
                     "expected '[GENERATE GRAPH]' (recursive, tabular) or '### Question:' "
                     "(instruction)");
  size_t nl = rest.find('\n');
  std::string_view second = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
  out.format = second.starts_with("<edges>") ? "tabular" : "recursive";
  for (std::string_view rec : split_records(text, kGenerateGraph, name)) {
    ParseError err;
    size_t consumed = 0;
    if (out.format == "tabular") {
      TabularGraph g;
      if (!decode_tabular(rec, &g, &err, &consumed)) fail(rec, err);
      check_end(rec, consumed, "the graph");
      out.graphs.push_back({with_newline(rec.substr(0, consumed))});
      out.decoded.push_back(std::move(g.graph));
      continue;
    }
    CallGraph g;
    if (!decode_recursive(rec, &g, &err, &consumed)) fail(rec, err);
    check_end(rec, consumed, "the graph");
    // Units: a condition line, then a body ending with </layer> or </split>.
    std::vector<std::string> units;
    std::string_view body = rec.substr(0, consumed);
    size_t start = 0;
    for (size_t pos = 0; pos < body.size();) {
      size_t e = body.find('\n', pos);
      size_t end = e == std::string_view::npos ? body.size() : e + 1;
      std::string_view line = body.substr(pos, end - pos);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
      if (line == "</layer>" || line == "</split>") {
        units.push_back(with_newline(body.substr(start, end - start)));
        start = end;
      }
      pos = end;
    }
    out.graphs.push_back(std::move(units));
    out.decoded.push_back(std::move(g));
  }
  return out;
}

EncodedText read_encoded_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, 0, "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_encoded_text(ss.str(), path);
}

TrainData::TrainData(const std::vector<CallGraph>& graphs, const ConditionStats* stats,
                     const Tokenizer& tok, const TrainConfig& cfg)
    : graphs_(&graphs), tok_(tok), cfg_(cfg), stats_(stats) {
  if (cfg.stage == "instruct") {
    for (size_t i = 0; i < graphs.size(); ++i)
      if (is_validation(graphs[i].trace_id.empty() ? std::to_string(i) : graphs[i].trace_id,
                        cfg.instruction_fraction))
        chosen_.push_back(i);
    if (chosen_.empty() && !graphs.empty()) chosen_.push_back(0);
  } else {
    for (size_t i = 0; i < graphs.size(); ++i) chosen_.push_back(i);
  }
}

TrainData::TrainData(const EncodedText& text, const Tokenizer& tok, const TrainConfig& cfg)
    : text_(&text), tok_(tok), cfg_(cfg) {
  bool instruct = cfg.stage == "instruct";
  if (!text.format.empty() && instruct != (text.format == "instruction"))
    throw std::invalid_argument(
        instruct ? "--stage instruct needs instruction text (tracelm encode --format instruction)"
                 : "pre-training needs recursive or tabular text, not instruction samples");
  size_t n = instruct ? text.samples.size() : text.graphs.size();
  for (size_t i = 0; i < n; ++i) chosen_.push_back(i);
}

std::vector<Sequence> TrainData::epoch(uint64_t seed, int64_t epoch) const {
  Rng rng(seed * 1000003ull + static_cast<uint64_t>(epoch) * 7919ull + 17);
  std::vector<size_t> order = chosen_;
  rng.shuffle(order.begin(), order.end());
  std::vector<Sequence> out;
  int bos = tok_.bos_id(), eos = tok_.eos_id();
  if (cfg_.stage == "instruct") {
    auto add = [&](const InstructionSample& s) {
      Sequence seq;
      std::vector<int> q = tok_.encode(s.question, true, false);
      std::vector<int> a = tok_.encode(s.answer, false, true);
      seq.tokens.assign(q.begin(), q.end());
      seq.tokens.insert(seq.tokens.end(), a.begin(), a.end());
      seq.loss_from = static_cast<int32_t>(q.size());
      if (static_cast<int64_t>(seq.tokens.size()) > cfg_.context + 1)
        seq.tokens.resize(static_cast<size_t>(cfg_.context + 1));
      if (seq.loss_from < static_cast<int32_t>(seq.tokens.size())) out.push_back(std::move(seq));
    };
    InstructionOptions io;
    io.recursive = {cfg_.shuffle, cfg_.p_drop, cfg_.p_drop_latency};
    for (size_t gi : order) {
      if (text_) {
        add(text_->samples[gi]);
      } else {
        for (const InstructionSample& s : encode_instruction((*graphs_)[gi], stats_, io, rng))
          add(s);
      }
    }
    rng.shuffle(out.begin(), out.end());
    return out;
  }
  // Pre-training: every record is BOS text EOS, its own sequence (cut into
  // context + 1 windows when longer), so that nothing attends across
  // records. Recursive: a record is one unit (condition line + layer),
  // tokenized on its own, exactly as generation prompts and reads it (a
  // layer is generated from its conditions alone).
  size_t w = static_cast<size_t>(cfg_.context);
  auto add = [&](const std::string& text) {
    std::vector<int32_t> t;
    t.push_back(bos);
    for (int id : tok_.encode(text, false, false)) t.push_back(id);
    t.push_back(eos);
    for (size_t i = 0; i + 1 < t.size(); i += w) {
      Sequence seq;
      seq.tokens.assign(t.begin() + static_cast<long>(i),
                        t.begin() + static_cast<long>(std::min(t.size(), i + w + 1)));
      out.push_back(std::move(seq));
    }
  };
  for (size_t gi : order) {
    if (text_) {
      for (const std::string& r : text_->graphs[gi]) add(r);
    } else if (cfg_.format == "tabular") {
      add(encode_tabular((*graphs_)[gi], {cfg_.shuffle, cfg_.p_drop}, rng));
    } else {
      for (const std::string& u : encode_recursive_units(
               (*graphs_)[gi], {cfg_.shuffle, cfg_.p_drop, cfg_.p_drop_latency}, rng))
        add(u);
    }
  }
  return out;
}

namespace {

// (x, y) of a micro-batch: (n, T) int64, y = kIgnore where there is no target.
std::pair<torch::Tensor, torch::Tensor> collate(const std::vector<Sequence>& seqs, size_t begin,
                                                size_t end) {
  int64_t T = 0;
  for (size_t i = begin; i < end; ++i)
    T = std::max<int64_t>(T, static_cast<int64_t>(seqs[i].tokens.size()) - 1);
  int64_t n = static_cast<int64_t>(end - begin);
  torch::Tensor x = torch::zeros({n, T}, torch::kInt64);
  torch::Tensor y = torch::full({n, T}, kIgnore, torch::kInt64);
  auto xa = x.accessor<int64_t, 2>();
  auto ya = y.accessor<int64_t, 2>();
  for (int64_t r = 0; r < n; ++r) {
    const Sequence& s = seqs[begin + static_cast<size_t>(r)];
    for (size_t t = 0; t + 1 < s.tokens.size(); ++t) {
      xa[r][static_cast<int64_t>(t)] = s.tokens[t];
      if (static_cast<int32_t>(t + 1) >= s.loss_from)
        ya[r][static_cast<int64_t>(t)] = s.tokens[t + 1];
    }
  }
  return {x, y};
}

double eval_loss(Llama& model, const std::vector<Sequence>& val, int64_t micro) {
  if (val.empty()) return 0;
  torch::NoGradGuard ng;
  bool was = model->is_training();
  model->eval();
  double sum = 0;
  int64_t count = 0;
  for (size_t i = 0; i < val.size(); i += static_cast<size_t>(micro)) {
    auto [x, y] = collate(val, i, std::min(val.size(), i + static_cast<size_t>(micro)));
    torch::Tensor logits = model->forward(x);  // (n,T,V)
    torch::Tensor l = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), y.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(
            torch::kSum));
    sum += l.item<double>();
    count += y.ne(kIgnore).sum().item<int64_t>();
  }
  model->train(was);
  return count ? sum / static_cast<double>(count) : 0;
}

// Trainable parameters by name (what a checkpoint holds).
std::vector<std::pair<std::string, torch::Tensor>> trainable(Llama& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m->named_parameters())
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

void save_tensors(const std::string& path,
                  const std::vector<std::pair<std::string, torch::Tensor>>& ts) {
  std::vector<torch::Tensor> keep;
  std::vector<TensorData> data;
  for (auto& [name, t] : ts) {
    torch::Tensor c = t.detach().contiguous();
    keep.push_back(c);
    data.push_back({name, "F32", std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
                    c.data_ptr<float>(), static_cast<size_t>(c.numel()) * sizeof(float)});
  }
  write_safetensors(path, data);
}

void load_tensors(const std::string& path, Llama& m) {
  SafetensorsFile st(path);
  torch::NoGradGuard ng;
  for (auto& [name, t] : trainable(m)) {
    if (!st.has(name)) throw InputError(path, 0, "checkpoint lacks \"" + name + "\"");
    TensorView v = st.get(name);
    torch::Tensor dst = torch::empty(t.sizes(), torch::kFloat32);
    if (v.numel() != dst.numel())
      throw InputError(path, 0, "checkpoint tensor \"" + name + "\" has the wrong size");
    to_float32(v, dst.data_ptr<float>());
    t.copy_(dst);
  }
}

}  // namespace

void retain_freed_memory() {
  mallopt(M_MMAP_MAX, 0);  // never mmap (glibc still does when a heap cannot grow)
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

int64_t time_fitted_steps(int64_t total, int64_t step, double elapsed_s, double budget_s) {
  if (budget_s <= 0 || step <= 0 || elapsed_s <= 0) return total;
  double per_step = elapsed_s / static_cast<double>(step);
  double more = std::max(0.0, budget_s - elapsed_s) / per_step;
  int64_t est = step + static_cast<int64_t>(std::min(more, 1e15));
  return std::clamp<int64_t>(est, step + 1, std::max(total, step + 1));
}

TrainConfig quick_train_config(double seconds, uint64_t seed) {
  TrainConfig cfg;
  cfg.context = 256;
  cfg.batch = 16;
  cfg.micro_batch = 8;
  cfg.lr = 2e-3;
  cfg.warmup = 20;
  cfg.epochs = 1000;  // bounded by the time budget
  cfg.max_steps = 100000;
  cfg.time_budget_s = seconds;
  cfg.eval_every = 50;
  cfg.save_every = 200;
  cfg.seed = seed;
  return cfg;
}

LlamaConfig preset_config(const std::string& name, int64_t vocab_size, int64_t context) {
  LlamaConfig c;
  c.vocab_size = vocab_size;
  c.max_position_embeddings = std::max<int64_t>(context, 512);
  c.tie_word_embeddings = true;
  if (name == "tiny") {  // ~0.3 M parameters + embeddings
    c.hidden_size = 64, c.intermediate_size = 176, c.num_hidden_layers = 4;
    c.num_attention_heads = 4, c.num_key_value_heads = 2;
  } else if (name == "small") {  // ~3 M
    c.hidden_size = 192, c.intermediate_size = 512, c.num_hidden_layers = 6;
    c.num_attention_heads = 6, c.num_key_value_heads = 3;
  } else if (name == "base") {  // ~15 M
    c.hidden_size = 384, c.intermediate_size = 1024, c.num_hidden_layers = 8;
    c.num_attention_heads = 6, c.num_key_value_heads = 6;
  } else {
    throw std::invalid_argument("unknown preset \"" + name + "\" (tiny, small, base)");
  }
  return c;
}

namespace {

// The tokenizer of a run (copied into out as tokenizer.model): the base
// model's, the given one, or one trained on the text `write_text` writes.
Tokenizer prepare_tokenizer(const TrainStart& start, const std::string& out,
                            const std::function<void(AtomicFile&)>& write_text) {
  std::string tok_path;
  if (!start.base_dir.empty()) {
    tok_path = start.base_dir + "/tokenizer.model";
  } else if (!start.tokenizer.empty()) {
    tok_path = start.tokenizer;
  } else {
    // From scratch without a tokenizer: train one on the training text.
    std::string text_path = out + "/tokenizer-text.txt";
    {
      AtomicFile f(text_path);
      write_text(f);
      f.close();
    }
    TrainOptions to;
    to.vocab_size = 2048;
    train_tokenizer(text_path, out + "/tokenizer.model", to);
    ::unlink(text_path.c_str());
    tok_path = out + "/tokenizer.model";
  }
  Tokenizer tok = Tokenizer::load(tok_path);
  if (tok_path != out + "/tokenizer.model") copy_file(tok_path, out + "/tokenizer.model");
  return tok;
}

Llama prepare_model(const TrainStart& start, const TrainConfig& cfg, const Tokenizer& tok,
                    bool* use_lora) {
  Llama model(nullptr);
  *use_lora = false;
  if (!start.base_dir.empty()) {
    model = load_llama(start.base_dir);
    if (!start.adapter_dir.empty()) {
      load_lora(model, start.adapter_dir);
      *use_lora = true;
    } else if (cfg.lora) {
      add_lora(model, cfg.lora_config, cfg.seed);
      *use_lora = true;
    }
  } else if (!start.preset.empty()) {
    model = init_llama(preset_config(start.preset, tok.vocab_size(), cfg.context), cfg.seed);
  } else {
    throw std::invalid_argument("train: give a base model (--base) or a preset (--preset)");
  }
  if (tok.vocab_size() > model->config().vocab_size)
    throw std::invalid_argument("the tokenizer has more pieces than the model's vocabulary");
  if (cfg.context > model->config().max_position_embeddings)
    throw std::invalid_argument("context longer than the model's max_position_embeddings");
  return model;
}

// The training loop; writes checkpoints, metrics and the model (not stats.json).
TrainResult run_training(Llama& model, bool use_lora, const TrainData& data,
                         const TrainData& val_data, const TrainStart& start, const TrainConfig& cfg,
                         const std::string& out, bool resume) {
  std::vector<Sequence> val_seqs = val_data.epoch(cfg.seed ^ 0x5eedull, 0);
  if (val_seqs.size() > 64) val_seqs.resize(64);

  // Optimizer: weight decay on matrices only.
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& [name, p] : trainable(model)) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decay,
      std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(cfg.lr).betas({0.9, 0.95}).weight_decay(cfg.weight_decay)));
  groups.emplace_back(no_decay,
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(cfg.lr).betas({0.9, 0.95}).weight_decay(0.0)));
  torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(cfg.lr));

  // Schedule length from the first epoch's size.
  std::vector<Sequence> seqs = data.epoch(cfg.seed, 0);
  int64_t per_epoch =
      std::max<int64_t>(1, static_cast<int64_t>(seqs.size()) / cfg.batch +
                               (static_cast<int64_t>(seqs.size()) % cfg.batch ? 1 : 0));
  int64_t total = cfg.max_steps > 0 ? cfg.max_steps : per_epoch * cfg.epochs;
  // The cosine's length: total, or fitted to the time budget (see
  // time_fitted_steps) once kScheduleFitStep steps are timed.
  int64_t schedule = total;
  bool fitted = cfg.time_budget_s <= 0;
  int64_t warmup = std::min<int64_t>(cfg.warmup, std::max<int64_t>(1, total / 10));
  auto lr_at = [&](int64_t step) {
    if (step < warmup) return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
    double p = static_cast<double>(step - warmup) /
               static_cast<double>(std::max<int64_t>(1, schedule - warmup));
    double cos = 0.5 * (1 + std::cos(M_PI * std::min(1.0, p)));
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos);
  };

  // Resume.
  int64_t step = 0, epoch = 0, cursor = 0;
  std::string ckpt = out + "/checkpoint";
  TrainResult res;
  res.output_dir = out;
  if (resume && exists(ckpt + "/state.json")) {
    nlohmann::json st = read_json_file(ckpt + "/state.json");
    step = st.at("step").get<int64_t>();
    epoch = st.at("epoch").get<int64_t>();
    cursor = st.at("cursor").get<int64_t>();
    res.first_val_loss = st.value("first_val_loss", 0.0);
    if (st.value("schedule_fitted", false)) {
      schedule = st["schedule_steps"].get<int64_t>();
      warmup = st.value("warmup_steps", warmup);
      fitted = true;
    }
    load_tensors(ckpt + "/weights.safetensors", model);
    torch::load(opt, ckpt + "/optimizer.pt");
    torch::Tensor rng_state;
    torch::load(rng_state, ckpt + "/rng.pt");
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(rng_state);
    if (epoch != 0) seqs = data.epoch(cfg.seed, epoch);
    if (cfg.progress)
      std::fprintf(stderr, "train: resuming at step %lld\n", static_cast<long long>(step));
  } else {
    torch::manual_seed(cfg.seed);
    AtomicFile m(out + "/metrics.jsonl");
    m.close();
    res.first_val_loss = eval_loss(model, val_seqs, cfg.micro_batch);
  }

  auto checkpoint = [&]() {
    std::string tmp = ckpt + ".tmp";
    std::system(("rm -rf '" + tmp + "'").c_str());
    ::mkdir(tmp.c_str(), 0755);
    save_tensors(tmp + "/weights.safetensors", trainable(model));
    torch::save(opt, tmp + "/optimizer.pt");
    torch::save(at::detail::getDefaultCPUGenerator().get_state(), tmp + "/rng.pt");
    nlohmann::json st = {{"step", step},
                         {"epoch", epoch},
                         {"cursor", cursor},
                         {"total_steps", total},
                         {"schedule_steps", schedule},
                         {"schedule_fitted", fitted && cfg.time_budget_s > 0},
                         {"warmup_steps", warmup},
                         {"first_val_loss", res.first_val_loss}};
    AtomicFile f(tmp + "/state.json");
    f.write(st.dump(2));
    f.close();
    std::system(("rm -rf '" + ckpt + ".old'").c_str());
    if (exists(ckpt)) std::rename(ckpt.c_str(), (ckpt + ".old").c_str());
    if (std::rename(tmp.c_str(), ckpt.c_str()) != 0)
      throw std::runtime_error("cannot write " + ckpt);
    std::system(("rm -rf '" + ckpt + ".old'").c_str());
  };

  model->train();
  std::ofstream metrics(out + "/metrics.jsonl", std::ios::app);
  Progress progress("train", static_cast<uint64_t>(schedule), cfg.progress, "steps");
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  double loss_ema = 0;
  while (step < total && epoch < cfg.epochs + (cfg.max_steps > 0 ? 1000000 : 0)) {
    if (cfg.stop_after > 0 && step >= cfg.stop_after) break;
    if (cfg.time_budget_s > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >
            cfg.time_budget_s)
      break;
    if (cursor >= static_cast<int64_t>(seqs.size())) {
      ++epoch;
      cursor = 0;
      seqs = data.epoch(cfg.seed, epoch);
      if (cfg.max_steps == 0 && epoch >= cfg.epochs) break;
    }
    size_t begin = static_cast<size_t>(cursor);
    size_t end = std::min(seqs.size(), begin + static_cast<size_t>(cfg.batch));
    cursor = static_cast<int64_t>(end);
    // Targets in this step, to weight the micro-batches.
    int64_t targets = 0;
    std::vector<std::pair<torch::Tensor, torch::Tensor>> micro;
    for (size_t i = begin; i < end; i += static_cast<size_t>(cfg.micro_batch)) {
      micro.push_back(collate(seqs, i, std::min(end, i + static_cast<size_t>(cfg.micro_batch))));
      targets += micro.back().second.ne(kIgnore).sum().item<int64_t>();
    }
    if (!fitted && step >= kScheduleFitStep) {
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      schedule = time_fitted_steps(total, step, el, cfg.time_budget_s);
      warmup = std::min<int64_t>(warmup, std::max<int64_t>(1, schedule / 10));
      fitted = true;
      progress.set_total(static_cast<uint64_t>(schedule));  // % and ETA of the budgeted run
    }
    double lr = lr_at(step);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    double step_loss = 0;
    for (auto& [x, y] : micro) {
      torch::Tensor logits = model->forward(x);  // (n,T,V)
      torch::Tensor l = torch::nn::functional::cross_entropy(
          logits.reshape({-1, logits.size(-1)}), y.reshape({-1}),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(
              torch::kSum));
      (l / static_cast<double>(std::max<int64_t>(1, targets))).backward();
      step_loss += l.item<double>();
      tokens += x.numel();
    }
    std::vector<torch::Tensor> params;
    for (auto& [n, p] : trainable(model)) params.push_back(p);
    double gnorm = torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    opt.step();
    ++step;
    double loss = step_loss / static_cast<double>(std::max<int64_t>(1, targets));
    loss_ema = step == 1 ? loss : 0.9 * loss_ema + 0.1 * loss;
    res.final_loss = loss;
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.tokens_per_s = el > 0 ? static_cast<double>(tokens) / el : 0;
    bool eval_now = cfg.eval_every > 0 && step % cfg.eval_every == 0;
    nlohmann::json m = {{"step", step},
                        {"epoch", epoch},
                        {"loss", loss},
                        {"lr", lr},
                        {"grad_norm", gnorm},
                        {"tokens", tokens},
                        {"tokens_per_s", res.tokens_per_s}};
    if (eval_now) m["val_loss"] = res.final_val_loss = eval_loss(model, val_seqs, cfg.micro_batch);
    if (eval_now || step % std::max<int64_t>(1, cfg.log_every) == 0 || step == 1)
      metrics << m.dump() << "\n" << std::flush;
    progress.update(static_cast<uint64_t>(step), 0,
                    fmt::format("loss {:.4f}, {:.0f} tok/s", loss_ema, res.tokens_per_s));
    if (cfg.save_every > 0 && step % cfg.save_every == 0) checkpoint();
  }
  progress.finish();
  res.steps = step;
  res.final_val_loss = eval_loss(model, val_seqs, cfg.micro_batch);
  metrics << nlohmann::json({{"step", step}, {"val_loss", res.final_val_loss}}).dump() << "\n";
  checkpoint();
  // The model for generation.
  if (use_lora) {
    save_lora(model, cfg.lora_config, out, start.base_dir);
  } else {
    save_llama(model, out);
  }
  return res;
}

}  // namespace

TrainResult train_model(const std::vector<CallGraph>& train, const std::vector<CallGraph>& val,
                        const TrainStart& start, const TrainConfig& cfg, const std::string& out,
                        bool resume) {
  if (train.empty()) throw std::invalid_argument("no training graphs");
  retain_freed_memory();
  ::mkdir(out.c_str(), 0755);
  Tokenizer tok = prepare_tokenizer(start, out, [&](AtomicFile& f) {
    Rng rng(cfg.seed);
    for (const CallGraph& g : train) {
      f.write(cfg.format == "tabular" ? encode_tabular(g, {}, rng) : encode_recursive(g, {}, rng));
      for (const InstructionSample& s : encode_instruction(g, nullptr, {}, rng))
        f.write(s.question + s.answer);
      if (&g - train.data() > 20000) break;
    }
  });
  bool use_lora = false;
  Llama model = prepare_model(start, cfg, tok, &use_lora);
  ConditionStats stats;
  for (const CallGraph& g : train) stats.add(g);
  stats.finalize();
  TrainData data(train, &stats, tok, cfg);
  TrainData val_data(val, &stats, tok, cfg);
  TrainResult res = run_training(model, use_lora, data, val_data, start, cfg, out, resume);
  TrainedStats::of(train).save(run_dir::stats(out));
  return res;
}

TrainResult train_model(const EncodedText& train, const EncodedText& val,
                        const std::vector<CallGraph>& corpus, const TrainStart& start,
                        const TrainConfig& cfg_in, const std::string& out, bool resume) {
  bool instruct = cfg_in.stage == "instruct";
  if (instruct ? train.samples.empty() : train.graphs.empty())
    throw std::invalid_argument("no training records in the text");
  if (!val.format.empty() && val.format != train.format)
    throw std::invalid_argument("the validation text is " + val.format + ", the training text " +
                                train.format);
  TrainConfig cfg = cfg_in;
  if (!instruct) cfg.format = train.format;
  retain_freed_memory();
  ::mkdir(out.c_str(), 0755);
  Tokenizer tok = prepare_tokenizer(start, out, [&](AtomicFile& f) {
    if (!corpus.empty()) {  // as on the fly: both encodings, so instruct can follow
      Rng rng(cfg.seed);
      for (size_t i = 0; i < corpus.size() && i <= 20000; ++i) {
        const CallGraph& g = corpus[i];
        f.write(cfg.format == "tabular" ? encode_tabular(g, {}, rng)
                                        : encode_recursive(g, {}, rng));
        for (const InstructionSample& s : encode_instruction(g, nullptr, {}, rng))
          f.write(s.question + s.answer);
      }
      return;
    }
    for (size_t i = 0; i < train.graphs.size() && i <= 20000; ++i)
      for (const std::string& r : train.graphs[i]) f.write(r);
    for (size_t i = 0; i < train.samples.size() && i <= 100000; ++i)
      f.write(train.samples[i].question + train.samples[i].answer);
  });
  bool use_lora = false;
  Llama model = prepare_model(start, cfg, tok, &use_lora);
  TrainData data(train, tok, cfg);
  TrainData val_data(val, tok, cfg);
  TrainResult res = run_training(model, use_lora, data, val_data, start, cfg, out, resume);
  std::string stats_path = out + "/stats.json";
  if (!corpus.empty()) {
    TrainedStats::of(corpus).save(stats_path);
  } else if (!train.decoded.empty()) {
    std::fprintf(stderr,
                 "train: warning: stats.json is computed from the %zu graphs decoded from the "
                 "text (a graph the text repeats counts as often; attributes the text dropped "
                 "are recomputed from the edges); pass --corpus for the corpus statistics\n",
                 train.decoded.size());
    TrainedStats::of(train.decoded).save(stats_path);
  } else if (!start.adapter_dir.empty() && exists(start.adapter_dir + "/stats.json")) {
    std::fprintf(stderr,
                 "train: warning: instruction text carries no corpus statistics; stats.json is "
                 "copied from the adapter %s (pass --corpus to compute it)\n",
                 start.adapter_dir.c_str());
    copy_file(start.adapter_dir + "/stats.json", stats_path);
  } else {
    std::fprintf(stderr,
                 "train: warning: instruction text carries no corpus statistics and no --corpus "
                 "was given: stats.json is empty, so generation cannot draw services, sizes or "
                 "rare calls from it\n");
    AtomicFile f(stats_path);
    f.write("{}\n");
    f.close();
  }
  return res;
}

}  // namespace tracelm
