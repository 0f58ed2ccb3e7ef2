#include "encode/recursive.h"

#include <algorithm>
#include <functional>

namespace tracelm {

namespace {

constexpr std::string_view kSubOpen = tag::kSubgraph;
constexpr std::string_view kSubClose = tag::kSubgraphEnd;

// Per-edge facts the conditions need.
struct EdgeFacts {
  GraphIndex ix;
  std::vector<int64_t> descendants;  // number of edges below each edge
  std::vector<int64_t> height;       // 0 for a leaf, else 1 + max over children
};

EdgeFacts facts(const CallGraph& g) {
  EdgeFacts f{g.index(), std::vector<int64_t>(g.edges.size(), 0),
              std::vector<int64_t>(g.edges.size(), 0)};
  // Canonical order puts every edge after its parent: accumulate in reverse.
  for (size_t i = g.edges.size(); i-- > 0;) {
    size_t p = f.ix.parent[i];
    if (p == GraphIndex::kNone) continue;
    f.descendants[p] += 1 + f.descendants[i];
    f.height[p] = std::max(f.height[p], 1 + f.height[i]);
  }
  return f;
}

class Planner {
 public:
  Planner(const CallGraph& g, Rng& rng) : g_(g), f_(facts(g)), rng_(rng) {}

  std::vector<Unit> run() {
    if (f_.ix.roots.empty()) return {};
    const std::vector<size_t>& roots = f_.ix.roots;
    // Root layer latency: the finish of edge 0 (docs/encodings.md §2.4).
    int64_t lat = g_.edges[roots.front()].finish_ms;
    add(roots, "", g_.edges[roots.front()].caller, std::nullopt, lat, std::nullopt);
    return std::move(units_);
  }

 private:
  struct Item {
    std::vector<size_t> edges;  // covered edges
    std::vector<Item> members;  // empty for a chunk
  };

  LayerConditions base(const std::vector<size_t>& e, const std::string& start_node,
                       const std::optional<std::string>& caller, int64_t latency) {
    LayerConditions c;
    c.id = g_.service;
    c.start_node = start_node;
    c.caller = caller;
    c.num_current_edges = static_cast<int64_t>(e.size());
    int64_t n = 0, rd = 0;
    for (size_t i : e) {
      n += 1 + f_.descendants[i];
      rd = std::max(rd, f_.height[i]);
    }
    c.num_edges = n;
    c.remaining_depth = rd;
    c.start_edge_id = static_cast<int64_t>(g_.edges[e.front()].id.last());
    c.start_communication_at = g_.edges[e.front()].start_ms;
    c.latency = latency;
    return c;
  }

  // Latency announced to the layer under edge p.
  int64_t child_latency(size_t p) const {
    const Edge& e = g_.edges[p];
    // Under edge 0 the reference writes its response time, deeper the finish.
    return e.id.is_top_level() ? e.duration_ms() : e.finish_ms;
  }

  // Adds the unit for edges e (a layer, or a split when wider than 15) and
  // everything below it; returns its index.
  size_t add(const std::vector<size_t>& e, const std::string& prefix, const std::string& start_node,
             const std::optional<std::string>& caller, int64_t latency,
             std::optional<int64_t> rd_copy) {
    LayerConditions c = base(e, start_node, caller, latency);
    if (rd_copy) c.remaining_depth = rd_copy;
    if (e.size() <= kMaxLayerEdges) {
      size_t u = units_.size();
      units_.push_back({Unit::Kind::kLayer, c, prefix, e, {}});
      int64_t with_children = 0;
      for (size_t i : e) {
        if (f_.ix.children[i].empty()) continue;
        ++with_children;
        size_t child = add(f_.ix.children[i], g_.edges[i].id.str(), g_.edges[i].callee, start_node,
                           child_latency(i), std::nullopt);
        units_[u].subs.emplace_back(g_.edges[i].id.last(), child);
      }
      units_[u].cond.num_subgraphs = with_children;
      return u;
    }
    // Wide layer: chunks of one random size, grouped 5 at a time.
    size_t size = static_cast<size_t>(rng_.range(13, 15));
    std::vector<Item> items;
    for (size_t k = 0; k < e.size(); k += size)
      items.push_back(
          {std::vector<size_t>(e.begin() + static_cast<long>(k),
                               e.begin() + static_cast<long>(std::min(e.size(), k + size))),
           {}});
    while (items.size() > kSplitFanout) {
      std::vector<Item> groups;
      for (size_t k = 0; k < items.size(); k += kSplitFanout) {
        Item gi;
        for (size_t j = k; j < std::min(items.size(), k + kSplitFanout); ++j) {
          gi.edges.insert(gi.edges.end(), items[j].edges.begin(), items[j].edges.end());
          gi.members.push_back(std::move(items[j]));
        }
        groups.push_back(std::move(gi));
      }
      items = std::move(groups);
    }
    return add_split(e, items, c, prefix);
  }

  size_t add_split(const std::vector<size_t>& e, const std::vector<Item>& items, LayerConditions c,
                   const std::string& prefix) {
    c.num_subgraphs = static_cast<int64_t>(items.size());
    size_t u = units_.size();
    units_.push_back({Unit::Kind::kSplit, c, prefix, e, {}});
    for (const Item& it : items) {
      size_t child;
      if (it.members.empty()) {
        int64_t lat = *c.latency;
        for (size_t i : it.edges) lat = std::max(lat, g_.edges[i].finish_ms);
        child = add(it.edges, prefix, *c.start_node, c.caller, lat, c.remaining_depth);
      } else {
        LayerConditions gc = base(it.edges, *c.start_node, c.caller, *c.latency);
        gc.remaining_depth = c.remaining_depth;
        child = add_split(it.edges, it.members, gc, prefix);
      }
      units_[u].subs.emplace_back(0, child);
    }
    return u;
  }

  const CallGraph& g_;
  EdgeFacts f_;
  Rng& rng_;
  std::vector<Unit> units_;
};

bool same_set(const Attributes& a, const Attributes& b) {
  if (a.items.size() != b.items.size()) return false;
  for (const auto& [k, v] : a.items) {
    const std::string* w = b.get(k);
    if (!w || *w != v) return false;
  }
  return true;
}

bool parse_sub_line(std::string_view line, uint64_t* k, Attributes* a, std::string* error) {
  if (line.substr(0, kSubOpen.size()) != kSubOpen) {
    *error = "expected '<subgraph of edge_id K>'";
    return false;
  }
  line.remove_prefix(kSubOpen.size());
  size_t gt = line.find('>');
  int64_t v;
  if (gt == std::string_view::npos || !parse_int(line.substr(0, gt), &v) || v < 0) {
    *error = "expected an edge id in '<subgraph of edge_id K>'";
    return false;
  }
  *k = static_cast<uint64_t>(v);
  line.remove_prefix(gt + 1);
  if (line.size() < kSubClose.size() || line.substr(line.size() - kSubClose.size()) != kSubClose) {
    *error = "expected '</subgraph>' at the end of the line";
    return false;
  }
  return parse_attributes(line.substr(0, line.size() - kSubClose.size()), a, error);
}

}  // namespace

Attributes LayerConditions::to_attributes() const {
  Attributes a;
  a.set("id", id);
  auto num = [&](const char* n, const std::optional<int64_t>& v) {
    if (v) a.set(n, *v);
  };
  num("num_edges", num_edges);
  if (start_node) a.set("start_node", *start_node);
  num("start_edge_id", start_edge_id);
  num("start_communication_at", start_communication_at);
  num("latency", latency);
  num("num_subgraphs", num_subgraphs);
  num("remaining_depth", remaining_depth);
  num("num_current_edges", num_current_edges);
  if (caller) a.set("caller", *caller);
  return a;
}

bool LayerConditions::from_attributes(const Attributes& a, LayerConditions* out,
                                      std::string* error) {
  *out = LayerConditions{};
  for (const auto& [k, v] : a.items) {
    std::optional<int64_t>* slot = nullptr;
    if (k == "id")
      out->id = v;
    else if (k == "start_node")
      out->start_node = v;
    else if (k == "caller")
      out->caller = v;
    else if (k == "num_edges")
      slot = &out->num_edges;
    else if (k == "start_edge_id")
      slot = &out->start_edge_id;
    else if (k == "start_communication_at")
      slot = &out->start_communication_at;
    else if (k == "latency")
      slot = &out->latency;
    else if (k == "num_subgraphs")
      slot = &out->num_subgraphs;
    else if (k == "remaining_depth")
      slot = &out->remaining_depth;
    else if (k == "num_current_edges")
      slot = &out->num_current_edges;
    else {
      *error = "unknown condition '" + k.substr(0, 40) + "'";
      return false;
    }
    if (slot) {
      int64_t x;
      if (!parse_int(v, &x)) {
        *error = "condition " + k + " is not an integer: '" + v.substr(0, 40) + "'";
        return false;
      }
      *slot = x;
    }
  }
  if (out->id.empty()) {
    *error = "conditions without an id";
    return false;
  }
  for (const std::string* n : {&out->id, out->start_node ? &*out->start_node : nullptr,
                               out->caller ? &*out->caller : nullptr})
    if (n && !is_plain_name(*n)) {
      *error = "bad name '" + n->substr(0, 40) + "' in the conditions";
      return false;
    }
  return true;
}

std::vector<Unit> plan_units(const CallGraph& g, Rng& rng) { return Planner(g, rng).run(); }

std::string format_conditions(const LayerConditions& c, bool root, const RecursiveOptions& opt,
                              Rng& rng) {
  Attributes a = c.to_attributes();
  std::string s = root ? std::string(kGenerateGraph) : std::string();
  if (!root) return s + format_attributes(a, opt.shuffle ? &rng : nullptr, 0.0, {});
  // Root: latency and the others have their own drop rates; id always stays.
  Attributes kept;
  for (auto& [k, v] : a.items) {
    double p = k == "id" ? 0.0 : k == "latency" ? opt.p_drop_latency : opt.p_drop;
    if (p > 0 && rng.chance(p)) continue;
    kept.items.emplace_back(k, v);
  }
  return s + format_attributes(kept, opt.shuffle ? &rng : nullptr, 0.0, {});
}

std::string format_unit_body(const CallGraph& g, const std::vector<Unit>& units, size_t u,
                             const RecursiveOptions& opt, Rng& rng) {
  const Unit& unit = units[u];
  std::string s;
  auto subs = [&] {
    for (const auto& [k, child] : unit.subs) {
      s += kSubOpen;
      s += std::to_string(k);
      s += '>';
      s += format_attributes(units[child].cond.to_attributes(), opt.shuffle ? &rng : nullptr, 0.0,
                             {});
      s += kSubClose;
      s += '\n';
    }
  };
  if (unit.kind == Unit::Kind::kSplit) {
    s += "<split>\n";
    subs();
    s += "</split>\n";
    return s;
  }
  s += "<layer>\n<edges>\n";
  for (size_t i : unit.edges) {
    const Edge& e = g.edges[i];
    s += format_edge(edge_text(e, /*tabular=*/false), opt.shuffle ? &rng : nullptr);
    s += '\n';
  }
  s += "</edges>\n";
  subs();
  s += "</layer>\n";
  return s;
}

std::vector<std::string> encode_recursive_units(const CallGraph& g, const RecursiveOptions& opt,
                                                Rng& rng) {
  CallGraph c = g;
  if (!c.is_canonical()) c.canonicalize();
  std::vector<Unit> units = plan_units(c, rng);
  std::vector<std::string> out;
  for (size_t u = 0; u < units.size(); ++u) {
    std::string s = format_conditions(units[u].cond, u == 0, opt, rng);
    s += '\n';
    s += format_unit_body(c, units, u, opt, rng);
    out.push_back(std::move(s));
  }
  return out;
}

std::string encode_recursive(const CallGraph& g, const RecursiveOptions& opt, Rng& rng) {
  std::string s;
  for (const std::string& u : encode_recursive_units(g, opt, rng)) s += u;
  return s;
}

bool parse_layer_edges(LineScanner& sc, std::vector<EdgeText>* edges, ParseError* err) {
  std::string e;
  auto fail = [&](std::string what) {
    *err = ParseError{std::move(what), sc.line_offset()};
    return false;
  };
  edges->clear();
  if (sc.done() || sc.next() != "<edges>") return fail("expected '<edges>'");
  while (true) {
    if (sc.done()) return fail("expected '</edges>' before the end of the text");
    std::string_view line = sc.next();
    if (line == "</edges>") break;
    EdgeText t;
    if (!parse_edge(line, /*want_source=*/false, &t, &e)) return fail(e);
    int64_t k;
    if (!parse_int(t.edge_id, &k) || k < 0)
      return fail("edge_id '" + t.edge_id.substr(0, 40) + "' is not a non-negative integer");
    edges->push_back(std::move(t));
  }
  if (edges->empty()) return fail("a layer without edges");
  return true;
}

bool parse_unit_body(LineScanner& sc, ParsedUnit* out, ParseError* err) {
  *out = ParsedUnit{};
  std::string e;
  auto fail = [&](std::string what) {
    *err = ParseError{std::move(what), sc.line_offset()};
    return false;
  };
  if (sc.done()) return fail("expected '<layer>' or '<split>' before the end of the text");
  std::string_view open = sc.next();
  std::string_view close;
  if (open == "<layer>") {
    out->kind = Unit::Kind::kLayer;
    close = "</layer>";
    if (!parse_layer_edges(sc, &out->edges, err)) return false;
  } else if (open == "<split>") {
    out->kind = Unit::Kind::kSplit;
    close = "</split>";
  } else {
    return fail("expected '<layer>' or '<split>'");
  }
  while (true) {
    if (sc.done()) return fail("expected '" + std::string(close) + "' before the end of the text");
    std::string_view line = sc.next();
    if (line == close) break;
    uint64_t k;
    Attributes a;
    if (!parse_sub_line(line, &k, &a, &e)) return fail(e);
    out->subs.emplace_back(k, std::move(a));
  }
  if (out->kind == Unit::Kind::kSplit && out->subs.empty()) return fail("an empty <split>");
  return true;
}

bool decode_recursive(std::string_view text, CallGraph* out, ParseError* err, size_t* consumed) {
  LineScanner sc(text);
  *out = CallGraph{};
  auto fail = [&](std::string what, size_t off) {
    *err = ParseError{std::move(what), off};
    return false;
  };
  struct Slot {
    Attributes announced;  // empty for the root
    std::string prefix;    // parent edge's full id
    std::string start_node;
    bool root = false;
  };
  std::vector<Slot> stack;
  stack.push_back({{}, "", "", true});
  std::string e;
  ParsedUnit body;
  while (!stack.empty()) {
    Slot slot = std::move(stack.back());
    stack.pop_back();
    if (sc.done()) return fail("the text ends before every announced subgraph", sc.offset());
    std::string_view head = sc.next();
    size_t head_off = sc.line_offset();
    bool gen = head.substr(0, kGenerateGraph.size()) == kGenerateGraph;
    if (gen != slot.root)
      return fail(slot.root ? "expected a line starting with [GENERATE GRAPH]"
                            : "a new [GENERATE GRAPH] before every announced subgraph",
                  head_off);
    if (gen) head.remove_prefix(kGenerateGraph.size());
    Attributes a;
    LayerConditions cond;
    if (!parse_attributes(head, &a, &e) || !LayerConditions::from_attributes(a, &cond, &e))
      return fail(e, head_off);
    if (slot.root) {
      out->service = cond.id;
      slot.start_node = cond.start_node.value_or(std::string(kUserNode));
    } else if (!same_set(a, slot.announced)) {
      return fail("conditions differ from those announced in the <subgraph> line", head_off);
    }
    if (!parse_unit_body(sc, &body, err)) return false;
    std::vector<std::pair<uint64_t, size_t>> ids;  // edge_id -> edge index, this layer
    for (EdgeText& t : body.edges) {
      std::string full = slot.prefix.empty() ? t.edge_id : slot.prefix + "." + t.edge_id;
      auto id = RpcId::parse(full);
      if (!id) return fail("edge id " + full.substr(0, 60) + " is not dot-decimal", head_off);
      Edge edge;
      edge.id = *id;
      edge.caller = slot.start_node;
      edge.callee = t.destination;
      edge.type = parse_call_type(t.type).value_or(CallType::kUnknown);
      edge.start_ms = t.start_ms;
      edge.finish_ms = t.finish_ms;
      ids.emplace_back(id->last(), out->edges.size());
      out->edges.push_back(std::move(edge));
    }
    for (size_t i = body.subs.size(); i-- > 0;) {
      uint64_t k = body.subs[i].first;
      Slot child{std::move(body.subs[i].second), slot.prefix, slot.start_node, false};
      if (body.kind == Unit::Kind::kLayer) {
        auto it = std::find_if(ids.begin(), ids.end(), [&](auto& p) { return p.first == k; });
        if (it == ids.end())
          return fail("subgraph of edge_id " + std::to_string(k) + ": no such edge in the layer",
                      head_off);
        child.prefix = out->edges[it->second].id.str();
        child.start_node = out->edges[it->second].callee;
      }
      stack.push_back(std::move(child));
    }
  }
  out->canonicalize();
  if (consumed) *consumed = sc.offset();
  return true;
}

}  // namespace tracelm
