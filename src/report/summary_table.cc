#include "report/summary_table.h"

#include <algorithm>

#include <fmt/format.h>

namespace tracelm {

namespace {

std::string pct(double x) { return fmt::format("{:.1f}%", 100 * x); }

std::string num(double x) { return fmt::format("{:.3f}", x); }

}  // namespace

SummaryTable summary_table(const std::vector<RealismReport>& reps, const StructureSummary& real) {
  SummaryTable t;
  t.head = {"metric", "real"};
  for (auto& r : reps) t.head.push_back(r.name);
  auto row = [&](std::string label, int indent, std::string real_cell, auto cell) {
    SummaryRow v{std::move(label), indent, {std::move(real_cell)}};
    for (auto& r : reps) v.cells.push_back(cell(r));
    t.rows.push_back(std::move(v));
  };
  if (std::any_of(reps.begin(), reps.end(), [](auto& r) { return !r.protocol.empty(); }))
    row("protocol", 0, "", [](const RealismReport& r) {
      return !r.protocol.empty() ? r.protocol
             : r.calls_only      ? std::string("calls")
                                 : std::string("?");
    });
  // Rows about whole graphs: n/a for a calls-only set (eval/call_rows.h).
  auto graph_cell = [](auto f) {
    return [f](const RealismReport& r) { return r.calls_only ? std::string("n/a") : f(r); };
  };
  row("graphs", 0, std::to_string(real.graphs),
      graph_cell([](const RealismReport& r) { return std::to_string(r.validity.graphs); }));
  row("valid (no error)", 0, "",
      graph_cell([](const RealismReport& r) { return pct(r.validity_rate()); }));
  row("strictly valid", 0, "",
      graph_cell([](const RealismReport& r) { return pct(r.strict_validity_rate()); }));
  for (int i = 0; i < kNumRules; ++i) {
    bool any = false;
    for (auto& r : reps) any = any || r.validity.violations[i] != 0;
    if (!any) continue;
    row(fmt::format("{} (graphs)", rule_code(static_cast<Rule>(i))), 1, "",
        graph_cell(
            [i](const RealismReport& r) { return std::to_string(r.validity.graphs_with[i]); }));
  }
  row(fmt::format("popular calls KL (top {} + other)",
                  reps.empty() ? 0 : reps[0].popular.calls.size()),
      0, "", [](const RealismReport& r) {
        return r.popular.defined ? num(r.popular.kl) : std::string("n/a");
      });
  row("share of edges in top calls", 1, "",
      [](const RealismReport& r) { return pct(r.popular.synthetic_share); });
  row("caller flows JS (edge-weighted)", 0, "", [](const RealismReport& r) {
    return r.flows.defined ? fmt::format("{:.4f}", r.flows.js) : std::string("n/a");
  });
  bool capped = false;
  if (!reps.empty())
    for (size_t i = 0; i < reps[0].heavy_hitters.size(); ++i) {
      const HeavyHitterPoint& p = reps[0].heavy_hitters[i];
      std::string name = p.k_effective < p.k
                             ? fmt::format("heavy hitters K={} (*{})", p.k, p.k_effective)
                             : fmt::format("heavy hitters K={}", p.k);
      if (p.runs > 1) name += fmt::format(", mean of {}", p.runs);
      row(name, 0, "", [i](const RealismReport& r) {
        if (i >= r.heavy_hitters.size()) return std::string("n/a");
        const HeavyHitterPoint& h = r.heavy_hitters[i];
        return h.runs > 1 ? pct(h.accuracy) + fmt::format(" ±{:.1f}", 100 * h.accuracy_sd)
                          : pct(h.accuracy);
      });
    }
  for (auto& r : reps)
    for (auto& p : r.heavy_hitters) capped = capped || p.k_effective < p.k;
  if (!reps.empty())
    for (auto& [what, e0] : reps[0].emd) {
      std::string w = what;
      row("EMD/mean " + w, 0, num(e0.real_mean), [w](const RealismReport& r) {
        const Emd* e = r.find_emd(w);
        return e && e->defined ? num(e->normalized) : std::string("n/a");
      });
    }
  row("mean edges per graph", 0, num(real.mean_edges),
      graph_cell([](const RealismReport& r) { return num(r.synthetic_structure.mean_edges); }));
  row("mean depth", 0, num(real.mean_depth),
      graph_cell([](const RealismReport& r) { return num(r.synthetic_structure.mean_depth); }));
  row("mean fan-out", 0, num(real.mean_fanout),
      graph_cell([](const RealismReport& r) { return num(r.synthetic_structure.mean_fanout); }));
  row("memorized (= a training graph)", 0, "", [](const RealismReport& r) {
    return r.memorization ? pct(r.memorization->rate) : std::string("n/a");
  });
  for (auto& r : reps)
    if (r.calls_only)
      t.notes.push_back(fmt::format(
          "{}: calls, not graphs ({} calls): only the metrics defined on calls (popular calls, "
          "caller flows, heavy hitters, response time); the others are n/a",
          r.name, r.synthetic_structure.edges));
  if (capped) t.notes.push_back("(*N: the real set has fewer than K microservices; K capped at N)");
  t.notes.push_back(
      fmt::format("KL(real || synthetic) over the real top calls + all other edges: natural log, "
                  "additive smoothing epsilon {}; caller flows: per real caller, Jensen-Shannon "
                  "divergence (bits) of its split over callees, weighted by its share of real "
                  "edges; EMD: Wasserstein-1 / real mean",
                  reps.empty() ? kKlEpsilon : reps[0].options.kl_epsilon));
  return t;
}

std::string summary_text(const SummaryTable& t) {
  std::vector<std::vector<std::string>> lines{t.head};
  for (const SummaryRow& r : t.rows) {
    std::vector<std::string> v{std::string(2 * static_cast<size_t>(r.indent), ' ') + r.label};
    v.insert(v.end(), r.cells.begin(), r.cells.end());
    lines.push_back(std::move(v));
  }
  std::vector<size_t> width(t.head.size());
  for (auto& v : lines)
    for (size_t c = 0; c < v.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], v[c].size());
  std::string s;
  for (auto& v : lines) {
    for (size_t c = 0; c < v.size() && c < width.size(); ++c)
      s += c == 0 ? fmt::format("{:<{}}", v[c], width[c]) : fmt::format("  {:>{}}", v[c], width[c]);
    s += '\n';
  }
  for (const std::string& n : t.notes) s += n + '\n';
  return s;
}

}  // namespace tracelm
