#include "generate/generator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/validate.h"
#include "encode/instruction.h"
#include "encode/tabular.h"
#include "generate/constraint_sampler.h"
#include "generate/instruction_constraint.h"
#include "generate/jump_forward.h"
#include "io/atomic_file.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "model/cpu_decoder.h"
#include "model/run_dir.h"
#include "util/parallel.h"

namespace tracelm {

namespace {

// One sequence to decode.
struct SeqIn {
  std::string prompt;
  uint64_t seed = 0;
  std::unique_ptr<UnitConstraint> con;  // constrained decoding
  std::vector<std::string_view> stops;  // unconstrained: stop after these
  int64_t max_tokens = 0;               // token budget (constrained: >= con->max_length())
  size_t tag = 0;                       // the caller's handle
};
enum class SeqEnd { kDone, kStop, kDead, kBudget };
struct SeqOut {
  std::string text;
  int64_t tokens = 0;
  SeqEnd end = SeqEnd::kDone;
};

// A sequence in the batch.
struct Row {
  SeqIn in;
  std::unique_ptr<SamplerChain> chain;
  ConstraintSampler* grammar = nullptr;  // the chain's grammar (constrained decoding)
  int32_t slot = -1;                     // CPU engine: the sequence's slot
  // Tokens not yet fed to the model: the prompt (CPU engine), then the
  // sampled token and any tokens jump-forward appended after it.
  std::vector<int> feed;
  std::string text;
  int64_t next_pos = 0, tokens = 0;
};

// Pads a cache on the left to `len` columns (invalid, zero keys/values).
void pad_left(KVCache& c, int64_t len) {
  int64_t have = c.length();
  if (have >= len) return;
  int64_t add = len - have;
  for (size_t i = 0; i < c.k.size(); ++i) {
    auto pad = [&](const torch::Tensor& t) {
      auto sz = t.sizes().vec();
      sz[2] = add;
      return torch::cat({torch::zeros(sz, t.options()), t}, 2);
    };
    c.k[i] = pad(c.k[i]);
    c.v[i] = pad(c.v[i]);
  }
  int64_t B = c.positions.size(0);
  c.positions = torch::cat({torch::zeros({B, add}, c.positions.options()), c.positions}, 1);
  c.valid = torch::cat({torch::zeros({B, add}, c.valid.options()), c.valid}, 1);
}

// Appends the rows of `b` to `a` (aligning their lengths).
void append_rows(KVCache& a, KVCache& b) {
  if (a.length() == 0 && a.k.empty()) {
    a = std::move(b);
    return;
  }
  int64_t len = std::max(a.length(), b.length());
  pad_left(a, len);
  pad_left(b, len);
  for (size_t i = 0; i < a.k.size(); ++i) {
    a.k[i] = torch::cat({a.k[i], b.k[i]}, 0);
    a.v[i] = torch::cat({a.v[i], b.v[i]}, 0);
  }
  a.positions = torch::cat({a.positions, b.positions}, 0);
  a.valid = torch::cat({a.valid, b.valid}, 0);
}

// Keeps rows `idx` of the cache, then drops leading columns no row uses.
void keep_rows(KVCache& c, const std::vector<int64_t>& idx) {
  torch::Tensor sel = torch::tensor(idx, torch::kInt64).to(c.positions.device());
  for (size_t i = 0; i < c.k.size(); ++i) {
    c.k[i] = c.k[i].index_select(0, sel);
    c.v[i] = c.v[i].index_select(0, sel);
  }
  c.positions = c.positions.index_select(0, sel);
  c.valid = c.valid.index_select(0, sel);
  torch::Tensor used = c.valid.any(0).to(torch::kCPU);  // (L,)
  int64_t first = 0, L = used.size(0);
  auto u = used.accessor<bool, 1>();
  while (first < L && !u[first]) ++first;
  if (first > 0 && first < L) {
    for (size_t i = 0; i < c.k.size(); ++i) {
      c.k[i] = c.k[i].slice(2, first).contiguous();
      c.v[i] = c.v[i].slice(2, first).contiguous();
    }
    c.positions = c.positions.slice(1, first).contiguous();
    c.valid = c.valid.slice(1, first).contiguous();
  }
}

// The sequences of one generate() call, shared by decoding loops on several
// threads: the generator's `next` and `done` run under one lock. A loop
// with no rows of its own waits for work while another loop still has rows
// (finishing them may queue more, e.g. a layer's child units); when every
// loop is idle and nothing is queued, all of them stop.
class SharedWork {
 public:
  using Next = std::function<bool(SeqIn*)>;
  using Done = std::function<void(SeqIn&, SeqOut)>;
  SharedWork(const Next& next, const Done& done, size_t loops)
      : next_(next), done_(done), busy_(loops) {}

  // A sequence to decode; false when there is none now (a loop with rows,
  // idle = false) or none will come (an idle loop).
  bool next(SeqIn* in, bool idle) {
    std::unique_lock<std::mutex> lock(m_);
    if (!failed_ && next_(in)) return true;
    if (!idle) return false;
    --busy_;
    while (true) {
      if (busy_ == 0 || failed_) {
        cv_.notify_all();
        return false;
      }
      cv_.wait(lock);
      if (!failed_ && next_(in)) {
        ++busy_;
        return true;
      }
    }
  }
  void done(SeqIn& in, SeqOut out) {
    {
      std::lock_guard<std::mutex> lock(m_);
      done_(in, std::move(out));
    }
    cv_.notify_all();
  }
  // A loop failed (its exception is rethrown after all loops stop): the
  // others hand out no more work.
  void abandon() {
    {
      std::lock_guard<std::mutex> lock(m_);
      failed_ = true;
    }
    cv_.notify_all();
  }

 private:
  const Next& next_;
  const Done& done_;
  std::mutex m_;
  std::condition_variable cv_;
  size_t busy_;
  bool failed_ = false;
};

// Continuous-batching decoder over a model: one decoding loop, taking its
// sequences from `work`.
class Decoder {
 public:
  Decoder(Llama& model, const Tokenizer& tok, const GeneratorOptions& opt, GenerateStats& stats)
      : model_(model),
        tok_(tok),
        opt_(opt),
        stats_(stats),
        pieces_(tok.piece_texts()),
        forced_(tok) {}

  // Decodes every sequence of `next` (false when none is pending right
  // now), passing each result to `done`: on the CPU engine in
  // opt.decode_threads loops (each with its own batch and engine over
  // shared weights), else in one loop of the libtorch forward.
  static void decode_all(Llama& model, const Tokenizer& tok, const GeneratorOptions& opt,
                         GenerateStats& stats, const SharedWork::Next& next,
                         const SharedWork::Done& done) {
    bool cpu = opt.engine == GeneratorOptions::Engine::kCpu;
    if (opt.engine == GeneratorOptions::Engine::kAuto) {
      torch::Tensor w = model->model->embed_tokens->weight;
      cpu = w.device().is_cpu() && w.scalar_type() == torch::kFloat32;
    }
    if (cpu) {
      torch::NoGradGuard no_grad;
      size_t loops =
          opt.decode_threads > 0 ? static_cast<size_t>(opt.decode_threads) : default_threads();
      std::shared_ptr<const CpuDecoder::Weights> weights =
          CpuDecoder(model, opt.precision).shared_weights();
      SharedWork work(next, done, loops);
      std::vector<GenerateStats> part(loops);
      parallel_for(loops, loops, [&](size_t begin, size_t end) {
        for (size_t k = begin; k < end; ++k) {
          try {
            Decoder(model, tok, opt, part[k]).run_cpu(weights, work);
          } catch (...) {
            work.abandon();
            throw;
          }
        }
      });
      for (const GenerateStats& p : part) stats.add(p);
      return;
    }
    if (opt.precision != Precision::kF32)
      throw std::invalid_argument(
          "bf16 precision is the CPU engine's; this model runs on the torch engine (not fp32 on "
          "the CPU)");
    SharedWork work(next, done, 1);
    Decoder(model, tok, opt, stats).run_torch(work);
  }

 private:
  Row admit(SeqIn&& in) {
    Row r;
    SamplingParams p = opt_.sampling;
    p.seed = in.seed;
    r.chain = SamplerChain::from_params(p);
    if (in.con) {
      auto g = std::make_unique<ConstraintSampler>(std::move(in.con), pieces_,
                                                   &stats_.constraint_seconds);
      r.grammar = g.get();
      r.chain->set_grammar(std::move(g));
    }
    r.in = std::move(in);
    return r;
  }

  // Jump-forward: appends the unit's forced continuation to the row (text,
  // automaton, sampler history) and to the tokens to feed next.
  void jump(Row& r) {
    if (!r.grammar || !opt_.jump_forward) return;
    auto t0 = std::chrono::steady_clock::now();
    std::string forced = forced_text(r.grammar->unit());
    stats_.constraint_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (forced.empty()) return;
    for (int32_t t : forced_.tokenize(forced)) {
      if (r.tokens >= r.in.max_tokens) return;
      r.grammar->accept(t);
      r.chain->accept(t);
      r.text += pieces_[static_cast<size_t>(t)].text;
      ++r.tokens;
      ++stats_.forced_tokens;
      r.feed.push_back(t);
    }
  }

  // The CPU engine: every step is one CpuDecoder::forward over the new rows'
  // prompts and the other rows' last tokens.
  void run_cpu(std::shared_ptr<const CpuDecoder::Weights> weights, SharedWork& work) {
    torch::NoGradGuard no_grad;
    CpuDecoder eng(std::move(weights));
    const int64_t V = eng.vocab();
    std::vector<Row> rows;
    std::vector<CpuDecoder::Token> tokens;
    const size_t batch = static_cast<size_t>(std::max<int64_t>(1, opt_.batch));
    while (true) {
      while (rows.size() < batch) {
        SeqIn in;
        if (!work.next(&in, rows.empty())) break;
        Row r = admit(std::move(in));
        r.slot = eng.add_slot();
        r.feed = tok_.encode(r.in.prompt, true, false);
        stats_.prompt_tokens += static_cast<int64_t>(r.feed.size());
        jump(r);
        rows.push_back(std::move(r));
      }
      if (rows.empty()) break;
      tokens.clear();
      for (Row& r : rows) {
        for (size_t i = 0; i < r.feed.size(); ++i)
          tokens.push_back({r.slot, r.feed[i], i + 1 == r.feed.size()});
        r.feed.clear();
      }
      ++stats_.forward_calls;
      eng.forward(tokens);
      std::vector<Row> kept;
      for (size_t i = 0; i < rows.size(); ++i) {
        Row& r = rows[i];
        std::optional<SeqEnd> end = step(r, eng.logits(i), V);
        if (end) {
          ++stats_.sequences;
          stats_.tokens += r.tokens;
          eng.release(r.slot);
          work.done(r.in, SeqOut{std::move(r.text), r.tokens, *end});
        } else {
          kept.push_back(std::move(r));
        }
      }
      rows = std::move(kept);
    }
    stats_.model_seconds += eng.forward_seconds();
    stats_.matmul_seconds += eng.matmul_seconds();
  }

  void run_torch(SharedWork& work) {
    torch::NoGradGuard no_grad;
    int threads_before = torch::get_num_threads();
    if (opt_.threads > 0) torch::set_num_threads(opt_.threads);
    struct Restore {
      int n;
      ~Restore() { torch::set_num_threads(n); }
    } restore{threads_before};
    std::vector<Row> rows;
    KVCache cache;
    torch::Tensor last;  // (B, V) next-token logits of the rows
    int64_t batch = std::max<int64_t>(1, opt_.batch);
    while (true) {
      // Admit pending sequences into free slots.
      std::vector<Row> fresh;
      while (static_cast<int64_t>(rows.size() + fresh.size()) < batch) {
        SeqIn in;
        if (!work.next(&in, rows.empty() && fresh.empty())) break;
        fresh.push_back(admit(std::move(in)));
        jump(fresh.back());
      }
      if (!fresh.empty()) {
        KVCache part;
        torch::Tensor logits = prefill(fresh, part);
        append_rows(cache, part);
        last = last.defined() && !rows.empty() ? torch::cat({last, logits}, 0) : logits;
        for (Row& r : fresh) rows.push_back(std::move(r));
      }
      if (rows.empty()) break;
      // One token per row. A row still feeding jumped tokens is not sampled:
      // the ragged cache takes one column per step, so rows feed their
      // jumped tokens one per step (padding several would stay in the cache).
      int64_t B = static_cast<int64_t>(rows.size());
      std::vector<int64_t> keep;
      for (int64_t i = 0; i < B; ++i) {
        Row& r = rows[static_cast<size_t>(i)];
        std::optional<SeqEnd> end;
        if (r.feed.empty()) end = step(r, last[i].data_ptr<float>(), last.size(1));
        if (end) {
          ++stats_.sequences;
          stats_.tokens += r.tokens;
          work.done(r.in, SeqOut{std::move(r.text), r.tokens, *end});
        } else {
          keep.push_back(i);
        }
      }
      if (static_cast<int64_t>(keep.size()) < B) {
        std::vector<Row> kept;
        for (int64_t i : keep) kept.push_back(std::move(rows[static_cast<size_t>(i)]));
        rows = std::move(kept);
        if (rows.empty()) {
          cache = KVCache{};
          last = torch::Tensor();
          continue;
        }
        keep_rows(cache, keep);
      }
      int64_t n = static_cast<int64_t>(rows.size());
      std::vector<int64_t> ids, pos;
      for (Row& r : rows) {
        ids.push_back(r.feed.front());
        r.feed.erase(r.feed.begin());
        pos.push_back(r.next_pos++);
      }
      ++stats_.forward_calls;
      last = model_
                 ->forward(torch::tensor(ids, torch::kInt64).view({n, 1}), &cache,
                           torch::tensor(pos, torch::kInt64).view({n, 1}),
                           torch::ones({n, 1}, torch::kBool))
                 .select(1, 0)
                 .to(torch::kCPU)
                 .contiguous();  // (n, V) on the CPU for the samplers
    }
  }

  // Left-padded prompts of new rows -> their cache and last logits (B, V).
  torch::Tensor prefill(std::vector<Row>& fresh, KVCache& part) {
    std::vector<std::vector<int>> prompts;
    int64_t longest = 0;
    for (Row& r : fresh) {
      prompts.push_back(tok_.encode(r.in.prompt, true, false));
      stats_.prompt_tokens += static_cast<int64_t>(prompts.back().size());
      prompts.back().insert(prompts.back().end(), r.feed.begin(), r.feed.end());  // jumped
      r.feed.clear();
      longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts.back().size()));
    }
    int64_t B = static_cast<int64_t>(fresh.size());
    std::vector<int64_t> ids(static_cast<size_t>(B * longest), 0), pos(ids.size(), 0);
    std::vector<uint8_t> valid(ids.size(), 0);
    for (size_t r = 0; r < fresh.size(); ++r) {
      int64_t pad = longest - static_cast<int64_t>(prompts[r].size());
      for (size_t t = 0; t < prompts[r].size(); ++t) {
        size_t at = r * static_cast<size_t>(longest) + static_cast<size_t>(pad) + t;
        ids[at] = prompts[r][t];
        pos[at] = static_cast<int64_t>(t);
        valid[at] = 1;
      }
      fresh[r].next_pos = static_cast<int64_t>(prompts[r].size());
    }
    torch::Tensor tid = torch::tensor(ids, torch::kInt64).view({B, longest});
    torch::Tensor tpos = torch::tensor(pos, torch::kInt64).view({B, longest});
    torch::Tensor tvalid =
        torch::tensor(std::vector<int64_t>(valid.begin(), valid.end()), torch::kInt64)
            .view({B, longest})
            .to(torch::kBool);
    ++stats_.forward_calls;
    return model_->forward(tid, &part, tpos, tvalid)
        .select(1, longest - 1)
        .to(torch::kCPU)
        .contiguous();
  }

  // Samples the row's next token (pick -> accept -> done?); returns how the
  // sequence ended, if it did.
  std::optional<SeqEnd> step(Row& r, const float* logits, int64_t V) {
    if (r.tokens >= r.in.max_tokens) return SeqEnd::kBudget;
    bool redrawn = false;
    int32_t t = r.chain->sample(logits, static_cast<size_t>(V), &redrawn);
    stats_.masked_steps += redrawn;
    if (r.grammar) {
      if (t < 0) return SeqEnd::kDead;
      r.text += pieces_[static_cast<size_t>(t)].text;
      ++r.tokens;
      if (r.grammar->done()) return SeqEnd::kDone;
    } else {
      if (t < 0 || t == tok_.eos_id()) return SeqEnd::kStop;
      r.text += pieces_[static_cast<size_t>(t)].text;
      ++r.tokens;
      for (std::string_view s : r.in.stops)
        if (r.text.ends_with(s)) return SeqEnd::kDone;
    }
    r.feed.push_back(t);
    jump(r);
    if (r.grammar && r.grammar->done()) return SeqEnd::kDone;
    return std::nullopt;
  }

  Llama& model_;
  const Tokenizer& tok_;
  const GeneratorOptions& opt_;
  GenerateStats& stats_;
  const std::vector<PieceText>& pieces_;
  ForcedTokens forced_;  // jump-forward's tokenization of forced text
};

}  // namespace

namespace {

// The trie of one-call layers to `callees` (writable names only); null when none is.
std::shared_ptr<const LayerTrie> one_call_trie(const std::vector<std::string>& callees,
                                               const std::vector<std::string>* callers) {
  std::vector<std::vector<std::string>> seqs;
  for (const std::string& c : callees) seqs.push_back({c});
  return LayerTrie::of(seqs, 1, is_known_callee_name, callers);
}

// The known layer of a split's item (LayerSpec::layers): its place in one
// of its caller's wide training layers, the one `pick` chooses
// (split_item_names); nullptr when the caller has none, the split's place
// is unknown, or the item is itself a split.
std::shared_ptr<const LayerTrie> split_item_trie(const ModelBundle& b, const LayerJob& j,
                                                 int64_t count, uint64_t pick) {
  if (j.split_width <= 0 || count <= 0 || count > static_cast<int64_t>(kMaxLayerEdges))
    return nullptr;
  const auto* seqs = find_named(b.priors.layers, j.start_node);
  if (!seqs) return nullptr;
  std::vector<std::string> names =
      split_item_names(*seqs, static_cast<size_t>(j.split_width),
                       static_cast<size_t>(j.split_offset), static_cast<size_t>(count), pick);
  if (names.empty()) return nullptr;
  return LayerTrie::of({names}, names.size(), is_known_callee_name, b.callers.get());
}

// The known layers `seqs` of `width` calls whose destinations can hold
// `need` calls below them (layers_holding); nullptr when none can, or when
// all can (the whole trie of that width stands).
std::shared_ptr<const LayerTrie> holding_trie(const ModelBundle& b, const Sequences& seqs,
                                              int64_t width, int64_t need) {
  if (need <= 0) return nullptr;
  size_t all = 0;
  for (const auto& q : seqs) all += static_cast<int64_t>(q.size()) == width;
  Sequences keep = layers_holding(seqs, static_cast<size_t>(width), need, b.priors.subtree_max);
  if (keep.empty() || keep.size() == all) return nullptr;
  return LayerTrie::of(keep, static_cast<size_t>(width), is_known_callee_name, b.callers.get());
}

// One of the known layers `seqs` (the unit's node's, or its service's
// under that entry) for a unit of `width` calls, drawn by how many calls to
// the node from the unit's caller, with its num_edges calls under them,
// made each in training (draw_layer, which falls back to any caller or
// size): among those whose names the constraint may write, that can hold
// the unit's calls (with `known_sizes`; layers_holding) and that have at
// least the unit's num_subgraphs callers (each a soft filter: skipped when
// it leaves none).
// nullptr when none weighs anything (no layer_counts: a stats.json from
// before them).
std::shared_ptr<const LayerTrie> drawn_layer_trie(const ModelBundle& b, const LayerSpec& spec,
                                                  const Sequences& seqs, int64_t width,
                                                  bool known_sizes, double u) {
  const Sequences* all = find_named(b.priors.layers, spec.start_node);
  const LayerCounts* counts = find_named(b.priors.layer_counts, spec.start_node);
  if (!all || !counts) return nullptr;
  Sequences cands;
  for (const auto& q : seqs)
    if (static_cast<int64_t>(q.size()) == width &&
        std::all_of(q.begin(), q.end(),
                    [](const std::string& n) { return is_known_callee_name(n); }))
      cands.push_back(q);
  auto narrow = [&](Sequences keep) {
    if (!keep.empty()) cands = std::move(keep);
  };
  if (known_sizes && spec.num_edges)
    narrow(layers_holding(cands, static_cast<size_t>(width), *spec.num_edges - width,
                          b.priors.subtree_max));
  if (spec.num_subgraphs && *spec.num_subgraphs > 0 && b.callers) {
    Sequences keep;
    for (const auto& q : cands) {
      int64_t n = 0;
      for (const std::string& name : q)
        n += std::binary_search(b.callers->begin(), b.callers->end(), name);
      if (n >= *spec.num_subgraphs) keep.push_back(q);
    }
    narrow(std::move(keep));
  }
  std::optional<size_t> i =
      draw_layer(cands, *all, *counts, spec.caller.value_or(""), spec.num_edges, u);
  if (!i) return nullptr;
  return LayerTrie::of({cands[*i]}, static_cast<size_t>(width), is_known_callee_name,
                       b.callers.get());
}

}  // namespace

ModelBundle load_model_bundle(const std::string& dir, const std::string& adapter) {
  ModelBundle b;
  std::string adapter_dir = adapter;
  if (adapter_dir.empty() && file_exists(run_dir::adapter_config(dir))) adapter_dir = dir;
  if (!adapter_dir.empty() && !file_exists(run_dir::config(dir))) {
    nlohmann::json a = read_json_file(run_dir::adapter_config(adapter_dir));
    std::string base = a.value("base_model_name_or_path", "");
    if (base.empty())
      throw InputError(run_dir::adapter_config(adapter_dir), 0,
                       "no base_model_name_or_path: pass the base model with --model");
    b.model = load_llama(base);
  } else {
    b.model = load_llama(dir);
  }
  if (!adapter_dir.empty()) load_lora(b.model, adapter_dir);
  b.model->eval();
  std::string tok = file_exists(run_dir::tokenizer(dir)) ? run_dir::tokenizer(dir)
                                                         : run_dir::tokenizer(adapter_dir);
  b.tokenizer.emplace(Tokenizer::load(tok));
  std::string stats =
      file_exists(run_dir::stats(dir)) ? run_dir::stats(dir) : run_dir::stats(adapter_dir);
  if (file_exists(stats)) {
    TrainedStats t = TrainedStats::load(stats);
    b.stats = std::move(t.conditions);
    b.priors = std::move(t.priors);
    auto names = std::make_shared<std::vector<std::string>>();
    for (std::string& n : b.stats.callees())
      if (is_known_callee_name(n)) names->push_back(std::move(n));
    b.names = std::move(names);
    auto callers = std::make_shared<std::vector<std::string>>();
    for (auto& [caller, callees] : b.stats.callees_by_caller()) {
      if (!callees.empty() && is_known_callee_name(caller)) callers->push_back(caller);
      auto v = std::make_shared<std::vector<std::string>>();
      for (std::string& n : callees)
        if (is_known_callee_name(n)) v->push_back(std::move(n));
      if (!v->empty()) b.callees_of[caller] = std::move(v);
    }
    std::sort(callers->begin(), callers->end());
    b.callers = std::move(callers);
    b.subtree_caps = std::make_shared<const std::vector<std::pair<std::string, SubtreeSize>>>(
        b.priors.subtree_max);
    for (const auto& [caller, seqs] : b.priors.layers) {
      std::set<size_t> widths;
      for (const auto& q : seqs)
        if (q.size() <= kMaxLayerEdges) widths.insert(q.size());  // wider: split items'
      for (size_t w : widths)
        if (auto t = LayerTrie::of(seqs, w, is_known_callee_name, b.callers.get()))
          b.layers[{caller, static_cast<int64_t>(w)}] = std::move(t);
    }
    std::set<std::string> any_entry;
    for (const auto& [service, callees] : b.priors.entries)
      for (const auto& e : callees) any_entry.insert(e.callee);
    b.any_entry = one_call_trie({any_entry.begin(), any_entry.end()}, b.callers.get());
    b.durations =
        std::make_shared<const std::vector<std::pair<std::string, int64_t>>>(b.priors.durations);
    b.types = std::make_shared<const CallTypes>(b.priors.types);
    b.shapes = std::make_shared<const CallShapes>(b.priors.shapes);
  }
  return b;
}

std::vector<std::pair<std::string, std::string>> generator_settings(const GeneratorOptions& o) {
  auto on = [](bool b) { return std::string(b ? "on" : "off"); };
  std::vector<std::pair<std::string, std::string>> s = {
      {"format", o.instruction ? "instruction" : "recursive"},
      {"temperature", fmt::format("{}", o.sampling.temperature)},
      {"top_k", std::to_string(o.sampling.top_k)},
      {"top_p", fmt::format("{}", o.sampling.top_p)},
      {"precision", o.precision == Precision::kBF16 ? "bf16" : "fp32"},
      {"constrained", on(o.constrained)}};
  if (!o.constrained) {
    s.emplace_back("retries", std::to_string(o.retries));
    return s;
  }
  s.insert(s.end(), {{"attribute_order", o.fixed_order ? "fixed" : "any"},
                     {"known_names", on(o.known_names)},
                     {"known_calls", on(o.known_calls)},
                     {"known_callers", on(o.known_callers)},
                     {"known_sizes", on(o.known_sizes)},
                     {"known_layers", on(o.known_layers)},
                     {"draw_entries", on(o.known_layers && o.draw_entries)},
                     {"known_splits", on(o.known_layers && o.known_splits)},
                     {"known_durations", on(o.known_durations)},
                     {"known_types", on(o.known_types)},
                     {"draw_widths", on(o.draw_widths)},
                     {"draw_layers", on(o.known_layers && o.draw_layers)}});
  return s;
}

void GenerateStats::add(const GenerateStats& o) {
  sequences += o.sequences;
  tokens += o.tokens;
  prompt_tokens += o.prompt_tokens;
  masked_steps += o.masked_steps;
  forward_calls += o.forward_calls;
  forced_tokens += o.forced_tokens;
  constraint_seconds += o.constraint_seconds;
  model_seconds += o.model_seconds;
  matmul_seconds += o.matmul_seconds;
}

std::string RecursiveGenerator::root_prompt(const GenerateRequest& r, Rng& rng) const {
  LayerConditions c = root_conditions(r, b_.priors, rng);
  return std::string(kGenerateGraph) + format_attributes(c.to_attributes(), nullptr, 0, {}) + "\n";
}

std::vector<GeneratedGraph> RecursiveGenerator::generate(
    const std::vector<GenerateRequest>& reqs, uint64_t seed,
    const std::function<void(size_t, size_t)>& progress) {
  GraphAssembler as(reqs.size(), opt_.retries, opt_.max_layers, opt_.instruction);
  for (size_t i = 0; i < reqs.size(); ++i) {
    Rng rng(mix_seed(seed, first_ + i));
    as.add_root(i, root_conditions(reqs[i], b_.priors, rng), reqs[i].call);
  }
  std::vector<LayerJob> jobs;  // by tag
  std::vector<size_t> open_layers(reqs.size(), 1);
  size_t finished = 0, complete = 0;
  auto closed = [&](size_t g) {
    if (--open_layers[g] != 0) return;
    ++finished;
    complete += as.graph(g).error.empty();
    if (progress) progress(finished, complete);
  };
  auto next = [&](SeqIn* in) {
    while (!as.empty()) {
      LayerJob j = as.pop();
      if (!as.graph(j.graph).error.empty()) {  // the graph already failed
        closed(j.graph);
        continue;
      }
      if (opt_.instruction) j.prompt = instruction_prompt(j, reqs[j.graph]);
      in->prompt = j.prompt;
      in->seed = mix_seed(mix_seed(seed, first_ + j.graph),
                          mix_seed(j.key, static_cast<uint64_t>(j.attempt)));
      in->con.reset();
      if (opt_.constrained) {
        LayerSpec spec;
        std::string why;
        bool ok = LayerSpec::from_attributes(j.announced, &spec, &why);
        spec.require = j.require;
        spec.fixed_order = opt_.fixed_order;
        if (opt_.known_names) spec.names = b_.names;
        if (opt_.known_callers) spec.callers = b_.callers;
        if (opt_.known_sizes) spec.subtree_caps = b_.subtree_caps;
        if (opt_.known_durations) spec.durations = b_.durations;
        if (opt_.known_types) spec.types = b_.types;
        if (opt_.draw_widths) {
          spec.shapes = b_.shapes;
          // Per layer, apart from the decoding streams ("width" in ASCII).
          spec.draw_seed =
              mix_seed(mix_seed(seed, first_ + j.graph), mix_seed(j.key, 0x7769647468));
        }
        if (opt_.known_layers && !spec.require && spec.num_current_edges) {
          if (j.item) {
            // Its place in one of the caller's wide layers, the same one for
            // the whole split: the pick depends on the graph and the split.
            if (opt_.known_splits) {
              const uint64_t pick = mix_seed(mix_seed(seed, first_ + j.graph), j.split_key);
              spec.layers = split_item_trie(b_, j, *spec.num_current_edges, pick);
            }
          } else {
            if (spec.root && *spec.num_current_edges == 1) {  // keyed by the service
              std::vector<std::string> entries;
              if (opt_.draw_entries) {
                // Per graph, apart from the decoding streams ("entry" in ASCII);
                // u in [0, 1) as Rng::uniform makes it.
                const uint64_t pick = mix_seed(mix_seed(seed, first_ + j.graph), 0x656e747279);
                std::string e = draw_entry(b_.priors.entries, spec.service, spec.num_edges,
                                           static_cast<double>(pick >> 11) * 0x1.0p-53);
                if (!e.empty()) entries.push_back(std::move(e));
              } else {
                entries = entries_for(b_.priors.entries, spec.service, spec.num_edges);
              }
              spec.layers = one_call_trie(entries, b_.callers.get());
              if (!spec.layers) spec.layers = b_.any_entry;
            }
            if (!spec.layers) {
              const int64_t width = *spec.num_current_edges;
              // The entry's layer: its service's own layers under that entry, when it has some.
              const Sequences* seqs = nullptr;
              if (spec.caller && *spec.caller == kUserNode)
                if (const auto* by_entry = find_named(b_.priors.entry_layers, spec.service))
                  if ((seqs = find_named(*by_entry, spec.start_node)))
                    spec.layers = LayerTrie::of(*seqs, static_cast<size_t>(width),
                                                is_known_callee_name, b_.callers.get());
              if (!spec.layers) {  // the caller's layers of that width, any service's
                auto it = b_.layers.find({spec.start_node, width});
                seqs = find_named(b_.priors.layers, spec.start_node);
                if (it != b_.layers.end()) spec.layers = it->second;
              }
              // One of them, drawn by how often calls to the node from its caller,
              // of the unit's size, made each in training (drawn_layer_trie, which
              // keeps only those that can hold the unit's calls); else, without
              // counts, all of those that can.
              std::shared_ptr<const LayerTrie> drawn;
              if (spec.layers && seqs && opt_.draw_layers) {
                // Per layer, apart from the decoding streams ("layer" in ASCII).
                const uint64_t pick =
                    mix_seed(mix_seed(seed, first_ + j.graph), mix_seed(j.key, 0x6c61796572));
                drawn = drawn_layer_trie(b_, spec, *seqs, width, opt_.known_sizes,
                                         static_cast<double>(pick >> 11) * 0x1.0p-53);
              }
              if (drawn)
                spec.layers = std::move(drawn);
              else if (spec.layers && seqs && opt_.known_sizes && spec.num_edges)
                if (auto held = holding_trie(b_, *seqs, width, *spec.num_edges - width))
                  spec.layers = std::move(held);
            }
          }
        }
        if (opt_.known_calls && !spec.require) {
          auto it = b_.callees_of.find(spec.start_node);
          if (it != b_.callees_of.end()) spec.names = it->second;
        }
        if (ok && opt_.instruction && !spec.num_edges) {
          ok = false;
          why =
              "constrained instruction answers state num_edges: pass --edges (or use a model "
              "whose stats.json has the corpus sizes)";
        }
        if (!ok || !spec.check_require(&why)) {
          size_t g = j.graph, before = as.pending();
          as.fail(std::move(j), "inconsistent conditions: " + why);
          open_layers[g] += as.pending() - before;
          closed(g);
          continue;
        }
        if (opt_.instruction)
          in->con = std::make_unique<InstructionConstraint>(spec, opt_.limits);
        else
          in->con = std::make_unique<LayerConstraint>(spec, opt_.limits);
      } else {
        in->stops = {"</layer>", "</split>"};
      }
      // A constrained unit's language is finite: with a budget of its longest
      // text in tokens (each token writes >= 1 byte) it always completes.
      in->max_tokens =
          in->con ? std::max(opt_.max_layer_tokens, in->con->max_length()) : opt_.max_layer_tokens;
      in->tag = jobs.size();
      jobs.push_back(std::move(j));
      return true;
    }
    return false;
  };
  auto done = [&](SeqIn& in, SeqOut out) {
    LayerJob& j = jobs[in.tag];
    size_t g = j.graph;
    size_t before = as.pending();
    switch (out.end) {
      case SeqEnd::kDone:
      case SeqEnd::kStop:
        as.finish(std::move(j), std::move(out.text), out.tokens);
        break;
      case SeqEnd::kDead:
        as.fail(std::move(j), "no token can continue the layer", out.tokens);
        break;
      case SeqEnd::kBudget:
        if (opt_.constrained)
          as.fail(std::move(j), "layer longer than " + std::to_string(in.max_tokens) + " tokens",
                  out.tokens);
        else
          as.finish(std::move(j), std::move(out.text), out.tokens);
        break;
    }
    open_layers[g] += as.pending() - before;
    closed(g);
  };
  Decoder::decode_all(b_.model, *b_.tokenizer, opt_, stats_, next, done);
  return as.take();
}

std::vector<GeneratedGraph> RecursiveGenerator::generate_tabular(
    const std::vector<GenerateRequest>& reqs, uint64_t seed) {
  std::vector<GeneratedGraph> out(reqs.size());
  std::vector<int> attempts(reqs.size(), 0);
  std::vector<std::string> prompts(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    Rng rng(mix_seed(seed, first_ + i));
    LayerConditions c = root_conditions(reqs[i], b_.priors, rng);
    Attributes a;
    a.set("id", c.id);
    if (reqs[i].latency) a.set("latency", *reqs[i].latency);
    if (reqs[i].num_edges) a.set("num_edges", *reqs[i].num_edges);
    if (reqs[i].depth) a.set("depth", *reqs[i].depth);
    prompts[i] = std::string(kGenerateGraph) + format_attributes(a, nullptr, 0, {}) + "\n";
    out[i].graph.service = c.id;
  }
  std::deque<size_t> pending;
  for (size_t i = 0; i < reqs.size(); ++i) pending.push_back(i);
  auto next = [&](SeqIn* in) {
    if (pending.empty()) return false;
    size_t i = pending.front();
    pending.pop_front();
    in->prompt = prompts[i];
    in->seed = mix_seed(mix_seed(seed, first_ + i), static_cast<uint64_t>(attempts[i]));
    in->stops = {"</edges>"};
    in->max_tokens = opt_.max_layer_tokens;
    in->tag = i;
    return true;
  };
  auto done = [&](SeqIn& in, SeqOut o) {
    GeneratedGraph& g = out[in.tag];
    ++g.attempts;
    g.tokens += o.tokens;
    TabularGraph t;
    ParseError err;
    std::string text = prompts[in.tag] + o.text;
    if (!text.ends_with("\n")) text += "\n";
    if (decode_tabular(text, &t, &err)) {
      g.graph = std::move(t.graph);
      g.graph.canonicalize();
      g.complete = true;
      g.layers = 1;
      g.error.clear();
    } else if (attempts[in.tag]++ < opt_.retries) {
      pending.push_back(in.tag);
    } else {
      g.error = "graph does not decode: " + err.what;
    }
  };
  Decoder::decode_all(b_.model, *b_.tokenizer, opt_, stats_, next, done);
  return out;
}

}  // namespace tracelm
