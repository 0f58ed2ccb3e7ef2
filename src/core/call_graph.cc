#include "core/call_graph.h"

#include <algorithm>
#include <cctype>

namespace tracelm {

namespace {
constexpr std::string_view kTypeNames[] = {"http", "rpc", "mc", "db", "mq", "unknown"};
}

std::string_view call_type_name(CallType t) { return kTypeNames[static_cast<int>(t)]; }

std::optional<CallType> parse_call_type(std::string_view s) {
  if (s.size() < 2 || s.size() > 4) return std::nullopt;
  char low[4];
  for (size_t i = 0; i < s.size(); ++i) low[i] = static_cast<char>(std::tolower(s[i]));
  std::string_view l(low, s.size());
  for (int i = 0; i < kNumCallTypes; ++i)
    if (l == kTypeNames[i]) return static_cast<CallType>(i);
  return std::nullopt;
}

int CallGraph::depth() const {
  int d = 0;
  for (const Edge& e : edges) d = std::max(d, e.id.depth());
  return d;
}

int64_t CallGraph::latency() const {
  if (auto r = find(RpcId::root())) return edges[*r].duration_ms();
  if (edges.empty()) return 0;
  int64_t lo = edges[0].start_ms, hi = edges[0].finish_ms;
  for (const Edge& e : edges) {
    lo = std::min(lo, e.start_ms);
    hi = std::max(hi, e.finish_ms);
  }
  return hi - lo;
}

void CallGraph::canonicalize() {
  std::stable_sort(edges.begin(), edges.end(),
                   [](const Edge& a, const Edge& b) { return a.id < b.id; });
}

bool CallGraph::is_canonical() const {
  return std::is_sorted(edges.begin(), edges.end(),
                        [](const Edge& a, const Edge& b) { return a.id < b.id; });
}

std::optional<size_t> CallGraph::find(const RpcId& id) const {
  if (is_canonical()) {
    auto it = std::lower_bound(edges.begin(), edges.end(), id,
                               [](const Edge& e, const RpcId& v) { return e.id < v; });
    if (it != edges.end() && it->id == id) return static_cast<size_t>(it - edges.begin());
    return std::nullopt;
  }
  for (size_t i = 0; i < edges.size(); ++i)
    if (edges[i].id == id) return i;
  return std::nullopt;
}

GraphIndex CallGraph::index() const {
  GraphIndex ix;
  ix.parent.assign(edges.size(), GraphIndex::kNone);
  ix.children.resize(edges.size());
  // In canonical order a parent precedes its descendants; a stack of the
  // current ancestor chain finds each parent in O(1) amortized.
  std::vector<size_t> chain;
  for (size_t i = 0; i < edges.size(); ++i) {
    const Edge& e = edges[i];
    if (e.id.is_top_level()) {
      ix.roots.push_back(i);
      chain.assign(1, i);
      continue;
    }
    auto pid = e.id.parent();
    // Pop entries that are not ancestors of e.
    while (!chain.empty()) {
      const RpcId& top = edges[chain.back()].id;
      const std::string& ts = top.str();
      const std::string& es = e.id.str();
      bool ancestor =
          es.size() > ts.size() && es.compare(0, ts.size(), ts) == 0 && es[ts.size()] == '.';
      if (ancestor) break;
      chain.pop_back();
    }
    if (!chain.empty() && edges[chain.back()].id == *pid) {
      ix.parent[i] = chain.back();
      ix.children[chain.back()].push_back(i);
    }
    chain.push_back(i);
  }
  return ix;
}

std::vector<Layer> CallGraph::layers() const {
  GraphIndex ix = index();
  std::vector<Layer> out;
  if (!ix.roots.empty()) {
    Layer root;
    root.start_node = edges[ix.roots.front()].caller;
    root.edges = ix.roots;
    out.push_back(std::move(root));
  }
  // Pre-order over layers: a layer's child layers follow it, depth first,
  // in the order of their parent edges.
  std::vector<size_t> stack;  // parent edges whose layer is still to emit
  auto push_children_of = [&](const std::vector<size_t>& layer_edges) {
    for (auto it = layer_edges.rbegin(); it != layer_edges.rend(); ++it)
      if (!ix.children[*it].empty()) stack.push_back(*it);
  };
  if (!out.empty()) push_children_of(out.front().edges);
  while (!stack.empty()) {
    size_t p = stack.back();
    stack.pop_back();
    Layer l;
    l.parent = p;
    l.start_node = edges[p].callee;
    l.edges = ix.children[p];
    push_children_of(l.edges);
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace tracelm
