#include "tasks/task_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "corpus/corpus.h"
#include "encode/text_format.h"
#include "io/input_error.h"
#include "io/json_file.h"
#include "util/rng.h"

namespace tracelm {

namespace {

constexpr std::array<std::string_view, 4> kKindNames = {"infill-attribute", "infill-call",
                                                        "predict-latency", "predict-uncommon"};

std::string graph_key(const CallGraph& g, size_t index) {
  return g.trace_id.empty() ? "#" + std::to_string(index) : g.trace_id;
}

std::string last_component(const RpcId& id) {
  const std::string& s = id.str();
  size_t dot = s.rfind('.');
  return dot == std::string::npos ? s : s.substr(dot + 1);
}

// "start_node:X/id:S/caller:Y" in a shuffled order (no caller at the root,
// as in tracelm's recursive encoding).
std::string layer_header(const std::string& start_node, const std::string& service,
                         const std::string* caller, bool with_start_node, Rng& rng) {
  Attributes a;
  if (with_start_node) a.set("start_node", start_node);
  a.set("id", service);
  if (caller) a.set("caller", *caller);
  return format_attributes(a, &rng, 0.0, {});
}

// The caller of a layer's parent call (nullptr at the root).
const std::string* layer_caller(const CallGraph& g, const Layer& l) {
  return l.parent == GraphIndex::kNone ? nullptr : &g.edges[l.parent].caller;
}

// "(...)" of an edge with all five recursive phrases, shuffled.
std::string edge_line(const Edge& e, Rng& rng) { return format_edge(edge_text(e, false), &rng); }

// "(...)" of an edge without its finish time (predict-latency), shuffled.
std::string edge_line_no_finish(const Edge& e, Rng& rng) {
  std::vector<std::string> p = {
      "edge_id is " + last_component(e.id), "type is " + std::string(call_type_name(e.type)),
      "destination is " + e.callee,
      "communication starts at " + std::to_string(e.start_ms) + " milliseconds"};
  rng.shuffle(p.begin(), p.end());
  std::string s = "(";
  for (size_t i = 0; i < p.size(); ++i) s += (i ? "," : "") + p[i];
  return s + ")";
}

// The target edge of infill-attribute with one attribute replaced by [MISSING].
std::string edge_line_missing(const Edge& e, bool hide_type, Rng& rng) {
  std::vector<std::string> p = {
      "edge_id is " + last_component(e.id),
      "communication starts at " + std::to_string(e.start_ms) + " milliseconds",
      "communication finishes at " + std::to_string(e.finish_ms) + " milliseconds",
      "type is " + (hide_type ? std::string(kMissing) : std::string(call_type_name(e.type))),
      "destination is " + (hide_type ? e.callee : std::string(kMissing))};
  rng.shuffle(p.begin(), p.end());
  std::string s = "(";
  for (size_t i = 0; i < p.size(); ++i) s += (i ? "," : "") + p[i];
  return s + ")";
}

struct GraphContext {
  const CallGraph& g;
  size_t index;
  const std::string& split;
  std::vector<Layer> layers;
  GraphIndex ix;
};

TaskRecord base_record(TaskKind k, const GraphContext& c) {
  TaskRecord r;
  r.task = k;
  r.split = c.split;
  r.graph = graph_key(c.g, c.index);
  r.service = c.g.service;
  return r;
}

void infill_attribute(const GraphContext& c, const TaskOptions& opt, Rng& rng,
                      std::vector<TaskRecord>* out, std::map<std::string, int64_t>* skipped) {
  for (const Layer& l : c.layers) {
    if (l.edges.size() < 2) {
      ++(*skipped)["layer with one call"];
      continue;
    }
    if (l.edges.size() > opt.max_layer_edges) {
      ++(*skipped)["layer wider than the encoding's layers"];
      continue;
    }
    TaskRecord r = base_record(TaskKind::kInfillAttribute, c);
    r.caller = l.start_node;
    size_t target = static_cast<size_t>(rng.range(0, static_cast<int64_t>(l.edges.size()) - 1));
    bool hide_type = rng.chance(0.5);
    std::string q = "Predict a missing element in the following partial call graph.\n";
    q += layer_header(l.start_node, c.g.service, layer_caller(c.g, l), true, rng) + "\n<edges>\n";
    for (size_t i = 0; i < l.edges.size(); ++i) {
      const Edge& e = c.g.edges[l.edges[i]];
      q += (i == target ? edge_line_missing(e, hide_type, rng) : edge_line(e, rng)) + "\n";
    }
    q += "</edges>\n";
    const Edge& t = c.g.edges[l.edges[target]];
    r.question = std::move(q);
    r.attribute = hide_type ? "type" : "destination";
    r.answer = hide_type ? std::string(call_type_name(t.type)) : t.callee;
    r.known = hide_type ? t.callee : std::string(call_type_name(t.type));
    out->push_back(std::move(r));
  }
}

void infill_call(const GraphContext& c, const TaskOptions& opt, Rng& rng,
                 std::vector<TaskRecord>* out, std::map<std::string, int64_t>* skipped) {
  // The layer of each parent call.
  std::map<size_t, const Layer*> child_layer;
  for (const Layer& l : c.layers)
    if (l.parent != GraphIndex::kNone) child_layer[l.parent] = &l;
  for (const Layer& l : c.layers) {
    for (size_t ei : l.edges) {
      auto it = child_layer.find(ei);
      if (it == child_layer.end()) continue;  // no child layer to connect
      const Layer& child = *it->second;
      if (l.edges.size() > opt.max_layer_edges || child.edges.size() > opt.max_layer_edges) {
        ++(*skipped)["layer wider than the encoding's layers"];
        continue;
      }
      TaskRecord r = base_record(TaskKind::kInfillCall, c);
      r.caller = l.start_node;
      std::string q = "Predict a missing edge to connect the two layers.\n";
      q += layer_header(l.start_node, c.g.service, layer_caller(c.g, l), true, rng) + "\n<edges>\n";
      for (size_t e : l.edges)
        q += (e == ei ? "(" + std::string(kMissing) + ")" : edge_line(c.g.edges[e], rng)) + "\n";
      q += "</edges>\nChild layer:\n";
      q += layer_header(child.start_node, c.g.service, &l.start_node, false, rng) + "\n<edges>\n";
      CallTruth truth;
      for (size_t e : child.edges) {
        q += edge_line(c.g.edges[e], rng) + "\n";
        truth.children.emplace_back(c.g.edges[e].start_ms, c.g.edges[e].finish_ms);
      }
      q += "</edges>\n";
      const Edge& t = c.g.edges[ei];
      truth.edge_id = last_component(t.id);
      truth.destination = t.callee;
      truth.type = std::string(call_type_name(t.type));
      truth.start_ms = t.start_ms;
      truth.finish_ms = t.finish_ms;
      if (l.parent != GraphIndex::kNone) truth.limit = c.g.edges[l.parent].finish_ms;
      r.question = std::move(q);
      r.answer = format_edge(edge_text(t, false), nullptr);
      r.call = std::move(truth);
      out->push_back(std::move(r));
    }
  }
}

void predict_latency(const GraphContext& c, const TaskRules& rules, Rng& rng,
                     std::vector<TaskRecord>* out, std::map<std::string, int64_t>* skipped) {
  auto th = rules.threshold.find(c.g.service);
  if (th == rules.threshold.end()) {
    ++(*skipped)["graph whose service has no latency threshold (too few train graphs)"];
    return;
  }
  TaskRecord r = base_record(TaskKind::kPredictLatency, c);
  r.caller = c.layers.empty() ? "" : c.layers.front().start_node;
  std::string t;
  for (const Layer& l : c.layers) {
    t += layer_header(l.start_node, c.g.service, layer_caller(c.g, l), true, rng) + "\n<edges>\n";
    for (size_t e : l.edges) t += edge_line_no_finish(c.g.edges[e], rng) + "\n";
    t += "</edges>\n";
  }
  r.text = std::move(t);
  r.label = c.g.latency() >= th->second ? 1 : 0;
  out->push_back(std::move(r));
}

void predict_uncommon(const GraphContext& c, const TaskRules& rules, const TaskOptions& opt,
                      Rng& rng, std::vector<TaskRecord>* out,
                      std::map<std::string, int64_t>* skipped) {
  if (!rules.services.count(c.g.service)) {
    ++(*skipped)["graph whose service is not in the train split"];
    return;
  }
  for (const Layer& l : c.layers) {
    // Prefix before the first rare call among the first prefix_limit calls;
    // -1 when there is none (a negative; its prefix length is drawn later).
    int64_t prefix = -1;
    for (size_t i = 0; i < l.edges.size() && static_cast<int64_t>(i) < opt.prefix_limit; ++i) {
      if (rules.is_rare(c.g.service, c.g.edges[l.edges[i]])) {
        prefix = static_cast<int64_t>(i);
        break;
      }
    }
    TaskRecord r = base_record(TaskKind::kPredictUncommon, c);
    r.caller = l.start_node;
    r.label = prefix >= 0 ? 1 : 0;
    // The text is completed once the prefix length is known (text holds the
    // layer's header, "known" its edge lines separated by '\n').
    r.text =
        "Predict whether the graph will include an edge not commonly seen given the "
        "following partial layers.\n" +
        layer_header(l.start_node, c.g.service, layer_caller(c.g, l), true, rng) + "\n<edges>\n";
    std::string lines;
    for (size_t i = 0; i < l.edges.size(); ++i) {
      if (static_cast<int64_t>(i) >= opt.prefix_limit) break;
      lines += edge_line(c.g.edges[l.edges[i]], rng) + "\n";
    }
    r.known = std::move(lines);
    r.attribute = std::to_string(prefix);
    out->push_back(std::move(r));
  }
  (void)skipped;
}

// Keeps the first k edge lines of `lines`.
std::string first_lines(const std::string& lines, int64_t k) {
  size_t pos = 0;
  for (int64_t i = 0; i < k && pos < lines.size(); ++i) {
    size_t nl = lines.find('\n', pos);
    pos = nl == std::string::npos ? lines.size() : nl + 1;
  }
  return lines.substr(0, pos);
}

// 1:1 classes by down-sampling the majority, then a cap keeping the balance;
// the kept records stay in their order.
std::vector<TaskRecord> balance(std::vector<TaskRecord> recs, bool do_balance, int64_t cap,
                                Rng& rng) {
  std::vector<size_t> pos, neg;
  for (size_t i = 0; i < recs.size(); ++i) (recs[i].label == 1 ? pos : neg).push_back(i);
  size_t np = pos.size(), nn = neg.size();
  if (do_balance) np = nn = std::min(pos.size(), neg.size());
  if (cap > 0 && static_cast<int64_t>(np + nn) > cap) {
    if (do_balance) {
      np = nn = static_cast<size_t>(cap / 2);
    } else {
      double f = static_cast<double>(cap) / static_cast<double>(np + nn);
      np = static_cast<size_t>(std::floor(static_cast<double>(np) * f));
      nn = static_cast<size_t>(cap) - np;
    }
  }
  rng.shuffle(pos.begin(), pos.end());
  rng.shuffle(neg.begin(), neg.end());
  std::vector<size_t> keep(pos.begin(), pos.begin() + static_cast<long>(np));
  keep.insert(keep.end(), neg.begin(), neg.begin() + static_cast<long>(nn));
  std::sort(keep.begin(), keep.end());
  std::vector<TaskRecord> out;
  for (size_t i : keep) out.push_back(std::move(recs[i]));
  return out;
}

CallTruth truth_from_json(const nlohmann::json& j) {
  CallTruth t;
  t.edge_id = j.at("edge_id").get<std::string>();
  t.destination = j.at("destination").get<std::string>();
  t.type = j.at("type").get<std::string>();
  t.start_ms = j.at("start").get<int64_t>();
  t.finish_ms = j.at("finish").get<int64_t>();
  for (const auto& c : j.at("children"))
    t.children.emplace_back(c.at(0).get<int64_t>(), c.at(1).get<int64_t>());
  if (j.contains("limit") && !j["limit"].is_null()) t.limit = j["limit"].get<int64_t>();
  return t;
}

}  // namespace

std::string_view task_kind_name(TaskKind k) { return kKindNames[static_cast<size_t>(k)]; }

std::optional<TaskKind> parse_task_kind(std::string_view s) {
  for (size_t i = 0; i < kKindNames.size(); ++i)
    if (kKindNames[i] == s) return static_cast<TaskKind>(i);
  return std::nullopt;
}

std::string task_prompt(const std::string& question) {
  return "### Question: " + question + "\n ### Answer: \n";
}

int64_t nearest_rank(std::vector<int64_t> xs, double q) {
  std::sort(xs.begin(), xs.end());
  size_t i = static_cast<size_t>(std::floor(q * static_cast<double>(xs.size())));
  return xs[std::min(i, xs.size() - 1)];
}

TaskRules TaskRules::fit(const std::vector<const CallGraph*>& train, double percentile,
                         int64_t min_graphs, double rare_fraction) {
  TaskRules r;
  r.percentile = percentile;
  r.min_graphs = min_graphs;
  r.rare_fraction = rare_fraction;
  std::map<std::string, std::vector<int64_t>> lat;
  std::map<std::string, std::map<std::array<std::string, 3>, int64_t>> calls;  // graphs containing
  for (const CallGraph* g : train) {
    r.services.insert(g->service);
    lat[g->service].push_back(g->latency());
    std::set<std::array<std::string, 3>> seen;
    for (const Edge& e : g->edges)
      seen.insert({e.caller, std::string(call_type_name(e.type)), e.callee});
    for (const auto& t : seen) ++calls[g->service][t];
  }
  for (auto& [s, xs] : lat)
    if (static_cast<int64_t>(xs.size()) >= min_graphs)
      r.threshold[s] = nearest_rank(xs, percentile);
  for (auto& [s, m] : calls) {
    double n = static_cast<double>(lat[s].size());
    auto& common = r.common[s];
    for (auto& [t, k] : m)
      if (static_cast<double>(k) / n >= rare_fraction) common.insert(t);
  }
  return r;
}

bool TaskRules::is_rare(const std::string& service, const Edge& e) const {
  if (!services.count(service)) return false;
  auto it = common.find(service);
  return it == common.end() ||
         !it->second.count({e.caller, std::string(call_type_name(e.type)), e.callee});
}

nlohmann::json TaskRules::to_json() const {
  nlohmann::json j;
  j["percentile"] = percentile;
  j["min_graphs"] = min_graphs;
  j["rare_fraction"] = rare_fraction;
  j["threshold"] = threshold;
  nlohmann::json cj = nlohmann::json::object();
  for (const auto& [s, set] : common) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& t : set) a.push_back({t[0], t[1], t[2]});
    cj[s] = a;
  }
  j["common"] = cj;
  j["services"] = services;
  return j;
}

TaskRules TaskRules::from_json(const nlohmann::json& j, const std::string& file) {
  try {
    TaskRules r;
    r.percentile = j.at("percentile").get<double>();
    r.min_graphs = j.at("min_graphs").get<int64_t>();
    r.rare_fraction = j.at("rare_fraction").get<double>();
    r.threshold = j.at("threshold").get<std::map<std::string, int64_t>>();
    for (const auto& [s, a] : j.at("common").items())
      for (const auto& t : a)
        r.common[s].insert(
            {t.at(0).get<std::string>(), t.at(1).get<std::string>(), t.at(2).get<std::string>()});
    r.services = j.at("services").get<std::set<std::string>>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, 0, std::string("expected task rules (tracelm tasks make): ") + e.what());
  }
}

nlohmann::json record_to_json(const TaskRecord& r) {
  nlohmann::json j;
  j["task"] = std::string(task_kind_name(r.task));
  j["split"] = r.split;
  j["graph"] = r.graph;
  j["service"] = r.service;
  j["caller"] = r.caller;
  if (is_infill(r.task)) {
    j["question"] = r.question;
    j["answer"] = r.answer;
  } else {
    j["text"] = r.text;
    j["label"] = r.label;
  }
  if (r.task == TaskKind::kInfillAttribute) {
    j["attribute"] = r.attribute;
    j["known"] = r.known;
  }
  if (r.call) {
    const CallTruth& t = *r.call;
    nlohmann::json c;
    c["edge_id"] = t.edge_id;
    c["destination"] = t.destination;
    c["type"] = t.type;
    c["start"] = t.start_ms;
    c["finish"] = t.finish_ms;
    c["children"] = nlohmann::json::array();
    for (auto [s, f] : t.children) c["children"].push_back({s, f});
    c["limit"] = t.limit ? nlohmann::json(*t.limit) : nlohmann::json(nullptr);
    j["call"] = c;
  }
  return j;
}

TaskRecord record_from_json(const nlohmann::json& j, const std::string& file, uint64_t line) {
  TaskRecord r;
  try {
    auto k = parse_task_kind(j.at("task").get<std::string>());
    if (!k)
      throw InputError(file, line,
                       "unknown task \"" + j.at("task").get<std::string>() +
                           "\" (expected infill-attribute, infill-call, predict-latency or "
                           "predict-uncommon)");
    r.task = *k;
    r.split = j.at("split").get<std::string>();
    if (r.split != "train" && r.split != "val" && r.split != "test")
      throw InputError(file, line, "split must be train, val or test, got \"" + r.split + "\"");
    r.graph = j.at("graph").get<std::string>();
    r.service = j.at("service").get<std::string>();
    r.caller = j.value("caller", "");
    if (is_infill(r.task)) {
      r.question = j.at("question").get<std::string>();
      r.answer = j.at("answer").get<std::string>();
    } else {
      r.text = j.at("text").get<std::string>();
      r.label = j.at("label").get<int>();
      if (r.label != 0 && r.label != 1) throw InputError(file, line, "label must be 0 or 1");
    }
    if (r.task == TaskKind::kInfillAttribute) {
      r.attribute = j.at("attribute").get<std::string>();
      if (r.attribute != "type" && r.attribute != "destination")
        throw InputError(file, line, "attribute must be type or destination");
      r.known = j.at("known").get<std::string>();
    }
    if (r.task == TaskKind::kInfillCall) r.call = truth_from_json(j.at("call"));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file, line, std::string("expected a task record: ") + e.what());
  }
  return r;
}

std::vector<TaskRecord> read_task_file(const std::string& path) {
  std::vector<TaskRecord> out;
  for_each_json_line(
      path, "expected a JSON object (one task record per line)",
      [&](const nlohmann::json& j, uint64_t n) { out.push_back(record_from_json(j, path, n)); });
  return out;
}

void write_task_file(const std::string& path, const std::vector<TaskRecord>& records) {
  AtomicFile f(path);
  for (const TaskRecord& r : records) f.write(record_to_json(r).dump() + "\n");
  f.close();
}

TaskSet make_tasks(TaskKind kind, const std::vector<CallGraph>& corpus, const TaskOptions& opt,
                   const TaskRules* rules_from) {
  TaskSet set;
  bool infill = is_infill(kind);
  double ftrain = opt.train_fraction >= 0 ? opt.train_fraction : (infill ? 0.2 : 0.8);
  double fval = opt.val_fraction >= 0 ? opt.val_fraction : (infill ? 0.0 : 0.1);
  if (ftrain < 0 || fval < 0 || ftrain + fval > 1)
    throw std::invalid_argument("train and val fractions must be in [0, 1] with a sum <= 1");
  int64_t max_train = opt.max_train, max_test = opt.max_test;
  if (max_train < 0)
    max_train = kind == TaskKind::kInfillAttribute ? 1200
                : kind == TaskKind::kInfillCall    ? 1000
                                                   : 0;
  if (max_test < 0)
    max_test = kind == TaskKind::kInfillAttribute ? 6000 : kind == TaskKind::kInfillCall ? 5000 : 0;

  // Split by graph (non-empty graphs only).
  std::vector<size_t> order;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (corpus[i].edges.empty()) {
      ++set.skipped["empty graph"];
      continue;
    }
    order.push_back(i);
  }
  Rng split_rng(opt.seed);
  split_rng.shuffle(order.begin(), order.end());
  if (rules_from) {
    set.train_graphs = order;
  } else {
    size_t n = order.size();
    size_t ntr = static_cast<size_t>(std::llround(ftrain * static_cast<double>(n)));
    size_t nva =
        std::min(n - ntr, static_cast<size_t>(std::llround(fval * static_cast<double>(n))));
    set.train_graphs.assign(order.begin(), order.begin() + static_cast<long>(ntr));
    set.val_graphs.assign(order.begin() + static_cast<long>(ntr),
                          order.begin() + static_cast<long>(ntr + nva));
    set.test_graphs.assign(order.begin() + static_cast<long>(ntr + nva), order.end());
  }
  if (rules_from) {
    set.rules = *rules_from;
  } else {
    std::vector<const CallGraph*> train;
    for (size_t i : set.train_graphs) train.push_back(&corpus[i]);
    set.rules = TaskRules::fit(train, opt.percentile, opt.min_graphs, opt.rare_fraction);
  }

  const std::array<std::pair<const char*, const std::vector<size_t>*>, 3> splits = {
      {{"train", &set.train_graphs}, {"val", &set.val_graphs}, {"test", &set.test_graphs}}};
  for (auto [name, graphs] : splits) {
    std::string split = name;
    std::vector<TaskRecord> recs;
    for (size_t gi : *graphs) {
      CallGraph g = corpus[gi];
      if (!g.is_canonical()) g.canonicalize();
      GraphContext c{g, gi, split, g.layers(), g.index()};
      Rng rng(opt.seed * 1000003ull + gi * 7919ull + 101);
      switch (kind) {
        case TaskKind::kInfillAttribute:
          infill_attribute(c, opt, rng, &recs, &set.skipped);
          break;
        case TaskKind::kInfillCall:
          infill_call(c, opt, rng, &recs, &set.skipped);
          break;
        case TaskKind::kPredictLatency:
          predict_latency(c, set.rules, rng, &recs, &set.skipped);
          break;
        case TaskKind::kPredictUncommon:
          predict_uncommon(c, set.rules, opt, rng, &recs, &set.skipped);
          break;
      }
    }
    Rng bal(opt.seed * 31ull + split.size());
    if (kind == TaskKind::kPredictUncommon) {
      // Negatives get a prefix length drawn from the positives' prefix lengths.
      std::vector<int64_t> lengths;
      for (const TaskRecord& r : recs)
        if (r.label == 1) lengths.push_back(std::stoll(r.attribute));
      for (TaskRecord& r : recs) {
        int64_t k = r.label == 1      ? std::stoll(r.attribute)
                    : lengths.empty() ? opt.prefix_limit
                                      : lengths[static_cast<size_t>(bal.range(
                                            0, static_cast<int64_t>(lengths.size()) - 1))];
        r.text += first_lines(r.known, k) + "</edges>\n";
        r.known.clear();
        r.attribute.clear();
      }
    }
    int64_t cap = split == "train" ? max_train : split == "test" ? max_test : 0;
    if (!infill) {
      size_t before = recs.size();
      recs = balance(std::move(recs), opt.balance, cap, bal);
      if (recs.size() < before)
        set.skipped["record dropped to balance the classes or to the " + split + " cap"] +=
            static_cast<int64_t>(before - recs.size());
    } else if (cap > 0 && static_cast<int64_t>(recs.size()) > cap) {
      set.skipped["record over the " + split + " cap"] += static_cast<int64_t>(recs.size()) - cap;
      recs.resize(static_cast<size_t>(cap));
    }
    for (TaskRecord& r : recs) set.records.push_back(std::move(r));
  }
  return set;
}

}  // namespace tracelm
