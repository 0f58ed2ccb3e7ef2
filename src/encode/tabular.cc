#include "encode/tabular.h"

namespace tracelm {

bool text_representable(const CallGraph& g) {
  if (!is_plain_name(g.service)) return false;
  for (const Edge& e : g.edges)
    if (!is_plain_name(e.caller) || !is_plain_name(e.callee)) return false;
  return true;
}

std::string encode_tabular(const CallGraph& g, const EncodeOptions& opt, Rng& rng) {
  Attributes a;
  a.set("id", g.service);
  a.set("latency", g.latency());
  a.set("num_edges", static_cast<int64_t>(g.num_edges()));
  a.set("depth", g.depth());
  std::string s(kGenerateGraph);
  s += format_attributes(a, opt.shuffle || opt.p_drop > 0 ? &rng : nullptr, opt.p_drop, {"id"});
  s += "\n<edges>\n";
  for (const Edge& e : g.edges) {
    s += format_edge(edge_text(e, /*tabular=*/true), opt.shuffle ? &rng : nullptr);
    s += '\n';
  }
  s += "</edges>\n";
  return s;
}

bool decode_tabular(std::string_view text, TabularGraph* out, ParseError* err, size_t* consumed) {
  LineScanner sc(text);
  auto fail = [&](std::string what) {
    *err = ParseError{std::move(what), sc.line_offset()};
    return false;
  };
  *out = TabularGraph{};
  std::string_view head = sc.next();
  if (head.substr(0, kGenerateGraph.size()) != kGenerateGraph)
    return fail("expected a line starting with [GENERATE GRAPH]");
  std::string e;
  if (!parse_attributes(head.substr(kGenerateGraph.size()), &out->attributes, &e)) return fail(e);
  const std::string* id = out->attributes.get("id");
  if (!id) return fail("the graph has no id attribute");
  if (!is_plain_name(*id)) return fail("bad service id '" + id->substr(0, 40) + "'");
  out->graph.service = *id;
  if (sc.done() || sc.next() != "<edges>") return fail("expected '<edges>'");
  while (true) {
    if (sc.done()) return fail("expected '</edges>' before the end of the text");
    std::string_view line = sc.next();
    if (line == "</edges>") break;
    EdgeText t;
    if (!parse_edge(line, /*want_source=*/true, &t, &e)) return fail(e);
    auto id_ = RpcId::parse(t.edge_id);
    if (!id_) return fail("edge_id '" + t.edge_id.substr(0, 40) + "' is not dot-decimal");
    Edge edge;
    edge.id = *id_;
    edge.caller = *t.source;
    edge.callee = t.destination;
    edge.type = parse_call_type(t.type).value_or(CallType::kUnknown);
    edge.start_ms = t.start_ms;
    edge.finish_ms = t.finish_ms;
    out->graph.edges.push_back(std::move(edge));
  }
  out->graph.canonicalize();
  if (consumed) *consumed = sc.offset();
  return true;
}

std::vector<std::string_view> split_blocks(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = std::string_view::npos;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    if (text.substr(pos, kGenerateGraph.size()) == kGenerateGraph) {
      if (start != std::string_view::npos) out.push_back(text.substr(start, pos - start));
      start = pos;
    }
    pos = end;
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start));
  return out;
}

}  // namespace tracelm
