#include "train/trainer.h"

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "encode/condition_stats.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "generate/layer_constraint.h"
#include "ingest/ingest.h"
#include "io/atomic_file.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "model/device.h"
#include "model/run_dir.h"
#include "model/safetensors.h"
#include "stats/stats.h"
#include "stats/trained_stats.h"
#include "tokenizer/tokenizer.h"
#include "util/progress.h"

namespace tracelm {

namespace {

constexpr int64_t kIgnore = -100;

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

// Mean loss per target over `val`, in micro-batches; with `sync`, rank r
// computes micro-batches r, r + W, ... and the sums are added over the ranks.
double eval_loss(Llama& model, const std::vector<Sequence>& val, int64_t micro,
                 const torch::Device& dev, GradientSync* sync) {
  if (val.empty()) return 0;
  torch::NoGradGuard ng;
  bool was = model->is_training();
  model->eval();
  int rank = sync ? sync->rank() : 0, world = sync ? sync->world_size() : 1;
  double sum = 0;
  int64_t count = 0, k = 0;
  for (size_t i = 0; i < val.size(); i += static_cast<size_t>(micro), ++k) {
    if (k % world != rank) continue;
    auto [x, y] = collate(val, i, std::min(val.size(), i + static_cast<size_t>(micro)));
    y = y.to(dev);
    torch::Tensor logits = model->forward(x);  // (n,T,V)
    torch::Tensor l = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), y.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(
            torch::kSum));
    sum += l.item<double>();
    count += y.ne(kIgnore).sum().item<int64_t>();
  }
  if (sync) {
    std::vector<torch::Tensor> t = {
        torch::tensor({sum, static_cast<double>(count)}, torch::kFloat64)};
    sync->all_reduce_sum(t);
    sum = t[0][0].item<double>();
    count = static_cast<int64_t>(t[0][1].item<double>());
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
    torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
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

double cosine_lr(int64_t step, const Schedule& s) {
  if (step < s.warmup)
    return s.peak * static_cast<double>(step + 1) / static_cast<double>(s.warmup);
  double p = static_cast<double>(step - s.warmup) /
             static_cast<double>(std::max<int64_t>(1, s.steps - s.warmup));
  double cos = 0.5 * (1 + std::cos(M_PI * std::min(1.0, p)));
  return s.peak * (s.min_ratio + (1 - s.min_ratio) * cos);
}

namespace {

// The generator dropout draws from on `dev` (a handle: set_state changes it).
at::Generator device_generator(const torch::Device& dev) {
  return at::globalContext().defaultGenerator(dev);
}

}  // namespace

void save_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& opt,
                     const TrainState& state) {
  namespace fs = std::filesystem;
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  torch::Device dev = model_device(model);
  save_tensors(tmp + "/weights.safetensors", trainable(model));
  torch::save(opt, tmp + "/optimizer.pt");
  torch::save(device_generator(dev).get_state(), tmp + "/rng.pt");
  nlohmann::json st = {{"step", state.step},
                       {"epoch", state.epoch},
                       {"cursor", state.cursor},
                       {"total_steps", state.total},
                       {"schedule_steps", state.schedule.steps},
                       {"schedule_fitted", state.schedule_fitted},
                       {"warmup_steps", state.schedule.warmup},
                       {"first_val_loss", state.first_val_loss},
                       {"rng_device", dev.is_cuda() ? "cuda" : "cpu"}};
  AtomicFile f(tmp + "/state.json");
  f.write(st.dump(2));
  f.close();
  std::error_code ec;
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir, ec);
  if (ec) throw std::runtime_error("cannot write " + dir + ": " + ec.message());
  fs::remove_all(old);
}

bool load_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& opt,
                     TrainState* state) {
  if (!file_exists(dir + "/state.json")) return false;
  nlohmann::json st = read_json_file(dir + "/state.json");
  state->step = st.at("step").get<int64_t>();
  state->epoch = st.at("epoch").get<int64_t>();
  state->cursor = st.at("cursor").get<int64_t>();
  state->total = st.value("total_steps", state->total);
  state->first_val_loss = st.value("first_val_loss", 0.0);
  state->schedule_fitted = st.value("schedule_fitted", false);
  if (state->schedule_fitted) {  // else the caller's (recomputed) schedule stands
    state->schedule.steps = st.at("schedule_steps").get<int64_t>();
    state->schedule.warmup = st.value("warmup_steps", state->schedule.warmup);
  }
  torch::Device dev = model_device(model);
  load_tensors(dir + "/weights.safetensors", model);
  torch::load(opt, dir + "/optimizer.pt", dev);
  std::string rng_device = st.value("rng_device", "cpu");
  if (rng_device == (dev.is_cuda() ? "cuda" : "cpu")) {
    torch::Tensor rng_state;
    torch::load(rng_state, dir + "/rng.pt");
    device_generator(dev).set_state(rng_state);
  } else {
    std::fprintf(stderr,
                 "train: warning: the checkpoint's random state is from a %s; dropout draws "
                 "afresh on this device\n",
                 rng_device.c_str());
    torch::manual_seed(static_cast<uint64_t>(state->step) * 1000003ull + 1);
  }
  return true;
}

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
                            const std::function<void(AtomicFile&)>& write_text,
                            const std::vector<std::string>& extra_symbols) {
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
    for (const std::string& sym : extra_symbols)
      if (std::find(to.user_symbols.begin(), to.user_symbols.end(), sym) == to.user_symbols.end())
        to.user_symbols.push_back(sym);
    train_tokenizer(text_path, out + "/tokenizer.model", to);
    ::unlink(text_path.c_str());
    tok_path = out + "/tokenizer.model";
  }
  Tokenizer tok = Tokenizer::load(tok_path);
  if (tok_path != out + "/tokenizer.model") copy_file(tok_path, out + "/tokenizer.model");
  return tok;
}

// prepare_tokenizer() on rank 0 (the others wait and load its tokenizer.model).
Tokenizer shared_tokenizer(const TrainStart& start, const std::string& out, GradientSync* sync,
                           const std::function<void(AtomicFile&)>& write_text,
                           const std::vector<std::string>& extra_symbols = {}) {
  if (!sync) return prepare_tokenizer(start, out, write_text, extra_symbols);
  if (sync->rank() == 0) prepare_tokenizer(start, out, write_text, extra_symbols);
  sync->barrier();
  return Tokenizer::load(out + "/tokenizer.model");
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

// With --max-steps the epochs repeat until the steps are done.
constexpr int64_t kUnboundedEpochs = 1000000;

// Targets of a sequence: its tokens from loss_from on (collate's y != kIgnore).
int64_t count_targets(const Sequence& s) {
  int64_t n = static_cast<int64_t>(s.tokens.size()) - 1;
  return std::max<int64_t>(0, n - std::max<int64_t>(0, s.loss_from - 1));
}

// AdamW with weight decay on matrices only.
std::unique_ptr<torch::optim::AdamW> make_optimizer(Llama& model, const TrainConfig& cfg) {
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
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg.lr));
}

// Steps of the run: --max-steps, or the epochs' worth of global batches.
int64_t planned_steps(size_t sequences_per_epoch, const TrainConfig& cfg) {
  int64_t n = static_cast<int64_t>(sequences_per_epoch);
  int64_t per_epoch = std::max<int64_t>(1, n / cfg.batch + (n % cfg.batch ? 1 : 0));
  return cfg.max_steps > 0 ? cfg.max_steps : per_epoch * cfg.epochs;
}

// Rank 0's value, on every rank (the time budget is read from one clock).
double from_rank0(double mine, GradientSync* sync) {
  if (!sync) return mine;
  std::vector<torch::Tensor> t = {torch::tensor({sync->rank() == 0 ? mine : 0.0}, torch::kFloat64)};
  sync->broadcast(t, 0);
  return t[0].item<double>();
}

// Sums the trainable gradients, the loss and the token count over the ranks.
void reduce_gradients(const std::vector<torch::Tensor>& params, double* loss_sum, int64_t* tokens,
                      GradientSync* sync) {
  std::vector<torch::Tensor> ts;
  for (const torch::Tensor& p : params) {
    torch::Tensor q = p;  // a rank with no sequences this step has no gradient yet
    if (!q.grad().defined()) q.mutable_grad() = torch::zeros_like(q);
    ts.push_back(q.grad());
  }
  torch::Tensor sums = torch::tensor({*loss_sum, static_cast<double>(*tokens)}, torch::kFloat64);
  ts.push_back(sums);
  sync->all_reduce_sum(ts);
  *loss_sum = sums[0].item<double>();
  *tokens = static_cast<int64_t>(sums[1].item<double>());
}

// This rank's micro-batches of the global batch seqs[begin, end): its
// contiguous share, cut into micro_batch sequences; (n,T) each.
std::vector<std::pair<torch::Tensor, torch::Tensor>> local_micro_batches(
    const std::vector<Sequence>& seqs, size_t begin, size_t end, int rank, int world,
    int64_t micro_batch) {
  size_t share = (end - begin + static_cast<size_t>(world) - 1) / static_cast<size_t>(world);
  size_t lo = std::min(end, begin + static_cast<size_t>(rank) * share);
  size_t hi = std::min(end, lo + share);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> micro;
  for (size_t i = lo; i < hi; i += static_cast<size_t>(micro_batch))
    micro.push_back(collate(seqs, i, std::min(hi, i + static_cast<size_t>(micro_batch))));
  return micro;
}

struct StepOutcome {
  double loss = 0;       // mean over the global batch's targets
  double grad_norm = 0;  // before clipping
  int64_t tokens = 0;    // input tokens of the global batch (padding included)
};

// One optimizer step at learning rate `lr`: forward and backward of the
// micro-batches (each loss weighted by the global batch's `targets`), the
// gradients summed over the ranks, clipping, AdamW.
StepOutcome optimizer_step(Llama& model, torch::optim::AdamW& opt,
                           const std::vector<torch::Tensor>& params,
                           const std::vector<std::pair<torch::Tensor, torch::Tensor>>& micro,
                           int64_t targets, double lr, const torch::Device& dev,
                           const TrainConfig& cfg) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  opt.zero_grad();
  double loss_sum = 0;
  int64_t tokens = 0;
  for (auto& [x, y] : micro) {
    torch::Tensor logits = model->forward(x);  // (n,T,V) float32
    torch::Tensor l = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), y.to(dev).reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(
            torch::kSum));
    (l / static_cast<double>(std::max<int64_t>(1, targets))).backward();
    loss_sum += l.item<double>();
    tokens += x.numel();
  }
  if (cfg.sync) reduce_gradients(params, &loss_sum, &tokens, cfg.sync);
  StepOutcome out;
  out.grad_norm = torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
  opt.step();
  out.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, targets));
  out.tokens = tokens;
  return out;
}

// The training loop; writes checkpoints, metrics and the model (not stats.json).
TrainResult run_training(Llama& model, bool use_lora, const TrainData& data,
                         const TrainData& val_data, const TrainStart& start, const TrainConfig& cfg,
                         const std::string& out, bool resume) {
  GradientSync* sync = cfg.sync;
  const int rank = sync ? sync->rank() : 0, world = sync ? sync->world_size() : 1;
  const bool lead = rank == 0;  // logs, checkpoints, writes the model
  const torch::Device dev = parse_device(cfg.device);
  place_model(model, dev, /*training=*/true);
  std::vector<Sequence> val_seqs = val_data.epoch(cfg.seed ^ 0x5eedull, 0);
  if (val_seqs.size() > 64) val_seqs.resize(64);
  std::unique_ptr<torch::optim::AdamW> opt = make_optimizer(model, cfg);
  std::vector<torch::Tensor> params;
  for (auto& [name, p] : trainable(model)) params.push_back(p);

  std::vector<Sequence> seqs = data.epoch(cfg.seed, 0);
  TrainState st;
  st.total = planned_steps(seqs.size(), cfg);
  // The cosine's length: total, or fitted to the time budget (see
  // time_fitted_steps) once kScheduleFitStep steps are timed.
  st.schedule = {cfg.lr, cfg.min_lr_ratio,
                 std::min<int64_t>(cfg.warmup, std::max<int64_t>(1, st.total / 10)), st.total};
  const int64_t total = st.total;
  bool fitted = cfg.time_budget_s <= 0;
  const std::string ckpt = out + "/checkpoint";
  TrainResult res;
  res.output_dir = out;
  int64_t first_step = 0;  // of this run (a resumed run times only its own steps)
  if (resume && load_checkpoint(ckpt, model, *opt, &st)) {
    st.total = total;
    fitted = fitted || (st.schedule_fitted && !cfg.refit_schedule);
    first_step = st.step;
    res.first_val_loss = st.first_val_loss;
    if (st.epoch != 0) seqs = data.epoch(cfg.seed, st.epoch);
    if (cfg.progress && lead)
      std::fprintf(stderr, "train: resuming at step %lld\n", static_cast<long long>(st.step));
  } else {
    torch::manual_seed(cfg.seed);
    if (lead) {
      AtomicFile m(out + "/metrics.jsonl");
      m.close();
    }
    res.first_val_loss = st.first_val_loss = eval_loss(model, val_seqs, cfg.micro_batch, dev, sync);
  }
  if (sync) {
    // Dropout: each rank its own stream; every rank starts from rank 0's weights.
    if (rank > 0)
      torch::manual_seed(cfg.seed + 7919ull * static_cast<uint64_t>(rank) +
                         static_cast<uint64_t>(st.step));
    sync->broadcast(params, 0);
  }
  auto checkpoint = [&] {
    st.schedule_fitted = fitted && cfg.time_budget_s > 0;
    if (lead) save_checkpoint(ckpt, model, *opt, st);
  };

  model->train();
  std::ofstream metrics;
  if (lead) metrics.open(out + "/metrics.jsonl", std::ios::app);
  Progress progress("train", static_cast<uint64_t>(st.schedule.steps), cfg.progress && lead,
                    "steps");
  progress.set_start(static_cast<uint64_t>(first_step));
  auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  int64_t tokens = 0;
  double loss_ema = 0;
  while (st.step < st.total && st.epoch < cfg.epochs + (cfg.max_steps > 0 ? kUnboundedEpochs : 0)) {
    if (cfg.stop_after > 0 && st.step >= cfg.stop_after) break;
    double elapsed = cfg.time_budget_s > 0 ? from_rank0(seconds(), sync) : 0;
    if (cfg.time_budget_s > 0 && elapsed > cfg.time_budget_s) break;
    if (st.cursor >= static_cast<int64_t>(seqs.size())) {
      ++st.epoch;
      st.cursor = 0;
      seqs = data.epoch(cfg.seed, st.epoch);
      if (cfg.max_steps == 0 && st.epoch >= cfg.epochs) break;
    }
    // The global batch [begin, end) (this rank computes its share of it).
    size_t begin = static_cast<size_t>(st.cursor);
    size_t end = std::min(seqs.size(), begin + static_cast<size_t>(cfg.batch));
    st.cursor = static_cast<int64_t>(end);
    int64_t targets = 0;  // of the global batch, to weight the micro-batches
    for (size_t i = begin; i < end; ++i) targets += count_targets(seqs[i]);
    auto micro = local_micro_batches(seqs, begin, end, rank, world, cfg.micro_batch);
    if (!fitted && st.step - first_step >= kScheduleFitStep) {
      st.schedule.steps =
          first_step + time_fitted_steps(st.total - first_step, st.step - first_step, elapsed,
                                         cfg.time_budget_s);
      st.schedule.warmup =
          std::min<int64_t>(st.schedule.warmup, std::max<int64_t>(1, st.schedule.steps / 10));
      fitted = true;
      progress.set_total(static_cast<uint64_t>(st.schedule.steps));  // % and ETA of the budget
    }
    double lr = cosine_lr(st.step, st.schedule);
    StepOutcome o = optimizer_step(model, *opt, params, micro, targets, lr, dev, cfg);
    ++st.step;
    tokens += o.tokens;
    double loss = o.loss, gnorm = o.grad_norm;
    loss_ema = st.step == 1 ? loss : 0.9 * loss_ema + 0.1 * loss;
    res.final_loss = loss;
    double el = seconds();
    res.tokens_per_s = el > 0 ? static_cast<double>(tokens) / el : 0;
    bool eval_now = cfg.eval_every > 0 && st.step % cfg.eval_every == 0;
    nlohmann::json m = {{"step", st.step},
                        {"epoch", st.epoch},
                        {"loss", loss},
                        {"lr", lr},
                        {"grad_norm", gnorm},
                        {"tokens", tokens},
                        {"tokens_per_s", res.tokens_per_s}};
    if (eval_now)
      m["val_loss"] = res.final_val_loss = eval_loss(model, val_seqs, cfg.micro_batch, dev, sync);
    if (lead && (eval_now || st.step % std::max<int64_t>(1, cfg.log_every) == 0 || st.step == 1))
      metrics << m.dump() << "\n" << std::flush;
    progress.update(static_cast<uint64_t>(st.step), 0,
                    fmt::format("loss {:.4f}, {:.0f} tok/s", loss_ema, res.tokens_per_s));
    if (cfg.save_every > 0 && st.step % cfg.save_every == 0) checkpoint();
  }
  progress.finish();
  res.steps = st.step;
  res.final_val_loss = eval_loss(model, val_seqs, cfg.micro_batch, dev, sync);
  if (lead) {
    metrics << nlohmann::json({{"step", st.step}, {"val_loss", res.final_val_loss}}).dump() << "\n";
    checkpoint();
    // The model for generation.
    if (use_lora) {
      save_lora(model, cfg.lora_config, out, start.base_dir);
    } else {
      save_llama(model, out);
    }
  }
  return res;
}

}  // namespace

std::vector<std::string> name_symbols(const std::vector<CallGraph>& graphs, int64_t n) {
  if (n <= 0) return {};
  std::map<std::string, uint64_t> count;
  for (const CallGraph& g : graphs)
    for (const Edge& e : g.edges)
      if (is_known_callee_name(e.callee)) ++count[e.callee];
  std::vector<std::pair<std::string, uint64_t>> by(count.begin(), count.end());
  std::stable_sort(by.begin(), by.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (static_cast<int64_t>(by.size()) > n) by.resize(static_cast<size_t>(n));
  std::vector<std::string> out;
  for (const auto& [name, c] : by) {
    out.push_back(name);
    out.push_back(" " + name);
  }
  return out;
}

TrainResult train_model(const std::vector<CallGraph>& train, const std::vector<CallGraph>& val,
                        const TrainStart& start, const TrainConfig& cfg, const std::string& out,
                        bool resume) {
  if (train.empty()) throw std::invalid_argument("no training graphs");
  parse_device(cfg.device);  // a device that is not there fails before any work
  retain_freed_memory();
  ::mkdir(out.c_str(), 0755);
  Tokenizer tok = shared_tokenizer(
      start, out, cfg.sync,
      [&](AtomicFile& f) {
        Rng rng(cfg.seed);
        for (const CallGraph& g : train) {
          f.write(cfg.format == "tabular" ? encode_tabular(g, {}, rng)
                                          : encode_recursive(g, {}, rng));
          for (const InstructionSample& s : encode_instruction(g, nullptr, {}, rng))
            f.write(s.question + s.answer);
          if (&g - train.data() > 20000) break;
        }
      },
      name_symbols(train, start.name_tokens));
  bool use_lora = false;
  Llama model = prepare_model(start, cfg, tok, &use_lora);
  ConditionStats stats;
  for (const CallGraph& g : train) stats.add(g);
  stats.finalize();
  TrainData data(train, &stats, tok, cfg);
  TrainData val_data(val, &stats, tok, cfg);
  TrainResult res = run_training(model, use_lora, data, val_data, start, cfg, out, resume);
  if (!cfg.sync || cfg.sync->rank() == 0) TrainedStats::of(train).save(run_dir::stats(out));
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
  parse_device(cfg.device);  // a device that is not there fails before any work
  retain_freed_memory();
  ::mkdir(out.c_str(), 0755);
  Tokenizer tok = shared_tokenizer(start, out, cfg.sync, [&](AtomicFile& f) {
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
  if (cfg.sync && cfg.sync->rank() != 0) {
    // rank 0 writes stats.json
  } else if (!corpus.empty()) {
    TrainedStats::of(corpus).save(stats_path);
  } else if (!train.decoded.empty()) {
    std::fprintf(stderr,
                 "train: warning: stats.json is computed from the %zu graphs decoded from the "
                 "text (a graph the text repeats counts as often; attributes the text dropped "
                 "are recomputed from the edges); pass --corpus for the corpus statistics\n",
                 train.decoded.size());
    TrainedStats::of(train.decoded).save(stats_path);
  } else if (!start.adapter_dir.empty() && file_exists(start.adapter_dir + "/stats.json")) {
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
