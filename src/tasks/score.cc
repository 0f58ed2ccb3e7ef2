#include "tasks/score.h"

#include <algorithm>
#include <limits>

#include "encode/text_format.h"

namespace tracelm {

namespace {

constexpr char kSep = '\x1f';

std::string key(std::initializer_list<std::string_view> parts) {
  std::string k;
  for (std::string_view p : parts) {
    if (!k.empty()) k += kSep;
    k += p;
  }
  return k;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::string answer_line(std::string_view answer) {
  size_t start = answer.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return "";
  answer.remove_prefix(start);
  return std::string(trim(answer.substr(0, answer.find('\n'))));
}

bool attribute_correct(const TaskRecord& r, std::string_view answer) {
  return answer_line(answer) == r.answer;
}

CallCheck check_call(const CallTruth& t, std::string_view answer) {
  CallCheck c;
  EdgeText e;
  std::string err;
  std::string line = answer_line(answer);
  if (!parse_edge(line, false, &e, &err)) return c;
  if (e.destination.empty() || e.type.empty() || e.edge_id.empty()) return c;
  c.parsed = true;
  c.destination = e.destination == t.destination;
  c.type = e.type == t.type;
  c.ordered = e.start_ms <= e.finish_ms;
  c.contains_children = true;
  for (auto [s, f] : t.children)
    c.contains_children = c.contains_children && e.start_ms <= s && e.finish_ms >= f;
  c.within_limit = !t.limit || e.finish_ms <= *t.limit;
  return c;
}

double TaskScore::balanced_accuracy() const {
  int64_t p = true_positive + false_negative, q = true_negative + false_positive;
  if (!p || !q) return accuracy();
  return 0.5 * (static_cast<double>(true_positive) / static_cast<double>(p) +
                static_cast<double>(true_negative) / static_cast<double>(q));
}

nlohmann::json TaskScore::to_json() const {
  nlohmann::json j;
  j["task"] = task;
  j["n"] = n;
  j["correct"] = correct;
  j["accuracy"] = accuracy();
  if (task == "infill-attribute") {
    for (const auto& [a, nc] : per_attribute)
      j["per_attribute"][a] = {
          {"n", nc.first},
          {"correct", nc.second},
          {"accuracy",
           nc.first ? static_cast<double>(nc.second) / static_cast<double>(nc.first) : 0.0}};
  }
  if (task == "infill-call") {
    j["parsed"] = parsed;
    j["strict"] = strict;
    j["strict_accuracy"] = n ? static_cast<double>(strict) / static_cast<double>(n) : 0.0;
  }
  if (task == "predict-latency" || task == "predict-uncommon") {
    j["true_positive"] = true_positive;
    j["false_positive"] = false_positive;
    j["true_negative"] = true_negative;
    j["false_negative"] = false_negative;
    j["balanced_accuracy"] = balanced_accuracy();
    j["positive_rate"] =
        n ? static_cast<double>(true_positive + false_negative) / static_cast<double>(n) : 0.0;
  }
  return j;
}

TaskScore score_answers(const std::vector<const TaskRecord*>& records,
                        const std::vector<std::string>& answers) {
  if (records.size() != answers.size())
    throw std::invalid_argument("score_answers: " + std::to_string(answers.size()) +
                                " answers for " + std::to_string(records.size()) + " records");
  TaskScore s;
  for (size_t i = 0; i < records.size(); ++i) {
    const TaskRecord& r = *records[i];
    if (!is_infill(r.task)) throw std::invalid_argument("score_answers: not an infilling record");
    if (s.task.empty()) s.task = std::string(task_kind_name(r.task));
    ++s.n;
    if (r.task == TaskKind::kInfillAttribute) {
      bool ok = attribute_correct(r, answers[i]);
      s.correct += ok;
      auto& pa = s.per_attribute[r.attribute];
      ++pa.first;
      pa.second += ok;
    } else {
      if (!r.call) throw std::invalid_argument("score_answers: infill-call record without truth");
      CallCheck c = check_call(*r.call, answers[i]);
      s.parsed += c.parsed;
      s.correct += c.paper();
      s.strict += c.strict();
    }
  }
  return s;
}

TaskScore score_labels(const std::vector<const TaskRecord*>& records,
                       const std::vector<int>& predictions) {
  if (records.size() != predictions.size())
    throw std::invalid_argument("score_labels: " + std::to_string(predictions.size()) +
                                " predictions for " + std::to_string(records.size()) + " records");
  TaskScore s;
  for (size_t i = 0; i < records.size(); ++i) {
    const TaskRecord& r = *records[i];
    if (is_infill(r.task)) throw std::invalid_argument("score_labels: not a prediction record");
    if (s.task.empty()) s.task = std::string(task_kind_name(r.task));
    ++s.n;
    bool p = predictions[i] == 1, y = r.label == 1;
    s.correct += p == y;
    s.true_positive += p && y;
    s.false_positive += p && !y;
    s.true_negative += !p && !y;
    s.false_negative += !p && y;
  }
  return s;
}

bool parse_question(std::string_view q, std::vector<QuestionLayer>* out) {
  out->clear();
  LineScanner sc(q);
  bool in_edges = false;
  std::string_view pending_header;
  while (!sc.done()) {
    std::string_view line = sc.next();
    if (in_edges) {
      if (line == "</edges>") {
        in_edges = false;
        continue;
      }
      QuestionLayer& l = out->back();
      if (line == "([MISSING])") {
        l.missing = static_cast<int>(l.edges.size());
        continue;
      }
      EdgeText e;
      std::string err;
      if (!parse_edge(line, false, &e, &err)) return false;
      l.edges.push_back(std::move(e));
      continue;
    }
    if (line == "<edges>") {
      Attributes a;
      std::string err;
      if (pending_header.empty() || !parse_attributes(pending_header, &a, &err)) return false;
      QuestionLayer l;
      if (const std::string* v = a.get("start_node")) l.start_node = *v;
      if (const std::string* v = a.get("id")) l.service = *v;
      if (const std::string* v = a.get("caller")) l.caller = *v;
      out->push_back(std::move(l));
      in_edges = true;
      pending_header = {};
      continue;
    }
    pending_header = line;
  }
  return !in_edges && !out->empty();
}

std::string FrequencyBaseline::best(const Counts& c) {
  std::string b;
  int64_t n = -1;
  for (const auto& [v, k] : c)
    if (k > n) b = v, n = k;  // map order: ties keep the smaller value
  return b;
}

void FrequencyBaseline::add_call(const std::string& service, const std::string& caller,
                                 const std::string& type, const std::string& dest,
                                 bool has_children) {
  for (const std::string& k : {key({service, caller, type}), key({caller, type}), std::string()})
    ++dest_[k][dest];
  for (const std::string& k : {key({service, caller, dest}), key({caller, dest}), std::string()})
    ++type_[k][type];
  if (has_children)
    for (const std::string& k : {key({service, caller}), key({caller}), std::string()})
      ++call_[k][key({dest, type})];
}

void FrequencyBaseline::add_graph(const CallGraph& g) {
  GraphIndex ix = g.index();
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const Edge& e = g.edges[i];
    add_call(g.service, e.caller, std::string(call_type_name(e.type)), e.callee,
             !ix.children[i].empty());
  }
}

void FrequencyBaseline::add_record(const TaskRecord& r) {
  if (!is_infill(r.task)) {
    for (const std::string& k : {r.service, std::string("\x1f*")})
      ++label_[k][std::to_string(r.label)];
    return;
  }
  std::string q = r.question;
  if (r.task == TaskKind::kInfillAttribute) {
    size_t at = q.find(kMissing);
    if (at != std::string::npos) q.replace(at, kMissing.size(), r.answer);
  }
  std::vector<QuestionLayer> layers;
  if (!parse_question(q, &layers)) return;
  const QuestionLayer& parent = layers.front();
  for (const EdgeText& e : parent.edges)
    add_call(parent.service, parent.start_node, e.type, e.destination, false);
  if (r.task == TaskKind::kInfillCall && r.call) {
    add_call(parent.service, parent.start_node, r.call->type, r.call->destination, true);
    if (layers.size() > 1)
      for (const EdgeText& e : layers[1].edges)
        add_call(parent.service, r.call->destination, e.type, e.destination, false);
  }
}

std::string FrequencyBaseline::answer(const TaskRecord& r) const {
  auto lookup = [](const std::map<std::string, Counts>& m,
                   std::initializer_list<std::string> keys) -> std::string {
    for (const std::string& k : keys) {
      auto it = m.find(k);
      if (it != m.end() && !it->second.empty()) return best(it->second);
    }
    return "";
  };
  if (r.task == TaskKind::kInfillAttribute) {
    if (r.attribute == "destination")
      return lookup(dest_, {key({r.service, r.caller, r.known}), key({r.caller, r.known}), ""});
    return lookup(type_, {key({r.service, r.caller, r.known}), key({r.caller, r.known}), ""});
  }
  if (r.task != TaskKind::kInfillCall) return "";
  std::vector<QuestionLayer> layers;
  if (!parse_question(r.question, &layers)) return "";
  std::string dt = lookup(call_, {key({r.service, r.caller}), key({r.caller}), ""});
  size_t sep = dt.find(kSep);
  if (sep == std::string::npos) return "";
  EdgeText e;
  e.destination = dt.substr(0, sep);
  e.type = dt.substr(sep + 1);
  // Times that hold the child layer; the id after the previous call's.
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
  if (layers.size() > 1)
    for (const EdgeText& c : layers[1].edges)
      lo = std::min(lo, c.start_ms), hi = std::max(hi, c.finish_ms);
  if (lo > hi) lo = hi = 0;
  e.start_ms = lo;
  e.finish_ms = hi;
  const QuestionLayer& p = layers.front();
  int64_t id = p.start_node == "USER" ? 0 : 1;
  if (p.missing > 0) {
    int64_t prev = 0;
    if (parse_int(p.edges[static_cast<size_t>(p.missing - 1)].edge_id, &prev)) id = prev + 1;
  }
  e.edge_id = std::to_string(id);
  return format_edge(e, nullptr);
}

int FrequencyBaseline::predict(const TaskRecord& r) const {
  for (const std::string& k : {r.service, std::string("\x1f*")}) {
    auto it = label_.find(k);
    if (it != label_.end() && !it->second.empty()) return best(it->second) == "1" ? 1 : 0;
  }
  return 0;
}

std::vector<const TaskRecord*> split_records(const std::vector<TaskRecord>& records,
                                             std::string_view split, int64_t limit) {
  std::vector<const TaskRecord*> out;
  for (const TaskRecord& r : records)
    if (r.split == split && (limit <= 0 || static_cast<int64_t>(out.size()) < limit))
      out.push_back(&r);
  return out;
}

TaskScore frequency_baseline_score(const std::vector<TaskRecord>& records,
                                   const std::vector<CallGraph>& prior, int64_t limit) {
  FrequencyBaseline fb;
  for (const TaskRecord* r : split_records(records, "train")) fb.add_record(*r);
  for (const CallGraph& g : prior) fb.add_graph(g);
  std::vector<const TaskRecord*> test = split_records(records, "test", limit);
  if (test.empty()) throw std::invalid_argument("no test records");
  if (is_infill(test.front()->task)) {
    std::vector<std::string> answers;
    for (const TaskRecord* r : test) answers.push_back(fb.answer(*r));
    return score_answers(test, answers);
  }
  std::vector<int> labels;
  for (const TaskRecord* r : test) labels.push_back(fb.predict(*r));
  return score_labels(test, labels);
}

nlohmann::json task_results(const std::vector<TaskRecord>& records,
                            const std::vector<std::pair<std::string, TaskScore>>& scores) {
  nlohmann::json j;
  j["task"] = records.empty() ? "" : std::string(task_kind_name(records.front().task));
  j["n_train"] = split_records(records, "train").size();
  j["n_test"] = split_records(records, "test").size();
  j["results"] = nlohmann::json::array();
  for (const auto& [name, s] : scores) {
    nlohmann::json r = s.to_json();
    r["name"] = name;
    j["results"].push_back(r);
  }
  return j;
}

std::string format_task_table(const nlohmann::json& res) {
  std::string task = res.value("task", "");
  auto pct = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%6.1f%%", 100 * x);
    return std::string(b);
  };
  std::string extra = task == "infill-attribute" ? "   type  destination"
                      : task == "infill-call"    ? "   strict  parsed"
                                                 : "   balanced  pos.rate";
  char head[256];
  std::snprintf(head, sizeof head, "%s: %zu train / %zu test records\n%-22s %8s %8s%s\n",
                task.c_str(), res.value("n_train", size_t{0}), res.value("n_test", size_t{0}),
                "model", "n", "accuracy", extra.c_str());
  std::string out = head;
  for (const auto& r : res["results"]) {
    char line[256];
    std::snprintf(line, sizeof line, "%-22s %8lld %8s", r.value("name", "").c_str(),
                  static_cast<long long>(r.value("n", int64_t{0})),
                  pct(r.value("accuracy", 0.0)).c_str());
    out += line;
    if (task == "infill-attribute") {
      for (const char* a : {"type", "destination"}) {
        bool has = r.contains("per_attribute") && r["per_attribute"].contains(a);
        out += has ? " " + pct(r["per_attribute"][a].value("accuracy", 0.0)) : "       -";
        if (std::string(a) == "destination") out += "     ";
      }
    } else if (task == "infill-call") {
      out += "  " + pct(r.value("strict_accuracy", 0.0)) + " " +
             std::to_string(r.value("parsed", int64_t{0}));
    } else {
      out += "    " + pct(r.value("balanced_accuracy", 0.0)) + "  " +
             pct(r.value("positive_rate", 0.0));
    }
    out += "\n";
  }
  return out;
}

}  // namespace tracelm
