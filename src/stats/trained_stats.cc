#include "stats/trained_stats.h"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "io/atomic_file.h"
#include "io/input_error.h"
#include "io/json_file.h"

namespace tracelm {

TrainedStats TrainedStats::of(const std::vector<CallGraph>& graphs) {
  TrainedStats t;
  std::map<std::string, uint64_t> services;
  std::map<int64_t, uint64_t> edges;
  std::map<std::string, SubtreeSize> subtree_max;
  std::map<std::string, std::pair<int64_t, int64_t>> least;  // callee -> (fewest below, calls)
  // caller -> callee sequences of its narrow layers (0) and its splits (1)
  // (each sequence with the calls to the caller that made it, per (caller of the caller,
  // calls under the call))
  using Made = std::map<std::pair<std::string, int64_t>, uint64_t>;
  std::array<std::map<std::string, std::map<std::vector<std::string>, Made>>, 2> layers;
  std::map<std::string, std::map<std::string, CorpusPriors::Entry>> entries;  // service -> callee
  std::map<std::string, int64_t> durations;                     // callee -> longest call
  std::map<std::string, std::map<std::string, uint8_t>> types;  // callee -> caller -> mask
  // callee -> (calls below one call to it, calls it makes, levels under its calls)
  // -> calls to it
  std::map<std::string, std::map<std::array<int64_t, 3>, uint64_t>> shapes;
  // service -> entry -> callee sequences of the entry's layer
  std::map<std::string, std::map<std::string, std::set<std::vector<std::string>>>> entry_layers;
  for (const CallGraph& g : graphs) {
    ++services[g.service];
    ++edges[static_cast<int64_t>(g.edges.size())];
    t.conditions.add(g);
    for (const Edge& e : g.edges) {
      if (e.caller == kUserNode) {
        const auto n = static_cast<int64_t>(g.edges.size());
        auto [it, added] =
            entries[g.service].try_emplace(e.callee, CorpusPriors::Entry{e.callee, n, n, 0});
        CorpusPriors::Entry& en = it->second;
        en.min_edges = std::min(en.min_edges, n);
        en.max_edges = std::max(en.max_edges, n);
        ++en.graphs;
      }
      int64_t& d = durations.try_emplace(e.callee, 0).first->second;
      d = std::max(d, e.finish_ms - e.start_ms);
      if (e.type != CallType::kUnknown)
        types[e.callee][e.caller] |= static_cast<uint8_t>(1u << static_cast<int>(e.type));
    }
    // Calls below each edge: children come after their parent in id order.
    if (!g.is_canonical()) continue;  // ingested corpora are; sizes of others are skipped
    GraphIndex ix = g.index();
    std::vector<int64_t> below(g.edges.size(), 0);
    std::vector<int64_t> child_below(g.edges.size(), 0);
    std::vector<int64_t> height(g.edges.size(), 0);  // 0 for a leaf, as the encoder counts
    std::vector<int64_t> width(g.edges.size(), 0);
    std::vector<int64_t> callers(g.edges.size(), 0);  // calls below it that make calls
    for (size_t i = g.edges.size(); i-- > 0;) {
      if (ix.parent[i] != GraphIndex::kNone) {
        below[ix.parent[i]] += below[i] + 1;
        child_below[ix.parent[i]] = std::max(child_below[ix.parent[i]], below[i]);
        height[ix.parent[i]] = std::max(height[ix.parent[i]], height[i] + 1);
        ++width[ix.parent[i]];
        callers[ix.parent[i]] += below[i] > 0;
      }
      auto l = least.try_emplace(g.edges[i].callee, below[i], 0).first;
      l->second.first = std::min(l->second.first, below[i]);
      ++l->second.second;
      if (below[i] > 0) {
        ++shapes[g.edges[i].callee][{below[i], width[i], height[i] - 1}];
        auto [it, added] = subtree_max.try_emplace(g.edges[i].callee, SubtreeSize{0, 0, 0, 0, 1.0});
        SubtreeSize& m = it->second;
        m.below = std::max(m.below, below[i]);
        m.child_below = std::max(m.child_below, child_below[i]);
        m.depth = std::max(m.depth, height[i] - 1);
        m.width = std::max(m.width, width[i]);
        m.share =
            std::min(m.share, static_cast<double>(callers[i]) / static_cast<double>(width[i]));
      }
    }
    // Layers, with the calls under each (below: filled above).
    for (size_t i = 0; i < g.edges.size(); ++i) {
      const std::vector<size_t>& kids = ix.children[i];
      if (kids.empty() || kids.size() > CorpusPriors::kMaxWideLayerEdges) continue;
      auto& seen = layers[kids.size() > kMaxLayerEdges][g.edges[i].callee];
      if (seen.size() > CorpusPriors::kMaxLayersPerCaller) continue;  // too varied: dropped below
      std::vector<std::string> seq;
      for (size_t c : kids) seq.push_back(g.edges[c].callee);
      if (g.edges[i].caller == kUserNode && kids.size() <= kMaxLayerEdges) {
        auto& mine = entry_layers[g.service][g.edges[i].callee];
        if (mine.size() <= CorpusPriors::kMaxLayersPerCaller) mine.insert(seq);
      }
      ++seen[std::move(seq)][{g.edges[i].caller, below[i]}];
    }
  }
  for (auto& [name, m] : subtree_max) std::tie(m.least, m.calls) = least.at(name);
  t.priors.subtree_max.assign(subtree_max.begin(), subtree_max.end());
  std::map<std::string, std::vector<std::pair<std::vector<std::string>, Made>>> kept;
  for (auto& by_caller : layers)
    for (auto& [caller, seqs] : by_caller)
      if (seqs.size() <= CorpusPriors::kMaxLayersPerCaller)
        kept[caller].insert(kept[caller].end(), seqs.begin(), seqs.end());
  for (auto& [caller, seqs] : kept) {
    std::sort(seqs.begin(), seqs.end());
    auto& names = t.priors.layers.emplace_back(caller, Sequences{}).second;
    std::map<std::string, std::vector<LayerCount>> counts;  // parent -> (seq, below) order
    for (size_t k = 0; k < seqs.size(); ++k) {
      names.push_back(std::move(seqs[k].first));
      for (const auto& [made, n] : seqs[k].second)
        counts[made.first].push_back({static_cast<uint32_t>(k), made.second, n});
    }
    t.priors.layer_counts.emplace_back(caller, LayerCounts(counts.begin(), counts.end()));
  }
  for (auto& [service, callees] : entries) {
    auto& out = t.priors.entries.emplace_back(service, std::vector<CorpusPriors::Entry>{}).second;
    for (auto& [callee, en] : callees) out.push_back(std::move(en));
  }
  t.priors.durations.assign(durations.begin(), durations.end());
  for (auto& [callee, by_caller] : types)
    t.priors.types.emplace_back(
        callee, std::vector<std::pair<std::string, uint8_t>>(by_caller.begin(), by_caller.end()));
  for (auto& [callee, by_shape] : shapes) {
    auto& out = t.priors.shapes.emplace_back(callee, std::vector<CallShape>{}).second;
    for (const auto& [bwd, n] : by_shape) out.push_back({bwd[0], bwd[1], n, bwd[2]});
  }
  for (auto& [service, by_entry] : entry_layers) {
    std::vector<std::pair<std::string, Sequences>> out;
    for (auto& [entry, seqs] : by_entry)
      if (seqs.size() <= CorpusPriors::kMaxLayersPerCaller)
        out.emplace_back(entry, Sequences(seqs.begin(), seqs.end()));
    if (!out.empty()) t.priors.entry_layers.emplace_back(service, std::move(out));
  }
  t.conditions.finalize();
  t.priors.services.assign(services.begin(), services.end());
  std::stable_sort(t.priors.services.begin(), t.priors.services.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  t.priors.num_edges.assign(edges.begin(), edges.end());
  const size_t n = graphs.size(), keep = std::min(n, CorpusPriors::kMaxRoots);
  for (size_t i = 0; i < keep; ++i) {  // evenly spaced: graph floor(i * n / keep)
    const CallGraph& g = graphs[i * n / keep];
    t.priors.roots.push_back(
        {g.service, static_cast<int64_t>(g.edges.size()), g.depth(), g.latency()});
  }
  return t;
}

nlohmann::json TrainedStats::to_json() const {
  nlohmann::json j;
  j["format"] = "tracelm-trained-stats";
  j["version"] = 2;
  j["services"] = nlohmann::json::array();
  for (const auto& [s, n] : priors.services) j["services"].push_back({s, n});
  j["num_edges"] = nlohmann::json::object();
  for (const auto& [e, n] : priors.num_edges) j["num_edges"][std::to_string(e)] = n;
  j["roots"] = nlohmann::json::array();
  for (const auto& r : priors.roots)
    j["roots"].push_back({r.service, r.num_edges, r.depth, r.latency});
  j["subtree_max"] = nlohmann::json::object();
  for (const auto& [name, n] : priors.subtree_max)
    j["subtree_max"][name] =
        n.depth == SubtreeSize::kUnknown
            ? nlohmann::json{n.below, n.child_below}
            : nlohmann::json{n.below, n.child_below, n.depth, n.width, n.share, n.least, n.calls};
  j["layers"] = nlohmann::json::object();
  for (const auto& [caller, seqs] : priors.layers) j["layers"][caller] = seqs;
  j["layer_counts"] = nlohmann::json::object();
  for (const auto& [caller, by_parent] : priors.layer_counts)
    for (const auto& [parent, counts] : by_parent) {
      nlohmann::json& a = j["layer_counts"][caller][parent] = nlohmann::json::array();
      for (const LayerCount& c : counts) a.push_back({c.seq, c.below, c.calls});
    }
  j["entries"] = nlohmann::json::object();
  for (const auto& [service, callees] : priors.entries) {
    nlohmann::json& a = j["entries"][service] = nlohmann::json::array();
    for (const auto& e : callees) a.push_back({e.callee, e.min_edges, e.max_edges, e.graphs});
  }
  j["durations"] = nlohmann::json::object();
  for (const auto& [callee, ms] : priors.durations) j["durations"][callee] = ms;
  j["types"] = nlohmann::json::object();
  for (const auto& [callee, by_caller] : priors.types)
    for (const auto& [caller, mask] : by_caller) {
      nlohmann::json names = nlohmann::json::array();
      for (int i = 0; i < kNumCallTypes; ++i)
        if (mask >> i & 1) names.push_back(call_type_name(static_cast<CallType>(i)));
      j["types"][callee][caller] = std::move(names);
    }
  j["shapes"] = nlohmann::json::object();
  for (const auto& [callee, list] : priors.shapes) {
    nlohmann::json& a = j["shapes"][callee] = nlohmann::json::array();
    for (const CallShape& c : list) a.push_back({c.below, c.width, c.calls, c.depth});
  }
  j["entry_layers"] = nlohmann::json::object();
  for (const auto& [service, by_entry] : priors.entry_layers)
    for (const auto& [entry, seqs] : by_entry) j["entry_layers"][service][entry] = seqs;
  j["conditions"] = conditions.to_json();
  return j;
}

TrainedStats TrainedStats::from_json(const nlohmann::json& j, const std::string& path) {
  TrainedStats t;
  try {
    if (!j.is_object()) throw InputError(path, 0, "stats.json is not a JSON object");
    if (j.contains("conditions")) t.conditions = ConditionStats::from_json(j["conditions"]);
    const nlohmann::json* edges = nullptr;
    if (j.contains("services")) {
      for (const auto& s : j["services"])
        t.priors.services.emplace_back(s.at(0).get<std::string>(), json_count(s.at(1)));
      if (j.contains("num_edges")) edges = &j["num_edges"];
    } else if (j.contains("corpus")) {  // version 0: the `stats --json` report
      const nlohmann::json& c = j["corpus"];
      if (c.contains("top_services"))
        for (const auto& s : c["top_services"])
          t.priors.services.emplace_back(s.at("service").get<std::string>(),
                                         json_count(s.at("graphs")));
      if (c.contains("num_edges")) edges = &c["num_edges"];
    }
    if (edges)
      for (const auto& [k, v] : edges->items())
        t.priors.num_edges.emplace_back(std::stoll(k), json_count(v));
    std::sort(t.priors.num_edges.begin(), t.priors.num_edges.end());
    if (j.contains("subtree_max"))
      for (const auto& [name, n] : j["subtree_max"].items())
        t.priors.subtree_max.emplace_back(  // an object: sorted by name
            name, SubtreeSize{json_int(n.at(0)), json_int(n.at(1)),
                              n.size() > 3 ? json_int(n.at(2)) : SubtreeSize::kUnknown,
                              n.size() > 3 ? json_int(n.at(3)) : SubtreeSize::kUnknown,
                              n.size() > 4 ? n.at(4).get<double>() : 0.0,
                              n.size() > 6 ? json_int(n.at(5)) : 0,
                              n.size() > 6 ? json_int(n.at(6)) : 0});
    if (j.contains("layers"))
      for (const auto& [caller, seqs] : j["layers"].items())  // an object: sorted by caller
        t.priors.layers.emplace_back(caller, seqs.get<std::vector<std::vector<std::string>>>());
    if (j.contains("layer_counts"))
      for (const auto& [caller, by_parent] : j["layer_counts"].items()) {  // objects: sorted
        const Sequences* seqs = find_named(t.priors.layers, caller);
        if (!by_parent.is_object())
          throw InputError(path, 0,
                           "malformed stats.json: layer_counts of " + caller + " not an object");
        auto& out = t.priors.layer_counts.emplace_back(caller, LayerCounts{}).second;
        for (const auto& [parent, counts] : by_parent.items()) {
          auto& v = out.emplace_back(parent, std::vector<LayerCount>{}).second;
          for (const auto& c : counts) {  // [seq, below, calls]
            const int64_t seq = json_int(c.at(0)), below = json_int(c.at(1));
            if (!seqs || seq < 0 || static_cast<size_t>(seq) >= seqs->size() || below < 0)
              throw InputError(
                  path, 0,
                  "malformed stats.json: layer_counts of " + caller + " from " + parent + ": " +
                      c.dump() + " is not [layer, calls below, count] with a layer of the " +
                      std::to_string(seqs ? seqs->size() : 0) + " of layers." + caller);
            v.push_back({static_cast<uint32_t>(seq), below, json_count(c.at(2))});
          }
        }
      }
    if (j.contains("entries"))
      for (const auto& [service, callees] : j["entries"].items()) {  // an object: sorted
        auto& out =
            t.priors.entries.emplace_back(service, std::vector<CorpusPriors::Entry>{}).second;
        for (const auto& e : callees)
          out.push_back({e.at(0).get<std::string>(), json_int(e.at(1)), json_int(e.at(2)),
                         e.size() > 3 ? json_count(e.at(3)) : 1});
      }
    if (j.contains("durations"))
      for (const auto& [callee, ms] : j["durations"].items())  // an object: sorted
        t.priors.durations.emplace_back(callee, json_int(ms));
    if (j.contains("types"))
      for (const auto& [callee, by_caller] : j["types"].items()) {  // objects: sorted
        std::vector<std::pair<std::string, uint8_t>> out;
        if (!by_caller.is_object())
          throw InputError(path, 0, "malformed stats.json: types of " + callee + " not an object");
        for (const auto& [caller, names] : by_caller.items()) {
          if (!names.is_array())
            throw InputError(
                path, 0,
                "malformed stats.json: types of " + callee + " from " + caller + " not a list");
          uint8_t mask = 0;
          for (const auto& n : names) {
            auto type = parse_call_type(n.get<std::string>());
            if (!type)
              throw InputError(path, 0,
                               "malformed stats.json: types of " + callee + " from " + caller +
                                   ": not a call type: " + n.dump());
            mask |= static_cast<uint8_t>(1u << static_cast<int>(*type));
          }
          out.emplace_back(caller, mask);
        }
        // A callee without callers is left out, as to_json leaves it out.
        if (!out.empty()) t.priors.types.emplace_back(callee, std::move(out));
      }
    if (j.contains("shapes"))
      for (const auto& [callee, list] : j["shapes"].items()) {  // an object: sorted
        auto& out = t.priors.shapes.emplace_back(callee, std::vector<CallShape>{}).second;
        for (const auto& c : list)  // [below, width, calls(, depth): since session 16]
          out.push_back({json_int(c.at(0)), json_int(c.at(1)), json_count(c.at(2)),
                         c.size() > 3 ? json_int(c.at(3)) : CallShape::kUnknown});
      }
    if (j.contains("entry_layers"))
      for (const auto& [service, by_entry] : j["entry_layers"].items()) {  // objects: sorted
        if (!by_entry.is_object())
          throw InputError(path, 0,
                           "malformed stats.json: entry_layers of " + service + " not an object");
        std::vector<std::pair<std::string, Sequences>> out;
        for (const auto& [entry, seqs] : by_entry.items())
          out.emplace_back(entry, seqs.get<Sequences>());
        // A service without entries is left out, as to_json leaves it out.
        if (!out.empty()) t.priors.entry_layers.emplace_back(service, std::move(out));
      }
    if (j.contains("roots"))
      for (const auto& r : j["roots"])
        t.priors.roots.push_back(
            {r.at(0).get<std::string>(), json_int(r.at(1)), json_int(r.at(2)), json_int(r.at(3))});
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, 0, std::string("malformed stats.json: ") + e.what());
  } catch (const std::logic_error& e) {  // stoll
    throw InputError(path, 0, std::string("malformed stats.json: ") + e.what());
  }
  return t;
}

std::string draw_entry(
    const std::vector<std::pair<std::string, std::vector<CorpusPriors::Entry>>>& entries,
    const std::string& service, std::optional<int64_t> num_edges, double u) {
  const std::vector<std::string> names = entries_for(entries, service, num_edges);  // sorted
  std::vector<const CorpusPriors::Entry*> pool;
  std::vector<uint64_t> graphs;  // parallel to pool
  if (!names.empty())
    for (const CorpusPriors::Entry& e : *find_named(entries, service))
      if (std::binary_search(names.begin(), names.end(), e.callee)) {
        pool.push_back(&e);
        graphs.push_back(e.graphs);
      }
  if (pool.empty()) return {};
  if (const std::optional<size_t> i = draw_weighted(graphs, u)) return pool[*i]->callee;
  return pool[std::min(pool.size() - 1, static_cast<size_t>(u * pool.size()))]->callee;
}

std::optional<size_t> draw_weighted(const std::vector<uint64_t>& weights, double u) {
  uint64_t total = 0;
  for (uint64_t w : weights) total += w;
  if (total == 0) return std::nullopt;
  double x = u * static_cast<double>(total);
  for (size_t i = 0; i < weights.size(); ++i) {
    if (x < static_cast<double>(weights[i])) return i;
    x -= static_cast<double>(weights[i]);
  }
  return weights.size() - 1;  // past the end only by rounding
}

std::optional<size_t> draw_layer(const Sequences& candidates, const Sequences& seqs,
                                 const LayerCounts& counts, std::string_view parent,
                                 std::optional<int64_t> below, double u) {
  std::vector<size_t> at;  // each candidate's index in seqs (seqs.size(): not there)
  at.reserve(candidates.size());
  for (const auto& c : candidates)  // a node has at most 2 kMaxLayersPerCaller sequences
    at.push_back(static_cast<size_t>(std::find(seqs.begin(), seqs.end(), c) - seqs.begin()));
  const std::vector<LayerCount>* mine = find_named(counts, parent);
  // Tiers: (parent, below), (any caller, below), (parent, any size), (any, any).
  for (int tier = below ? 0 : 2; tier < 4; ++tier) {
    const bool by_parent = tier % 2 == 0, by_size = tier < 2;
    if (by_parent && !mine) continue;
    std::vector<uint64_t> weights(candidates.size(), 0);
    auto weigh = [&](const std::vector<LayerCount>& v) {
      for (const LayerCount& c : v)
        if (!by_size || c.below == *below)
          for (size_t k = 0; k < at.size(); ++k)
            if (at[k] == c.seq) weights[k] += c.calls;
    };
    if (by_parent)
      weigh(*mine);
    else
      for (const auto& [p, v] : counts) weigh(v);
    if (auto i = draw_weighted(weights, u)) return i;
  }
  return std::nullopt;
}

std::vector<std::vector<std::string>> layers_holding(
    const std::vector<std::vector<std::string>>& seqs, size_t width, int64_t need,
    const std::vector<std::pair<std::string, SubtreeSize>>& caps) {
  std::vector<std::vector<std::string>> out;
  for (const auto& q : seqs) {
    if (q.size() != width) continue;
    int64_t held = 0;  // at most need: a stats.json from elsewhere may hold any numbers
    for (const std::string& n : q)
      if (const SubtreeSize* c = find_named(caps, n))
        held = std::min(need, held + std::clamp<int64_t>(c->below, 0, need));
    if (held >= need) out.push_back(q);
  }
  return out;
}

uint8_t types_of(const CallTypes& types, std::string_view caller, std::string_view callee) {
  const auto* by_caller = find_named(types, callee);
  if (!by_caller) return 0;
  if (const uint8_t* m = find_named(*by_caller, caller)) return *m;
  uint8_t any = 0;
  for (const auto& [c, m] : *by_caller) any |= m;
  return any;
}

std::vector<std::string> entries_for(
    const std::vector<std::pair<std::string, std::vector<CorpusPriors::Entry>>>& entries,
    const std::string& service, std::optional<int64_t> num_edges) {
  std::vector<std::string> out;
  const std::vector<CorpusPriors::Entry>* mine = find_named(entries, service);
  if (!mine) return out;
  // Distance of num_edges from an entry's sizes: 0 when they cover it.
  auto off = [&](const CorpusPriors::Entry& e) {
    if (!num_edges) return int64_t{0};
    return std::max({int64_t{0}, e.min_edges - *num_edges, *num_edges - e.max_edges});
  };
  int64_t best = std::numeric_limits<int64_t>::max();
  for (const auto& e : *mine) best = std::min(best, off(e));
  for (const auto& e : *mine)
    if (off(e) == best) out.push_back(e.callee);
  return out;  // sorted: the entries are
}

std::vector<std::string> split_item_names(const std::vector<std::vector<std::string>>& seqs,
                                          size_t width, size_t offset, size_t count,
                                          uint64_t pick) {
  std::vector<const std::vector<std::string>*> same, wide;
  for (const auto& q : seqs) {
    if (q.size() <= kMaxLayerEdges) continue;
    wide.push_back(&q);
    if (q.size() == width) same.push_back(&q);
  }
  const auto& from = same.empty() ? wide : same;
  if (from.empty()) return {};
  const std::vector<std::string>& q = *from[pick % from.size()];
  std::vector<std::string> out;
  for (size_t i = offset; i < offset + count; ++i)
    out.push_back(i < q.size() ? q[i] : q[1 + (i - 1) % (q.size() - 1)]);
  return out;
}

TrainedStats TrainedStats::load(const std::string& path) {
  return from_json(read_json_file(path), path);
}

void TrainedStats::save(const std::string& path) const {
  write_file_atomically(path, to_json().dump() + "\n");
}

}  // namespace tracelm
