#include "encode/instruction.h"

#include <algorithm>

#include <fmt/format.h>

namespace tracelm {

namespace {

constexpr std::string_view kSplitFirst =
    "num_current_edges is over the threshold, so split the subgraph instructions into smaller "
    "subgraph instructions";

std::string sub_line(uint64_t k, const Attributes& a, Rng* rng) {
  return "<subgraph of edge_id " + std::to_string(k) + ">" + format_attributes(a, rng, 0.0, {}) +
         "</subgraph>";
}

// Sentences #1-#12 of the inventory (docs/encodings.md §4.3) that apply to
// the requirement `req` of a layer, in the inventory's order; each one that
// applies is kept when keep() says so (called once per applicable sentence,
// in that order: the encoder draws there).
template <class Keep>
void standard_sentences(const Attributes& req, const std::string& start_node, bool root,
                        std::optional<int64_t> num_subgraphs, Keep keep,
                        std::vector<std::string>& s) {
  auto attr = [&](const char* n) { return req.get(n); };
  if (attr("num_current_edges") && keep())
    s.push_back(
        fmt::format("generate {} edges following num_current_edges", *attr("num_current_edges")));
  if (attr("start_edge_id") && keep())
    s.push_back(
        fmt::format("the first edge_id should be start_edge_id {}", *attr("start_edge_id")));
  if (keep()) s.push_back("for all edges, communication start time <= communication finish time");
  if (keep()) s.push_back(fmt::format("copy caller from requirement's start_node:{}", start_node));
  if (attr("start_communication_at") && keep())
    s.push_back(fmt::format(
        "the first start_communication_at should be requirement's start_communication_at {}",
        *attr("start_communication_at")));
  if (attr("latency") && keep())
    s.push_back(fmt::format(
        "In each edge, communication start time should NOT be greater than latency {} milliseconds",
        *attr("latency")));
  if (attr("latency") && keep())
    s.push_back(fmt::format("Also, communication should finish before latency {} milliseconds",
                            *attr("latency")));
  if (!root && num_subgraphs && keep()) {
    if (*num_subgraphs == 0) {
      s.push_back("no subgraph to generate");
    } else {
      s.push_back(fmt::format("generate {} number of subgraphs", *num_subgraphs));
    }
  }
  if (root) {
    if (!attr("num_edges") && keep()) s.push_back("The total number of edges is not provided");
    if (!attr("remaining_depth") && keep()) s.push_back("The depth information is not provided");
    if (!attr("num_subgraphs") && keep())
      s.push_back("Generate subgraph instructions if necessary");
  }
}

std::string rare_call_sentence(const std::string& caller, const std::string& callee,
                               std::string_view type) {
  return fmt::format("Include an edge from {} to {} with {} type", caller, callee, type);
}

// Natural-language conditions of a layer sample (docs/encodings.md §4.3).
std::vector<std::string> layer_sentences(const CallGraph& g, const std::vector<Unit>& units,
                                         size_t u, const Attributes& req,
                                         const ConditionStats* stats, const InstructionOptions& opt,
                                         Rng& rng) {
  const Unit& unit = units[u];
  bool root = u == 0;
  std::vector<std::string> s;
  standard_sentences(
      req, *unit.cond.start_node, root, unit.cond.num_subgraphs,
      [&] { return rng.chance(opt.p_keep_sentence); }, s);
  if (root) {
    if (!req.has("latency") && stats) {
      if (stats->is_high_latency(g.service, g.latency())) {
        s.push_back("Build a call graph with high latency");
      } else if (rng.chance(opt.p_distribution_sentence)) {
        s.push_back("Build a call graph with latencies based on distributions");
      }
    }
  }
  if (stats) {
    std::vector<size_t> rare;
    for (size_t i : unit.edges) {
      const Edge& e = g.edges[i];
      if (stats->is_rare_call(g.service, e.caller, e.callee, e.type)) rare.push_back(i);
    }
    if (!rare.empty() && rng.chance(opt.p_rare_sentence)) {
      const Edge& e = g.edges[rare[rng.next() % rare.size()]];
      s.push_back(rare_call_sentence(e.caller, e.callee, call_type_name(e.type)));
    }
  }
  rng.shuffle(s.begin(), s.end());
  return s;
}

// The three sentences of a split sample after kSplitFirst, in the inventory's order.
std::vector<std::string> split_conditions(const std::string& start_node) {
  return {
      "for all subgraph instructions, start_communication_at <= latency",
      "for all subgraph instructions, latency should not be larger than the requirement's latency",
      fmt::format(
          "When splitting the subgraph instructions, copy start_node:{} from the requirement",
          start_node)};
}

std::vector<std::string> split_sentences(const Unit& unit, Rng& rng) {
  std::vector<std::string> s = split_conditions(*unit.cond.start_node);
  rng.shuffle(s.begin(), s.end());
  s.insert(s.begin(), std::string(kSplitFirst));
  return s;
}

}  // namespace

std::vector<std::string> request_sentences(const Attributes& req, bool root, bool split,
                                           const std::array<std::string, 3>& rare_call,
                                           bool high_latency) {
  const std::string* node = req.get("start_node");
  std::string start_node = node ? *node : std::string(kUserNode);
  std::vector<std::string> s;
  if (split) {
    s = split_conditions(start_node);
    s.insert(s.begin(), std::string(kSplitFirst));
    return s;
  }
  standard_sentences(
      req, start_node, root, req.get_int("num_subgraphs"), [] { return true; }, s);
  if (root && !req.has("latency") && high_latency)
    s.push_back("Build a call graph with high latency");
  if (!rare_call[0].empty())
    s.push_back(rare_call_sentence(rare_call[0], rare_call[1], rare_call[2]));
  return s;
}

std::string format_question(const std::string& requirement_line,
                            const std::vector<std::string>& sentences, bool split) {
  std::string q(kQuestionHead);
  q += "\nRequirements:\n";
  q += requirement_line;
  q += '\n';
  if (!split) q += "Conditions:\n";
  for (const std::string& s : sentences) {
    q += s;
    q += '\n';
  }
  q += '\n';
  q += kAnswerHead;
  q += '\n';
  return q;
}

std::vector<std::string> scratchpad_lines(const ParsedUnit& unit, Rng* shuffle) {
  std::vector<std::string> out;
  // The unit's true num_edges and remaining_depth, from its own content.
  int64_t children = 0, rd = 0;
  std::vector<LayerConditions> conds(unit.subs.size());
  for (size_t i = 0; i < unit.subs.size(); ++i) {
    std::string e;
    LayerConditions::from_attributes(unit.subs[i].second, &conds[i], &e);
    children += conds[i].num_edges.value_or(0);
    rd = std::max(rd, 1 + conds[i].remaining_depth.value_or(0));
  }
  bool layer = unit.kind == Unit::Kind::kLayer;
  int64_t remaining = children;
  if (layer) {
    int64_t first = 0, last = 0;
    parse_int(unit.edges.front().edge_id, &first);
    parse_int(unit.edges.back().edge_id, &last);
    int64_t n = last - first + 1;
    int64_t m = static_cast<int64_t>(unit.edges.size()) + children;
    out.push_back(scratchpad::generated_edges(last, first));
    out.push_back(scratchpad::generated_out_of(n, m));
    out.push_back(scratchpad::remaining_after_layer(m, n));
    if (unit.subs.empty()) {
      out.emplace_back(scratchpad::kFinish);
      out.emplace_back(tag::kLayerEnd);
      return out;
    }
    out.push_back("");
    std::string gen(scratchpad::kGenerateSubgraphs);
    for (size_t i = 0; i < unit.subs.size(); ++i)
      gen +=
          (i ? std::string(scratchpad::kListSeparator) : "") + std::to_string(unit.subs[i].first);
    out.push_back(gen);
    remaining = m - n;
  }
  for (size_t i = 0; i < unit.subs.size(); ++i) {
    uint64_t k = unit.subs[i].first;
    std::vector<std::string> block = {scratchpad::budget(remaining)};
    if (layer) {
      std::string dst = "?";
      for (const EdgeText& e : unit.edges)
        if (e.edge_id == std::to_string(k)) dst = e.destination;
      block.push_back(scratchpad::copy_start_node(static_cast<int64_t>(k), dst));
      if (conds[i].remaining_depth.value_or(-1) == rd - 1) block.push_back(scratchpad::depth(rd));
    }
    if (shuffle) shuffle->shuffle(block.begin(), block.end());
    out.emplace_back(scratchpad::kConstraints);
    out.insert(out.end(), block.begin(), block.end());
    out.push_back(sub_line(k, unit.subs[i].second, shuffle));
    int64_t c = conds[i].num_edges.value_or(0);
    out.push_back(scratchpad::now_remaining(remaining, c));
    remaining -= c;
  }
  out.push_back(std::string(scratchpad::kFinish) +
                std::string(layer ? tag::kLayerEnd : tag::kSplitEnd));
  return out;
}

std::vector<InstructionSample> encode_instruction(const CallGraph& graph,
                                                  const ConditionStats* stats,
                                                  const InstructionOptions& opt, Rng& rng) {
  CallGraph g = graph;
  if (!g.is_canonical()) g.canonicalize();
  std::vector<Unit> units = plan_units(g, rng);
  std::vector<InstructionSample> out;
  Rng* shuf = opt.recursive.shuffle ? &rng : nullptr;
  for (size_t u = 0; u < units.size(); ++u) {
    const Unit& unit = units[u];
    std::string req = format_conditions(unit.cond, u == 0, opt.recursive, rng);
    if (u == 0) req.erase(0, kGenerateGraph.size());
    Attributes req_attrs;
    std::string e;
    parse_attributes(req, &req_attrs, &e);
    bool split = unit.kind == Unit::Kind::kSplit;
    std::vector<std::string> sentences =
        split ? split_sentences(unit, rng)
              : layer_sentences(g, units, u, req_attrs, stats, opt, rng);
    InstructionSample s;
    s.question = format_question(req, sentences, split);
    // The answer: the body, with the scratchpad in place of the sub lines.
    ParsedUnit body;
    body.kind = unit.kind;
    for (const auto& [k, child] : unit.subs)
      body.subs.emplace_back(k, units[child].cond.to_attributes());
    if (split) {
      s.answer = "<split>\n";
    } else {
      s.answer = "<layer>\n<edges>\n";
      for (size_t i : unit.edges) {
        const Edge& ed = g.edges[i];
        EdgeText t = edge_text(ed, /*tabular=*/false);
        s.answer += format_edge(t, shuf);
        s.answer += '\n';
        body.edges.push_back(std::move(t));
      }
      s.answer += "</edges>\n";
    }
    for (const std::string& line : scratchpad_lines(body, shuf)) {
      s.answer += line;
      s.answer += '\n';
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool parse_instruction(std::string_view text, ParsedInstruction* out, ParseError* err,
                       size_t* consumed) {
  LineScanner sc(text);
  *out = ParsedInstruction{};
  std::string e;
  auto fail = [&](std::string what) {
    *err = ParseError{std::move(what), sc.line_offset()};
    return false;
  };
  auto trim_right = [](std::string_view l) {
    while (!l.empty() && l.back() == ' ') l.remove_suffix(1);
    return l;
  };
  if (sc.next() != kQuestionHead) return fail("expected the '### Question:' line");
  if (sc.done() || sc.next() != "Requirements:") return fail("expected 'Requirements:'");
  if (sc.done()) return fail("expected the requirement attributes after 'Requirements:'");
  if (!parse_attributes(sc.next(), &out->requirements, &e)) return fail(e);
  if (!sc.done() && sc.peek() == "Conditions:") sc.next();
  while (true) {
    if (sc.done()) return fail("expected a blank line and '### Answer:'");
    std::string_view l = sc.next();
    if (l.empty()) break;
    if (out->sentences.size() >= 64) return fail("more than 64 condition sentences");
    out->sentences.emplace_back(l);
  }
  if (sc.done() || trim_right(sc.next()) != trim_right(kAnswerHead))
    return fail("expected ' ### Answer: '");
  if (sc.done()) return fail("expected '<layer>' or '<split>'");
  std::string_view open = sc.next();
  ParsedUnit& u = out->unit;
  std::string_view close;
  if (open == "<layer>") {
    u.kind = Unit::Kind::kLayer;
    close = "</layer>";
    if (!parse_layer_edges(sc, &u.edges, err)) return false;
  } else if (open == "<split>") {
    u.kind = Unit::Kind::kSplit;
    close = "</split>";
  } else {
    return fail("expected '<layer>' or '<split>'");
  }
  while (true) {
    if (sc.done()) return fail("expected '" + std::string(close) + "' before the end of the text");
    std::string_view l = sc.next();
    if (out->scratchpad.size() >= 100000) return fail("scratchpad too long");
    out->scratchpad.emplace_back(l);
    if (l.size() >= close.size() && l.substr(l.size() - close.size()) == close) break;
    if (l.substr(0, 21) == "<subgraph of edge_id ") {
      size_t gt = l.find('>');
      int64_t k;
      constexpr std::string_view kEnd = "</subgraph>";
      if (gt == std::string_view::npos || !parse_int(l.substr(21, gt - 21), &k) || k < 0 ||
          l.size() < gt + 1 + kEnd.size() || l.substr(l.size() - kEnd.size()) != kEnd)
        return fail("malformed <subgraph> line");
      Attributes a;
      if (!parse_attributes(l.substr(gt + 1, l.size() - gt - 1 - kEnd.size()), &a, &e))
        return fail(e);
      u.subs.emplace_back(static_cast<uint64_t>(k), std::move(a));
    }
  }
  if (consumed) *consumed = sc.offset();
  return true;
}

bool decode_instruction_graph(std::string_view text, CallGraph* out, ParseError* err) {
  // Rewrite as recursive text (requirement line, unit body) and decode that.
  std::string rec;
  size_t pos = 0;
  while (pos < text.size()) {
    ParsedInstruction p;
    size_t used = 0;
    if (!parse_instruction(text.substr(pos), &p, err, &used)) {
      err->offset += pos;
      return false;
    }
    rec += pos == 0 ? std::string(kGenerateGraph) : std::string();
    rec += format_attributes(p.requirements, nullptr, 0, {});
    rec += '\n';
    if (p.unit.kind == Unit::Kind::kSplit) {
      rec += "<split>\n";
    } else {
      rec += "<layer>\n<edges>\n";
      for (const EdgeText& e : p.unit.edges) rec += format_edge(e, nullptr) + "\n";
      rec += "</edges>\n";
    }
    for (const auto& [k, a] : p.unit.subs) rec += sub_line(k, a, nullptr) + "\n";
    rec += p.unit.kind == Unit::Kind::kSplit ? "</split>\n" : "</layer>\n";
    pos += used;
  }
  size_t used = 0;
  if (!decode_recursive(rec, out, err, &used)) return false;
  if (used != rec.size()) {
    *err = ParseError{"samples after the end of the graph", text.size()};
    return false;
  }
  return true;
}

}  // namespace tracelm
