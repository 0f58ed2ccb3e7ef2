#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "corpus/corpus.h"

namespace tracelm {

// ---------------------------------------------------------------- profile

void GraphSetProfile::add(const CallGraph& g) {
  ++graphs;
  edges += g.edges.size();
  stats.add(g);
  edges_per_graph.push_back(static_cast<double>(g.edges.size()));
  depth.push_back(static_cast<double>(g.depth()));
  // Per-graph degrees of each microservice (callers and callees, USER excluded).
  std::unordered_map<std::string_view, std::pair<uint64_t, uint64_t>> deg;  // in, out
  std::vector<std::string_view> order;  // first appearance, for a deterministic order
  auto node = [&](std::string_view n) -> std::pair<uint64_t, uint64_t>& {
    auto [it, inserted] = deg.try_emplace(n, 0, 0);
    if (inserted) order.push_back(n);
    return it->second;
  };
  for (const Edge& e : g.edges) {
    ++calls[Call{e.caller, e.callee, e.type}];
    ++callee_calls[e.callee];
    response_time.push_back(static_cast<double>(e.duration_ms()));
    if (e.caller != kUserNode) ++node(e.caller).second;
    if (e.callee != kUserNode) ++node(e.callee).first;
  }
  for (std::string_view n : order) {
    in_degree.push_back(static_cast<double>(deg[n].first));
    out_degree.push_back(static_cast<double>(deg[n].second));
  }
  const CallGraph* gp = &g;
  CallGraph sorted;
  if (!g.is_canonical()) {
    sorted = g;
    sorted.canonicalize();
    gp = &sorted;
  }
  GraphIndex ix = gp->index();
  for (const auto& ch : ix.children)
    if (!ch.empty()) fanout.push_back(static_cast<double>(ch.size()));
}

// ---------------------------------------------------------------- popular calls

double kl_divergence(const std::vector<double>& p, const std::vector<double>& q, double eps) {
  const size_t n = std::min(p.size(), q.size());
  if (n == 0) return 0;
  auto smooth = [&](const std::vector<double>& w) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += w[i];
    std::vector<double> out(n);
    double psum = 0;
    for (size_t i = 0; i < n; ++i) psum += (out[i] = sum > 0 ? w[i] / sum : 0.0);
    for (size_t i = 0; i < n; ++i) out[i] = (out[i] + eps) / (psum + static_cast<double>(n) * eps);
    return out;
  };
  std::vector<double> ps = smooth(p), qs = smooth(q);
  double kl = 0;
  for (size_t i = 0; i < n; ++i)
    if (ps[i] > 0) kl += ps[i] * std::log(ps[i] / qs[i]);
  return std::max(0.0, kl);
}

PopularCalls popular_calls(const GraphSetProfile& real, const GraphSetProfile& synthetic, size_t n,
                           double eps) {
  std::vector<std::pair<const Call*, uint64_t>> v;
  v.reserve(real.calls.size());
  for (auto& [c, k] : real.calls) v.emplace_back(&c, k);
  // std::map order is (caller, callee, type) ascending: a stable sort by count keeps it for ties.
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (v.size() > n) v.resize(n);
  PopularCalls pc;
  uint64_t rsum = 0, ssum = 0;
  for (auto& [c, k] : v) {
    pc.calls.push_back(*c);
    pc.real_counts.push_back(k);
    auto it = synthetic.calls.find(*c);
    uint64_t s = it == synthetic.calls.end() ? 0 : it->second;
    pc.synthetic_counts.push_back(s);
    rsum += k;
    ssum += s;
  }
  // "other": each set's edges outside the popular calls, so that both
  // distributions are over all of the set's edges.
  pc.real_other = real.edges - rsum;
  pc.synthetic_other = synthetic.edges - ssum;
  auto share = [](uint64_t k, uint64_t all) {
    return all ? static_cast<double>(k) / static_cast<double>(all) : 0.0;
  };
  std::vector<double> rw, sw;
  for (size_t i = 0; i < pc.calls.size(); ++i) {
    rw.push_back(static_cast<double>(pc.real_counts[i]));
    sw.push_back(static_cast<double>(pc.synthetic_counts[i]));
    pc.real_p.push_back(share(pc.real_counts[i], real.edges));
    pc.synthetic_p.push_back(share(pc.synthetic_counts[i], synthetic.edges));
  }
  rw.push_back(static_cast<double>(pc.real_other));
  sw.push_back(static_cast<double>(pc.synthetic_other));
  pc.real_other_p = share(pc.real_other, real.edges);
  pc.synthetic_other_p = share(pc.synthetic_other, synthetic.edges);
  pc.synthetic_share = share(ssum, synthetic.edges);
  pc.defined = real.edges > 0 && synthetic.edges > 0;
  pc.kl = pc.defined ? kl_divergence(rw, sw, eps) : 0.0;
  return pc;
}

// ---------------------------------------------------------------- caller flows

double js_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  const size_t n = std::min(p.size(), q.size());
  double ps = 0, qs = 0;
  for (size_t i = 0; i < n; ++i) ps += p[i], qs += q[i];
  if (ps <= 0 || qs <= 0) return (ps <= 0) == (qs <= 0) ? 0.0 : 1.0;
  double js = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = p[i] / ps, b = q[i] / qs, m = (a + b) / 2;
    if (a > 0) js += 0.5 * a * std::log2(a / m);
    if (b > 0) js += 0.5 * b * std::log2(b / m);
  }
  return std::clamp(js, 0.0, 1.0);
}

CallerFlows caller_flows(const GraphSetProfile& real, const GraphSetProfile& synthetic) {
  CallerFlows out;
  out.defined = real.edges > 0 && synthetic.edges > 0;
  if (!out.defined) return out;
  // Per real caller: (callee, type) -> (real count, synthetic count).
  using Callee = std::pair<std::string_view, CallType>;
  std::map<std::string_view, std::map<Callee, std::pair<double, double>>> by_caller;
  for (auto& [c, k] : real.calls)
    by_caller[c.caller][{c.callee, c.type}].first = static_cast<double>(k);
  for (auto& [c, k] : synthetic.calls) {
    auto it = by_caller.find(c.caller);
    if (it != by_caller.end()) it->second[{c.callee, c.type}].second = static_cast<double>(k);
  }
  for (auto& [caller, calls] : by_caller) {
    CallerFlow f;
    f.caller = std::string(caller);
    std::vector<double> p, q;
    double rsum = 0, ssum = 0;
    for (auto& [c, rs] : calls) {
      p.push_back(rs.first);
      q.push_back(rs.second);
      rsum += rs.first;
      ssum += rs.second;
    }
    f.real_edges = static_cast<uint64_t>(rsum);
    f.synthetic_edges = static_cast<uint64_t>(ssum);
    f.weight = rsum / static_cast<double>(real.edges);
    f.js = js_divergence(p, q);
    double worst = -1;
    for (auto& [c, rs] : calls) {
      const double a = rs.first / rsum, b = ssum > 0 ? rs.second / ssum : 0.0;
      if (std::fabs(a - b) > worst) {
        worst = std::fabs(a - b);
        f.most_changed = Call{f.caller, std::string(c.first), c.second};
        f.real_share = a;
        f.synthetic_share = b;
      }
    }
    out.js += f.weight * f.js;
    out.callers.push_back(std::move(f));
  }
  // by_caller is in caller order: a stable sort keeps it for ties.
  std::stable_sort(out.callers.begin(), out.callers.end(),
                   [](const auto& a, const auto& b) { return a.weight * a.js > b.weight * b.js; });
  return out;
}

// ---------------------------------------------------------------- heavy hitters

std::vector<std::string> top_k(const std::map<std::string, uint64_t>& counts, size_t k) {
  std::vector<std::pair<const std::string*, uint64_t>> v;
  v.reserve(counts.size());
  for (auto& [name, c] : counts) v.emplace_back(&name, c);
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size() && i < k; ++i) out.push_back(*v[i].first);
  return out;
}

void set_heavy_hitter_runs(std::vector<HeavyHitterPoint>& points,
                           const std::vector<std::vector<double>>& acc) {
  for (size_t k = 0; k < acc.size() && k < points.size(); ++k) {
    double mean = 0, var = 0;
    for (double a : acc[k]) mean += a / static_cast<double>(acc[k].size());
    for (double a : acc[k]) var += (a - mean) * (a - mean) / static_cast<double>(acc[k].size());
    points[k].accuracy = mean;
    points[k].accuracy_sd = std::sqrt(var);
    points[k].runs = acc[k].size();
  }
}

std::vector<HeavyHitterPoint> heavy_hitters(const GraphSetProfile& real,
                                            const GraphSetProfile& synthetic,
                                            const std::vector<size_t>& ks) {
  std::vector<HeavyHitterPoint> out;
  for (size_t k : ks) {
    HeavyHitterPoint p;
    p.k = k;
    p.k_effective = std::min(k, real.callee_calls.size());
    std::vector<std::string> r = top_k(real.callee_calls, p.k_effective);
    std::vector<std::string> s = top_k(synthetic.callee_calls, p.k_effective);
    std::sort(r.begin(), r.end());
    std::sort(s.begin(), s.end());
    std::vector<std::string> both;
    std::set_intersection(r.begin(), r.end(), s.begin(), s.end(), std::back_inserter(both));
    p.overlap = both.size();
    p.accuracy =
        p.k_effective ? static_cast<double>(p.overlap) / static_cast<double>(p.k_effective) : 0.0;
    out.push_back(p);
  }
  return out;
}

// ---------------------------------------------------------------- EMD

double wasserstein1(std::vector<double> a, std::vector<double> b) {
  if (a.empty() || b.empty()) return 0;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  size_t i = 0, j = 0;
  double x = std::min(a[0], b[0]), w = 0;
  // Sweep the merged support; between consecutive points the CDFs are constant.
  while (i < a.size() || j < b.size()) {
    double next;
    if (j >= b.size() || (i < a.size() && a[i] <= b[j])) {
      next = a[i];
    } else {
      next = b[j];
    }
    w += std::fabs(static_cast<double>(i) / na - static_cast<double>(j) / nb) * (next - x);
    x = next;
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
  }
  return w;
}

double quantile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

namespace {

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

std::vector<double> cdf_points(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::vector<double> out;
  if (v.empty()) return out;
  for (int i = 0; i < kCdfPoints; ++i)
    out.push_back(quantile_sorted(v, static_cast<double>(i) / (kCdfPoints - 1)));
  return out;
}

// Finite doubles for JSON (NaN/inf would become null silently).
double finite(double x) { return std::isfinite(x) ? x : 0.0; }

}  // namespace

Emd normalized_emd(const std::vector<double>& real, const std::vector<double>& synthetic) {
  Emd e;
  e.real_mean = mean(real);
  e.synthetic_mean = mean(synthetic);
  e.real_cdf = cdf_points(real);
  e.synthetic_cdf = cdf_points(synthetic);
  e.defined = !real.empty() && !synthetic.empty();
  if (!e.defined) return e;
  e.w1 = wasserstein1(real, synthetic);
  e.normalized = e.real_mean != 0 ? e.w1 / std::fabs(e.real_mean) : e.w1;
  return e;
}

// ---------------------------------------------------------------- memorization

std::string TrainingIndex::key(const CallGraph& g) {
  CallGraph c;
  c.service = g.service;
  c.edges = g.edges;
  c.canonicalize();
  return graph_to_json(c);
}

void TrainingIndex::add(const CallGraph& g) { keys_.insert(key(g)); }

bool TrainingIndex::contains(const CallGraph& g) const { return keys_.count(key(g)) != 0; }

// ---------------------------------------------------------------- report

StructureSummary StructureSummary::of(const GraphSetProfile& p) {
  StructureSummary s;
  s.graphs = p.graphs;
  s.edges = p.edges;
  s.mean_edges = mean(p.edges_per_graph);
  s.mean_depth = mean(p.depth);
  s.mean_fanout = mean(p.fanout);
  return s;
}

nlohmann::ordered_json StructureSummary::to_json() const {
  return {{"graphs", graphs},
          {"edges", edges},
          {"mean_edges_per_graph", finite(mean_edges)},
          {"mean_depth", finite(mean_depth)},
          {"mean_fanout", finite(mean_fanout)}};
}

double RealismReport::validity_rate() const {
  return validity.graphs
             ? static_cast<double>(validity.valid_graphs) / static_cast<double>(validity.graphs)
             : 0.0;
}

double RealismReport::strict_validity_rate() const {
  return validity.graphs ? static_cast<double>(validity.strict_valid_graphs) /
                               static_cast<double>(validity.graphs)
                         : 0.0;
}

const Emd* RealismReport::find_emd(const std::string& what) const {
  for (auto& [n, e] : emd)
    if (n == what) return &e;
  return nullptr;
}

RealismReport RealismReport::compute(std::string name, const GraphSetProfile& real,
                                     const std::vector<CallGraph>& synthetic,
                                     const TrainingIndex* train, const RealismOptions& opt) {
  RealismReport r;
  r.name = std::move(name);
  r.options = opt;
  GraphSetProfile syn;
  std::vector<const CallGraph*> kept;  // the graphs in the distribution metrics
  if (train) r.memorization = Memorization{};
  for (const CallGraph& g : synthetic) {
    std::vector<Violation> vs = validate(g);
    r.validity.add(vs);
    if (!opt.valid_only || is_valid(vs)) {
      syn.add(g);
      kept.push_back(&g);
      ++r.evaluated;
    }
    if (train) {
      ++r.memorization->graphs;
      if (train->contains(g)) ++r.memorization->memorized;
    }
  }
  if (r.memorization && r.memorization->graphs)
    r.memorization->rate = static_cast<double>(r.memorization->memorized) /
                           static_cast<double>(r.memorization->graphs);
  r.popular = popular_calls(real, syn, opt.popular_calls, opt.kl_epsilon);
  r.flows = caller_flows(real, syn);
  r.heavy_hitters = tracelm::heavy_hitters(real, syn, opt.heavy_hitter_ks);
  if (opt.runs > 1 && kept.size() >= opt.runs) {
    // Consecutive parts [i n / runs, (i + 1) n / runs): mean and sd per K.
    std::vector<std::vector<double>> acc(r.heavy_hitters.size());
    for (size_t i = 0; i < opt.runs; ++i) {
      GraphSetProfile part;
      for (size_t g = i * kept.size() / opt.runs; g < (i + 1) * kept.size() / opt.runs; ++g)
        part.add(*kept[g]);
      std::vector<HeavyHitterPoint> h = tracelm::heavy_hitters(real, part, opt.heavy_hitter_ks);
      for (size_t k = 0; k < h.size(); ++k) acc[k].push_back(h[k].accuracy);
    }
    set_heavy_hitter_runs(r.heavy_hitters, acc);
  }
  r.emd.emplace_back("in_degree", normalized_emd(real.in_degree, syn.in_degree));
  r.emd.emplace_back("out_degree", normalized_emd(real.out_degree, syn.out_degree));
  r.emd.emplace_back("response_time", normalized_emd(real.response_time, syn.response_time));
  r.emd.emplace_back("edges_per_graph", normalized_emd(real.edges_per_graph, syn.edges_per_graph));
  r.emd.emplace_back("depth", normalized_emd(real.depth, syn.depth));
  r.emd.emplace_back("fanout", normalized_emd(real.fanout, syn.fanout));
  r.real_structure = StructureSummary::of(real);
  r.synthetic_structure = StructureSummary::of(syn);
  r.real_stats = real.stats.to_json(20);
  r.synthetic_stats = syn.stats.to_json(20);
  return r;
}

nlohmann::ordered_json RealismReport::to_json() const {
  nlohmann::ordered_json j;
  j["name"] = name;
  if (!protocol.empty()) j["protocol"] = protocol;
  if (calls_only) j["calls_only"] = true;  // graph metrics not computed (eval/call_rows.h)
  nlohmann::ordered_json v;
  v["graphs"] = validity.graphs;
  v["valid"] = validity.valid_graphs;
  v["strict_valid"] = validity.strict_valid_graphs;
  v["rate"] = validity_rate();
  v["strict_rate"] = strict_validity_rate();
  nlohmann::ordered_json rules = nlohmann::ordered_json::object();
  for (int i = 0; i < kNumRules; ++i)
    rules[std::string(rule_code(static_cast<Rule>(i)))] = {{"violations", validity.violations[i]},
                                                           {"graphs", validity.graphs_with[i]}};
  v["rules"] = rules;
  j["validity"] = v;
  j["evaluated_graphs"] = evaluated;
  j["valid_only"] = options.valid_only;

  nlohmann::ordered_json pc;
  pc["n"] = popular.calls.size();
  pc["epsilon"] = options.kl_epsilon;
  pc["direction"] = "KL(real || synthetic)";
  pc["defined"] = popular.defined;
  pc["kl"] = popular.defined ? nlohmann::ordered_json(finite(popular.kl)) : nullptr;
  pc["synthetic_share"] = finite(popular.synthetic_share);
  pc["other"] = {{"real_count", popular.real_other},
                 {"synthetic_count", popular.synthetic_other},
                 {"real_p", popular.real_other_p},
                 {"synthetic_p", popular.synthetic_other_p}};
  nlohmann::ordered_json calls = nlohmann::ordered_json::array();
  for (size_t i = 0; i < popular.calls.size(); ++i)
    calls.push_back({{"caller", popular.calls[i].caller},
                     {"callee", popular.calls[i].callee},
                     {"type", std::string(call_type_name(popular.calls[i].type))},
                     {"real_count", popular.real_counts[i]},
                     {"synthetic_count", popular.synthetic_counts[i]},
                     {"real_p", popular.real_p[i]},
                     {"synthetic_p", popular.synthetic_p[i]}});
  pc["calls"] = calls;
  j["popular_calls"] = pc;

  nlohmann::ordered_json fl;
  fl["defined"] = flows.defined;
  fl["js"] = flows.defined ? nlohmann::ordered_json(finite(flows.js)) : nullptr;
  fl["definition"] = "sum over real callers of (share of real edges) * JS(callee split), bits";
  nlohmann::ordered_json callers = nlohmann::ordered_json::array();
  for (size_t i = 0; i < flows.callers.size() && i < kFlowCallersInJson; ++i) {
    const CallerFlow& f = flows.callers[i];
    callers.push_back({{"caller", f.caller},
                       {"real_edges", f.real_edges},
                       {"synthetic_edges", f.synthetic_edges},
                       {"weight", finite(f.weight)},
                       {"js", finite(f.js)},
                       {"most_changed",
                        {{"callee", f.most_changed.callee},
                         {"type", std::string(call_type_name(f.most_changed.type))},
                         {"real_share", finite(f.real_share)},
                         {"synthetic_share", finite(f.synthetic_share)}}}});
  }
  fl["callers"] = callers;
  j["caller_flows"] = fl;

  nlohmann::ordered_json hh = nlohmann::ordered_json::array();
  for (auto& p : heavy_hitters)
    hh.push_back({{"k", p.k},
                  {"k_effective", p.k_effective},
                  {"overlap", p.overlap},
                  {"accuracy", p.accuracy},
                  {"runs", p.runs},
                  {"accuracy_sd", p.accuracy_sd}});
  j["heavy_hitters"] = hh;

  nlohmann::ordered_json em = nlohmann::ordered_json::object();
  for (auto& [n, e] : emd) {
    nlohmann::ordered_json o;
    o["defined"] = e.defined;
    o["normalized"] = e.defined ? nlohmann::ordered_json(finite(e.normalized)) : nullptr;
    o["w1"] = e.defined ? nlohmann::ordered_json(finite(e.w1)) : nullptr;
    o["real_mean"] = finite(e.real_mean);
    o["synthetic_mean"] = finite(e.synthetic_mean);
    o["cdf_quantiles"] = kCdfPoints;  // q = i / (kCdfPoints - 1)
    o["real_cdf"] = e.real_cdf;
    o["synthetic_cdf"] = e.synthetic_cdf;
    em[n] = o;
  }
  j["emd"] = em;
  j["emd_normalization"] = "w1 / mean of the real distribution";

  j["structure"] = {{"real", real_structure.to_json()},
                    {"synthetic", synthetic_structure.to_json()}};
  j["stats"] = {{"real", real_stats}, {"synthetic", synthetic_stats}};
  if (memorization) {
    j["memorization"] = {{"graphs", memorization->graphs},
                         {"memorized", memorization->memorized},
                         {"rate", memorization->rate}};
  } else {
    j["memorization"] = nullptr;
  }
  return j;
}

}  // namespace tracelm
