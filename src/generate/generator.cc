#include "generate/generator.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "io/input_error.h"
#include "io/json_file.h"

namespace tracelm {

namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6) + (a >> 2));
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 29);
}

// One layer to generate.
struct Job {
  size_t graph;        // index into the results
  std::string prompt;  // condition line, with "\n"
  std::string prefix;  // full id of the parent edge ("" at the root)
  std::string start_node;
  Attributes announced;  // conditions (to check the layer against)
  int64_t ordinal;       // position of the layer in the graph
  int attempt = 0;
};

bool ends_with(const std::string& s, std::string_view suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace

ModelBundle load_model_bundle(const std::string& dir, const std::string& adapter) {
  ModelBundle b;
  std::string adapter_dir = adapter;
  if (adapter_dir.empty() && file_exists(dir + "/adapter_config.json")) adapter_dir = dir;
  if (!adapter_dir.empty() && !file_exists(dir + "/config.json")) {
    nlohmann::json a = read_json_file(adapter_dir + "/adapter_config.json");
    std::string base = a.value("base_model_name_or_path", "");
    if (base.empty())
      throw InputError(adapter_dir + "/adapter_config.json", 0,
                       "no base_model_name_or_path: pass the base model with --model");
    b.model = load_llama(base);
  } else {
    b.model = load_llama(dir);
  }
  if (!adapter_dir.empty()) load_lora(b.model, adapter_dir);
  b.model->eval();
  std::string tok = file_exists(dir + "/tokenizer.model") ? dir + "/tokenizer.model"
                                                          : adapter_dir + "/tokenizer.model";
  b.tokenizer.emplace(Tokenizer::load(tok));
  std::string stats =
      file_exists(dir + "/stats.json") ? dir + "/stats.json" : adapter_dir + "/stats.json";
  if (file_exists(stats)) {
    nlohmann::json j = read_json_file(stats);
    if (j.contains("conditions")) b.stats = ConditionStats::from_json(j["conditions"]);
    if (j.contains("corpus") && j["corpus"].contains("top_services"))
      for (auto& s : j["corpus"]["top_services"])
        b.services.emplace_back(s["service"].get<std::string>(), s["graphs"].get<uint64_t>());
  }
  return b;
}

std::string RecursiveGenerator::root_prompt(const GenerateRequest& r, Rng& rng) const {
  LayerConditions c;
  if (r.service) {
    c.id = *r.service;
  } else if (!b_.services.empty()) {
    uint64_t total = 0;
    for (auto& [s, n] : b_.services) total += n;
    uint64_t x = rng.next() % std::max<uint64_t>(1, total);
    c.id = b_.services.back().first;
    for (auto& [s, n] : b_.services) {
      if (x < n) {
        c.id = s;
        break;
      }
      x -= n;
    }
  } else {
    throw std::invalid_argument("no --service given and the model has no service statistics");
  }
  c.start_node = std::string(kUserNode);
  c.start_edge_id = 0;
  c.start_communication_at = 0;
  c.num_current_edges = 1;
  c.num_edges = r.num_edges;
  if (r.depth) c.remaining_depth = *r.depth - 1;
  c.latency = r.latency;
  if (r.num_edges) c.num_subgraphs = *r.num_edges > 1 ? 1 : 0;
  return std::string(kGenerateGraph) + format_attributes(c.to_attributes(), nullptr, 0, {}) + "\n";
}

std::vector<GeneratedGraph> RecursiveGenerator::generate(const std::vector<GenerateRequest>& reqs,
                                                         uint64_t seed) {
  const Tokenizer& tok = *b_.tokenizer;
  const auto& pieces = tok.piece_texts();
  std::vector<GeneratedGraph> out(reqs.size());
  std::vector<Job> pending;
  std::vector<int64_t> ordinals(reqs.size(), 0);
  for (size_t i = 0; i < reqs.size(); ++i) {
    Rng rng(mix(seed, i));
    Job j{i, root_prompt(reqs[i], rng), "", std::string(kUserNode), {}, ordinals[i]++, 0};
    std::string e;
    parse_attributes(std::string_view(j.prompt).substr(kGenerateGraph.size(),
                                                       j.prompt.size() - kGenerateGraph.size() - 1),
                     &j.announced, &e);
    out[i].graph.service = *j.announced.get("id");
    pending.push_back(std::move(j));
  }
  torch::NoGradGuard no_grad;
  int64_t ctx = b_.model->config().max_position_embeddings;
  while (!pending.empty()) {
    // Take a batch (FIFO keeps graphs' layers roughly in pre-order).
    size_t n =
        std::min<size_t>(pending.size(), static_cast<size_t>(std::max<int64_t>(1, opt_.batch)));
    std::vector<Job> batch(std::make_move_iterator(pending.begin()),
                           std::make_move_iterator(pending.begin() + static_cast<long>(n)));
    pending.erase(pending.begin(), pending.begin() + static_cast<long>(n));
    // Prompts, left-padded: positions count from each row's first real token.
    std::vector<std::vector<int>> prompts;
    int64_t longest = 0;
    for (Job& j : batch) {
      prompts.push_back(tok.encode(j.prompt, true, false));
      longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts.back().size()));
    }
    int64_t B = static_cast<int64_t>(n);
    torch::Tensor ids = torch::zeros({B, longest}, torch::kInt64);
    torch::Tensor pos = torch::zeros({B, longest}, torch::kInt64);
    torch::Tensor valid = torch::zeros({B, longest}, torch::kBool);
    std::vector<int64_t> next_pos(n);
    for (size_t r = 0; r < n; ++r) {
      int64_t pad = longest - static_cast<int64_t>(prompts[r].size());
      for (size_t t = 0; t < prompts[r].size(); ++t) {
        ids[static_cast<int64_t>(r)][pad + static_cast<int64_t>(t)] = prompts[r][t];
        pos[static_cast<int64_t>(r)][pad + static_cast<int64_t>(t)] = static_cast<int64_t>(t);
        valid[static_cast<int64_t>(r)][pad + static_cast<int64_t>(t)] = true;
      }
      next_pos[r] = static_cast<int64_t>(prompts[r].size());
    }
    std::vector<std::unique_ptr<SamplerChain>> chains;
    for (Job& j : batch) {
      SamplingParams p = opt_.sampling;
      p.seed = mix(mix(seed, j.graph),
                   mix(static_cast<uint64_t>(j.ordinal), static_cast<uint64_t>(j.attempt)));
      chains.push_back(SamplerChain::from_params(p));
    }
    KVCache cache;
    torch::Tensor logits = b_.model->forward(ids, &cache, pos, valid);  // (B,T,V)
    torch::Tensor last = logits.select(1, longest - 1).contiguous();    // (B,V)
    std::vector<std::string> text(n);
    std::vector<bool> done(n, false);
    int64_t V = last.size(1);
    for (int64_t step = 0; step < opt_.max_layer_tokens; ++step) {
      std::vector<int64_t> next(n, 0);
      bool any = false;
      for (size_t r = 0; r < n; ++r) {
        if (done[r]) continue;
        Candidates c = Candidates::from_logits(last[static_cast<int64_t>(r)].data_ptr<float>(),
                                               static_cast<size_t>(V));
        int32_t t = chains[r]->pick(c);
        next[r] = t < 0 ? tok.eos_id() : t;
        if (t < 0 || t == tok.eos_id() || next_pos[r] + 1 >= ctx) {
          done[r] = true;
          continue;
        }
        text[r] += pieces[static_cast<size_t>(t)].text;
        if (ends_with(text[r], "</layer>\n") || ends_with(text[r], "</split>\n") ||
            ends_with(text[r], "</layer>") || ends_with(text[r], "</split>"))
          done[r] = true;
        any = true;
      }
      if (!any || std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
      torch::Tensor step_ids = torch::tensor(next).view({B, 1});
      torch::Tensor step_pos = torch::tensor(next_pos).view({B, 1});
      for (auto& p : next_pos) ++p;
      last = b_.model->forward(step_ids, &cache, step_pos, torch::ones({B, 1}, torch::kBool))
                 .select(1, 0)
                 .contiguous();
    }
    // Parse each layer; children become pending jobs.
    for (size_t r = 0; r < n; ++r) {
      Job& j = batch[r];
      GeneratedGraph& g = out[j.graph];
      ++g.attempts;
      if (!g.error.empty()) continue;  // the graph already failed
      if (std::getenv("TRACELM_DEBUG_GENERATE"))
        std::fprintf(stderr, "--- prompt:\n%s--- output:\n%s\n", j.prompt.c_str(), text[r].c_str());
      if (!ends_with(text[r], "\n")) text[r] += "\n";
      LineScanner sc(text[r]);
      ParsedUnit u;
      ParseError err;
      std::string why;
      if (!parse_unit_body(sc, &u, &err)) {
        why = "layer does not parse: " + err.what;
      } else if (auto nce = j.announced.get_int("num_current_edges");
                 nce && u.kind == Unit::Kind::kLayer &&
                 *nce != static_cast<int64_t>(u.edges.size())) {
        why =
            "layer has " + std::to_string(u.edges.size()) + " edges, asked " + std::to_string(*nce);
      } else {
        for (auto& [k, a] : u.subs) {
          bool found = u.kind == Unit::Kind::kSplit;
          for (const EdgeText& e : u.edges) found = found || e.edge_id == std::to_string(k);
          if (!found) why = "subgraph for a missing edge " + std::to_string(k);
        }
      }
      if (!why.empty()) {
        if (j.attempt < opt_.retries) {
          ++j.attempt;
          pending.push_back(std::move(j));
        } else {
          g.error = why;
        }
        continue;
      }
      ++g.layers;
      std::vector<std::pair<std::string, std::string>> ids_;  // edge_id -> (full id, callee)
      for (const EdgeText& e : u.edges) {
        std::string full = j.prefix.empty() ? e.edge_id : j.prefix + "." + e.edge_id;
        auto id = RpcId::parse(full);
        if (!id) continue;
        g.graph.edges.push_back({*id, j.start_node, e.destination,
                                 parse_call_type(e.type).value_or(CallType::kUnknown), e.start_ms,
                                 e.finish_ms});
      }
      for (auto& [k, a] : u.subs) {
        if (ordinals[j.graph] >= opt_.max_layers) {
          g.error = "more than " + std::to_string(opt_.max_layers) + " layers";
          break;
        }
        Job child{j.graph,  format_attributes(a, nullptr, 0, {}) + "\n",
                  j.prefix, j.start_node,
                  a,        ordinals[j.graph]++,
                  0};
        if (u.kind == Unit::Kind::kLayer) {
          std::string ks = std::to_string(k);
          for (const EdgeText& e : u.edges)
            if (e.edge_id == ks) {
              child.prefix = j.prefix.empty() ? ks : j.prefix + "." + ks;
              child.start_node = e.destination;
            }
        }
        pending.push_back(std::move(child));
      }
    }
  }
  for (GeneratedGraph& g : out) {
    g.graph.canonicalize();
    g.complete = g.error.empty();
  }
  return out;
}

}  // namespace tracelm
