#include "generate/assembler.h"

#include "encode/unit_format.h"

#include "encode/instruction.h"
#include "io/csv.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace tracelm {

namespace {

// A draw from (value, weight) pairs; nullopt when the weights are all 0.
template <class T>
std::optional<T> draw(const std::vector<std::pair<T, uint64_t>>& items, Rng& rng) {
  uint64_t total = 0;
  for (auto& [v, n] : items) total += n;
  if (total == 0) return std::nullopt;
  uint64_t x = rng.next() % total;
  for (auto& [v, n] : items) {
    if (x < n) return v;
    x -= n;
  }
  return items.back().first;
}

}  // namespace

std::optional<CallRequest> CallRequest::parse(const std::string& text, std::string* error) {
  std::vector<std::string_view> parts;
  std::string scratch;
  if (!split_csv_line(text, parts, scratch) || parts.size() < 2 || parts.size() > 3) {
    *error = "expected CALLER,CALLEE[,TYPE], got '" + text + "'";
    return std::nullopt;
  }
  CallRequest c{std::string(parts[0]), std::string(parts[1]),
                parts.size() == 3 ? std::string(parts[2]) : ""};
  for (const std::string* n : {&c.caller, &c.callee})
    if (!is_generatable_name(*n)) {
      *error = "'" + *n + "' is not a microservice name (1-31 letters, digits, '_', '.', '-')";
      return std::nullopt;
    }
  if (!c.type.empty()) {
    auto t = parse_call_type(c.type);
    if (!t) {
      *error = "call type '" + c.type + "' is not one of http rpc mc db mq";
      return std::nullopt;
    }
    c.type = std::string(call_type_name(*t));
  }
  return c;
}

bool has_call(const CallGraph& g, const CallRequest& c) {
  for (const Edge& e : g.edges)
    if (e.caller == c.caller && e.callee == c.callee &&
        (c.type.empty() || call_type_name(e.type) == c.type))
      return true;
  return false;
}

// Fills the open service, size, depth and latency of `r` from one training
// graph whose root conditions agree with what `r` fixes (their joint
// distribution); leaves `r` as it is when no training graph agrees.
static void fill_from_training_root(GenerateRequest& r, const CorpusPriors& priors,
                                    int64_t min_edges, Rng& rng) {
  std::vector<const CorpusPriors::Root*> agree;
  for (const CorpusPriors::Root& t : priors.roots)
    if ((!r.service || t.service == *r.service) && (!r.num_edges || t.num_edges == *r.num_edges) &&
        (!r.depth || t.depth == *r.depth) && t.num_edges >= min_edges &&
        (min_edges < 2 || t.depth >= 2) && is_plain_name(t.service))
      agree.push_back(&t);
  if (agree.empty()) return;
  const CorpusPriors::Root& t = *agree[rng.next() % agree.size()];
  if (!r.service) r.service = t.service;
  if (!r.num_edges) r.num_edges = t.num_edges;
  if (!r.depth) r.depth = t.depth;
  if (!r.latency && !r.high_latency) r.latency = t.latency;
}

LayerConditions root_conditions(const GenerateRequest& req, const CorpusPriors& priors, Rng& rng) {
  LayerConditions c;
  GenerateRequest r = req;
  if (r.call && r.call->caller != kUserNode) {  // USER -> caller -> callee: depth >= 2
    if (r.depth && *r.depth < 2)
      throw std::invalid_argument("the call " + r.call->caller + " -> " + r.call->callee +
                                  " needs a graph of depth >= 2");
    if (r.num_edges && *r.num_edges < 2)
      throw std::invalid_argument("the call " + r.call->caller + " -> " + r.call->callee +
                                  " needs a graph of at least 2 edges");
  }
  const int64_t min_edges = r.call && r.call->caller != kUserNode ? 2 : 1;
  fill_from_training_root(r, priors, min_edges, rng);
  if (r.service) {
    if (!is_plain_name(*r.service))
      throw std::invalid_argument("service '" + *r.service +
                                  "' is not a name the text format can carry");
    c.id = *r.service;
  } else if (auto s = draw(priors.services, rng)) {
    c.id = *s;
  } else {
    throw std::invalid_argument("no service given and the model has no service statistics");
  }
  if (!r.num_edges) {
    std::vector<std::pair<int64_t, uint64_t>> sizes;
    for (auto [e, n] : priors.num_edges)
      if (e >= min_edges && (!r.depth || (e >= *r.depth && (*r.depth > 1 || e == 1))))
        sizes.emplace_back(e, n);
    r.num_edges = draw(sizes, rng);
  }
  if (r.num_edges && *r.num_edges < 1)
    throw std::invalid_argument("the number of edges must be at least 1");
  if (r.depth && *r.depth < 1) throw std::invalid_argument("the depth must be at least 1");
  if (r.latency && *r.latency < 0) throw std::invalid_argument("the latency must be >= 0");
  if (r.num_edges && r.depth && *r.depth > *r.num_edges)
    throw std::invalid_argument("a graph of depth " + std::to_string(*r.depth) +
                                " needs at least " + std::to_string(*r.depth) + " edges, not " +
                                std::to_string(*r.num_edges));
  if (r.num_edges && r.depth && *r.depth == 1 && *r.num_edges > 1)
    throw std::invalid_argument("a graph of depth 1 has exactly 1 edge (the root call)");
  c.start_node = std::string(kUserNode);
  c.start_edge_id = 0;
  c.start_communication_at = 0;
  c.num_current_edges = 1;
  c.num_edges = r.num_edges;
  if (r.depth) c.remaining_depth = *r.depth - 1;
  c.latency = r.latency;
  if (r.num_edges)
    c.num_subgraphs = *r.num_edges > 1 ? 1 : 0;
  else if (r.depth)
    c.num_subgraphs = *r.depth > 1 ? 1 : 0;
  return c;
}

std::string instruction_prompt(const LayerJob& j, const GenerateRequest& r) {
  const Attributes& a = j.announced;
  bool root = !a.has("caller") && j.prefix.empty();
  auto nce = a.get_int("num_current_edges");
  bool split = nce && is_split(*nce);
  std::array<std::string, 3> rare;
  if (j.require && j.require->child_dest.empty() && !j.require->type.empty())
    rare = {j.start_node, j.require->dest, j.require->type};
  return format_question(format_attributes(a, nullptr, 0, {}),
                         request_sentences(a, root, split, rare, root && r.high_latency), split);
}

GraphAssembler::GraphAssembler(size_t graphs, int retries, int64_t max_layers, bool instruction)
    : out_(graphs),
      layers_(graphs, 0),
      retries_(retries),
      max_layers_(max_layers),
      instruction_(instruction) {}

void GraphAssembler::add_root(size_t graph, const LayerConditions& c,
                              const std::optional<CallRequest>& call) {
  LayerJob j;
  j.graph = graph;
  if (call) {
    if (call->caller == kUserNode)
      j.require = RequiredCall{call->callee, call->type, "", ""};
    else
      j.require = RequiredCall{call->caller, "", call->callee, call->type};
  }
  j.announced = c.to_attributes();
  j.prompt = std::string(kGenerateGraph) + format_attributes(j.announced, nullptr, 0, {}) + "\n";
  j.start_node = std::string(kUserNode);
  ++layers_[graph];
  out_[graph].graph.service = c.id;
  pending_.push_back(std::move(j));
}

LayerJob GraphAssembler::pop() {
  LayerJob j = std::move(pending_.front());
  pending_.pop_front();
  return j;
}

void GraphAssembler::retry_or_fail(LayerJob job, const std::string& why) {
  GeneratedGraph& g = out_[job.graph];
  if (job.attempt < retries_) {
    ++job.attempt;
    pending_.push_back(std::move(job));
  } else if (g.error.empty()) {
    g.error = why;
  }
}

void GraphAssembler::fail(LayerJob job, const std::string& why, int64_t tokens) {
  GeneratedGraph& g = out_[job.graph];
  ++g.attempts;
  g.tokens += tokens;
  if (!g.error.empty()) return;
  retry_or_fail(std::move(job), why);
}

void GraphAssembler::finish(LayerJob job, std::string text, int64_t tokens) {
  GeneratedGraph& g = out_[job.graph];
  ++g.attempts;
  g.tokens += tokens;
  if (!g.error.empty()) return;  // the graph already failed
  if (std::getenv("TRACELM_DEBUG_GENERATE"))
    std::fprintf(stderr, "--- prompt:\n%s--- output:\n%s\n", job.prompt.c_str(), text.c_str());
  if (text.empty() || text.back() != '\n') text += '\n';
  ParsedUnit u;
  ParseError err;
  std::string why;
  bool parsed;
  if (instruction_) {
    // One leading space: the dummy prefix of an answer tokenized on its own.
    if (!text.empty() && text[0] == ' ') text.erase(0, 1);
    ParsedInstruction p;
    parsed = parse_instruction(job.prompt + text, &p, &err);
    u = std::move(p.unit);
  } else {
    LineScanner sc(text);
    parsed = parse_unit_body(sc, &u, &err);
  }
  if (!parsed) {
    why = "layer does not parse: " + err.what;
  } else if (auto nce = job.announced.get_int("num_current_edges");
             nce && u.kind == Unit::Kind::kLayer && *nce != static_cast<int64_t>(u.edges.size())) {
    why = "layer has " + std::to_string(u.edges.size()) + " edges, asked " + std::to_string(*nce);
  } else {
    for (auto& [k, a] : u.subs) {
      bool found = u.kind == Unit::Kind::kSplit;
      for (const EdgeText& e : u.edges) found = found || e.edge_id == std::to_string(k);
      if (!found) why = "subgraph for a missing edge " + std::to_string(k);
    }
  }
  if (!why.empty()) {
    retry_or_fail(std::move(job), why);
    return;
  }
  ++g.layers;
  for (const EdgeText& e : u.edges) {
    std::string full = job.prefix.empty() ? e.edge_id : job.prefix + "." + e.edge_id;
    auto id = RpcId::parse(full);
    if (!id) continue;
    g.graph.edges.push_back({*id, job.start_node, e.destination,
                             parse_call_type(e.type).value_or(CallType::kUnknown), e.start_ms,
                             e.finish_ms});
  }
  std::string req_edge;  // edge_id of the first edge meeting the requirement
  if (job.require && u.kind == Unit::Kind::kLayer)
    for (const EdgeText& e : u.edges)
      if (e.destination == job.require->dest &&
          (job.require->type.empty() || e.type == job.require->type)) {
        req_edge = e.edge_id;
        break;
      }
  uint64_t index = 0;
  for (auto& [k, a] : u.subs) {
    if (layers_[job.graph] >= max_layers_) {
      g.error = "more than " + std::to_string(max_layers_) + " layers";
      return;
    }
    LayerJob child;
    child.graph = job.graph;
    child.prompt = format_attributes(a, nullptr, 0, {}) + "\n";
    child.prefix = job.prefix;
    child.start_node = job.start_node;
    child.announced = a;
    child.key = mix_seed(job.key, ++index);
    ++layers_[job.graph];
    if (u.kind == Unit::Kind::kLayer) {
      std::string ks = std::to_string(k);
      for (const EdgeText& e : u.edges)
        if (e.edge_id == ks) {
          child.prefix = job.prefix.empty() ? ks : job.prefix + "." + ks;
          child.start_node = e.destination;
        }
      // The requirement's next level goes to the subgraph of the first edge
      // that met it (the edge the constraint forced, when it had to).
      if (job.require && !job.require->child_dest.empty() && ks == req_edge)
        child.require = RequiredCall{job.require->child_dest, job.require->child_type, "", ""};
    } else {
      child.item = true;
      // Its place in the whole layer: a split that is itself an item (one
      // wider than 15 calls) passes on its own place.
      auto width = job.announced.get_int("num_current_edges");
      auto first = job.announced.get_int("start_edge_id"), sid = a.get_int("start_edge_id");
      if (width && first && sid && *sid >= *first && *sid - *first < *width) {
        const bool nested = job.item && job.split_width > 0;
        child.split_width = nested ? job.split_width : *width;
        child.split_offset = (nested ? job.split_offset : 0) + (*sid - *first);
        child.split_key = nested ? job.split_key : job.key;
      }
      if (job.require && &a == &u.subs.front().second)
        child.require = job.require;  // a split: its first item carries it
    }
    pending_.push_back(std::move(child));
  }
}

std::vector<GeneratedGraph> GraphAssembler::take() {
  for (GeneratedGraph& g : out_) {
    g.graph.canonicalize();
    g.complete = g.error.empty() && !g.graph.edges.empty();
    if (g.graph.edges.empty() && g.error.empty()) g.error = "no layer was generated";
  }
  return std::move(out_);
}

}  // namespace tracelm
