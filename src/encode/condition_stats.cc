#include "encode/condition_stats.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "io/json_file.h"

namespace tracelm {

std::string ConditionStats::call_key(const std::string& caller, const std::string& callee,
                                     CallType t) {
  return caller + " " + callee + " " + std::string(call_type_name(t));
}

void ConditionStats::add(const CallGraph& g) {
  Service& s = services_[g.service];
  ++s.graphs;
  s.latencies.push_back(g.latency());
  std::set<std::string> seen;
  for (const Edge& e : g.edges) seen.insert(call_key(e.caller, e.callee, e.type));
  for (const std::string& k : seen) ++s.calls[k];
}

std::vector<std::string> ConditionStats::callees() const {
  std::vector<std::string> out;
  for (const auto& [name, s] : services_)
    for (const auto& [key, n] : s.calls) {
      size_t a = key.find(' '), b = key.rfind(' ');  // "caller callee type"
      if (a != std::string::npos && b > a) out.push_back(key.substr(a + 1, b - a - 1));
    }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::map<std::string, std::vector<std::string>> ConditionStats::callees_by_caller() const {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [name, s] : services_)
    for (const auto& [key, n] : s.calls) {
      size_t a = key.find(' '), b = key.rfind(' ');  // "caller callee type"
      if (a != std::string::npos && b > a)
        out[key.substr(0, a)].push_back(key.substr(a + 1, b - a - 1));
    }
  for (auto& [caller, v] : out) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  }
  return out;
}

void ConditionStats::finalize() {
  for (auto& [name, s] : services_) {
    if (s.latencies.empty()) continue;
    std::sort(s.latencies.begin(), s.latencies.end());
    double sum = 0;
    for (int64_t v : s.latencies) sum += static_cast<double>(v);
    s.mean = sum / static_cast<double>(s.latencies.size());
    // p90 by the nearest-rank method.
    size_t rank = static_cast<size_t>(0.9 * static_cast<double>(s.latencies.size()) + 0.999999);
    s.p90 = static_cast<double>(s.latencies[std::max<size_t>(rank, 1) - 1]);
    std::vector<int64_t>().swap(s.latencies);
  }
}

bool ConditionStats::is_rare_call(const std::string& service, const std::string& caller,
                                  const std::string& callee, CallType type) const {
  auto it = services_.find(service);
  if (it == services_.end() || it->second.graphs == 0) return false;
  auto c = it->second.calls.find(call_key(caller, callee, type));
  uint64_t n = c == it->second.calls.end() ? 0 : c->second;
  return static_cast<double>(n) < kRareFraction * static_cast<double>(it->second.graphs);
}

bool ConditionStats::is_high_latency(const std::string& service, int64_t latency_ms) const {
  auto it = services_.find(service);
  if (it == services_.end()) return false;
  const Service& s = it->second;
  return s.p90 - s.mean > kHighLatencyGapMs && static_cast<double>(latency_ms) >= s.p90;
}

double ConditionStats::latency_p90(const std::string& service) const {
  auto it = services_.find(service);
  return it == services_.end() ? 0 : it->second.p90;
}

double ConditionStats::latency_mean(const std::string& service) const {
  auto it = services_.find(service);
  return it == services_.end() ? 0 : it->second.mean;
}

uint64_t ConditionStats::graphs(const std::string& service) const {
  auto it = services_.find(service);
  return it == services_.end() ? 0 : it->second.graphs;
}

nlohmann::json ConditionStats::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, s] : services_)
    j[name] = {
        {"graphs", s.graphs}, {"latency_p90", s.p90}, {"latency_mean", s.mean}, {"calls", s.calls}};
  return j;
}

ConditionStats ConditionStats::from_json(const nlohmann::json& j) {
  ConditionStats c;
  for (const auto& [name, v] : j.items()) {
    Service s;
    s.graphs = json_count(v.at("graphs"));
    s.p90 = v.at("latency_p90").get<double>();
    s.mean = v.at("latency_mean").get<double>();
    const nlohmann::json& calls = v.at("calls");
    if (!calls.is_object()) throw std::out_of_range("calls: not an object");
    for (const auto& [callee, n] : calls.items()) s.calls[callee] = json_count(n);
    c.services_[name] = std::move(s);
  }
  return c;
}

}  // namespace tracelm
