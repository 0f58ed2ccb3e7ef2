#include "stats/stats.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/validate.h"

namespace tracelm {

namespace {

int64_t quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

template <typename Map>
std::vector<std::pair<typename Map::key_type, uint64_t>> top(const Map& m, size_t n) {
  std::vector<std::pair<typename Map::key_type, uint64_t>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first.caller < b.first.caller;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

std::vector<std::pair<std::string, uint64_t>> top_names(
    const std::unordered_map<std::string, uint64_t>& m, size_t n) {
  std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (v.size() > n) v.resize(n);
  return v;
}

constexpr double kQuantiles[] = {0.5, 0.9, 0.99, 1.0};

}  // namespace

void CorpusStats::add(const CallGraph& g) {
  ++graphs_;
  edges_ += g.edges.size();
  if (!g.label.empty()) ++labels_[g.label];
  if (is_valid(validate(g))) ++valid_;
  ++depth_[g.depth()];
  ++num_edges_[static_cast<int64_t>(g.edges.size())];
  ++services_[g.service];
  latency_.push_back(g.latency());
  GraphIndex ix = g.index();
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const Edge& e = g.edges[i];
    int t = static_cast<int>(e.type);
    ++types_[t];
    ++types_by_depth_[e.id.depth()][t];
    ++microservices_[e.callee];
    ++calls_[CallKey{e.caller, e.callee, e.type}];
    rt_[t].push_back(e.duration_ms());
    if (!ix.children[i].empty()) ++fanout_[static_cast<int64_t>(ix.children[i].size())];
  }
  sorted_ = false;
}

void CorpusStats::sort() const {
  if (sorted_) return;
  for (auto& v : rt_) std::sort(v.begin(), v.end());
  sorted_ = true;
}

int64_t CorpusStats::rt_quantile(CallType t, double q) const {
  sort();
  return quantile(rt_[static_cast<int>(t)], q);
}

int64_t CorpusStats::rt_quantile(double q) const {
  sort();
  std::vector<int64_t> all;
  for (auto& v : rt_) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  return quantile(all, q);
}

nlohmann::ordered_json CorpusStats::to_json(size_t top_n) const {
  sort();
  nlohmann::ordered_json j;
  j["graphs"] = graphs_;
  j["edges"] = edges_;
  j["valid_graphs"] = valid_;
  j["services"] = services_.size();
  j["microservices"] = microservices_.size();
  if (!labels_.empty()) j["labels"] = labels_;
  auto hist = [](const auto& m) {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    for (auto& [k, v] : m) h[std::to_string(k)] = v;
    return h;
  };
  j["depth"] = hist(depth_);
  j["num_edges"] = hist(num_edges_);
  j["fanout"] = hist(fanout_);
  nlohmann::ordered_json types = nlohmann::ordered_json::object();
  for (int t = 0; t <= kNumCallTypes; ++t)
    if (types_[t]) types[std::string(call_type_name(static_cast<CallType>(t)))] = types_[t];
  j["types"] = types;
  nlohmann::ordered_json tbd = nlohmann::ordered_json::object();
  for (auto& [d, arr] : types_by_depth_) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (int t = 0; t <= kNumCallTypes; ++t)
      if (arr[t]) o[std::string(call_type_name(static_cast<CallType>(t)))] = arr[t];
    tbd[std::to_string(d)] = o;
  }
  j["types_by_depth"] = tbd;
  nlohmann::ordered_json rt = nlohmann::ordered_json::object();
  auto qs = [&](auto get) {
    nlohmann::ordered_json o;
    for (double q : kQuantiles) o[fmt::format("p{}", static_cast<int>(q * 100))] = get(q);
    return o;
  };
  rt["all"] = qs([&](double q) { return rt_quantile(q); });
  for (int t = 0; t <= kNumCallTypes; ++t)
    if (!rt_[t].empty())
      rt[std::string(call_type_name(static_cast<CallType>(t)))] =
          qs([&](double q) { return quantile(rt_[t], q); });
  j["response_time_ms"] = rt;
  std::vector<int64_t> lat = latency_;
  std::sort(lat.begin(), lat.end());
  j["latency_ms"] = qs([&](double q) { return quantile(lat, q); });
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  for (auto& [name, n] : top_names(services_, top_n))
    ts.push_back({{"service", name}, {"graphs", n}});
  j["top_services"] = ts;
  nlohmann::ordered_json tm = nlohmann::ordered_json::array();
  for (auto& [name, n] : top_names(microservices_, top_n))
    tm.push_back({{"microservice", name}, {"calls", n}});
  j["top_microservices"] = tm;
  nlohmann::ordered_json tc = nlohmann::ordered_json::array();
  for (auto& [k, n] : top(calls_, top_n))
    tc.push_back({{"caller", k.caller},
                  {"callee", k.callee},
                  {"type", std::string(call_type_name(k.type))},
                  {"count", n}});
  j["top_calls"] = tc;
  return j;
}

std::string CorpusStats::to_text(size_t top_n) const {
  nlohmann::ordered_json j = to_json(top_n);
  std::string s;
  s += fmt::format("graphs {}  edges {}  valid {}  services {}  microservices {}\n", graphs_,
                   edges_, valid_, services_.size(), microservices_.size());
  if (!labels_.empty()) {
    s += "labels    ";
    for (auto& [l, n] : labels_) s += fmt::format(" {}:{}", l, n);
    s += "\n";
  }
  auto hist_line = [&](const char* name, const nlohmann::ordered_json& h) {
    s += fmt::format("{:<10}", name);
    int shown = 0;
    for (auto& [k, v] : h.items()) {
      if (++shown > 16) {
        s += " ...";
        break;
      }
      s += fmt::format(" {}:{}", k, v.get<uint64_t>());
    }
    s += "\n";
  };
  hist_line("depth", j["depth"]);
  hist_line("num_edges", j["num_edges"]);
  hist_line("fan-out", j["fanout"]);
  hist_line("types", j["types"]);
  s += "response time ms (p50 p90 p99 max):\n";
  for (auto& [t, o] : j["response_time_ms"].items())
    s += fmt::format("  {:<8} {} {} {} {}\n", t, o["p50"].get<int64_t>(), o["p90"].get<int64_t>(),
                     o["p99"].get<int64_t>(), o["p100"].get<int64_t>());
  auto& l = j["latency_ms"];
  s += fmt::format("graph latency ms (p50 p90 p99 max): {} {} {} {}\n", l["p50"].get<int64_t>(),
                   l["p90"].get<int64_t>(), l["p99"].get<int64_t>(), l["p100"].get<int64_t>());
  s += "top services:\n";
  for (auto& o : j["top_services"])
    s += fmt::format("  {:<16} {}\n", o["service"].get<std::string>(), o["graphs"].get<uint64_t>());
  s += "top calls (caller -> callee, type):\n";
  for (auto& o : j["top_calls"])
    s += fmt::format("  {} -> {} {:<5} {}\n", o["caller"].get<std::string>(),
                     o["callee"].get<std::string>(), o["type"].get<std::string>(),
                     o["count"].get<uint64_t>());
  return s;
}

}  // namespace tracelm
