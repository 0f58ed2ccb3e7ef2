#include "eval/accuracy.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/validate.h"
#include "util/rng.h"

namespace tracelm {

const char* const kAccuracyCsvHeader =
    "temperature,num_edges,depth,samples,valid,edges_ok,depth_ok,latency_ok,all_ok\n";

AccuracyGrid accuracy_requests(const std::vector<CallGraph>& prompts, int64_t max_edges,
                               int64_t max_depth, int64_t n, uint64_t seed) {
  AccuracyGrid grid;
  grid.max_edges = max_edges;
  grid.max_depth = max_depth;
  if (prompts.empty()) return grid;
  Rng rng(seed);
  for (int64_t e = 1; e <= max_edges; ++e)
    for (int64_t d = 1; d <= max_depth; ++d) {
      if (d > e || (d == 1) != (e == 1)) continue;
      for (int64_t i = 0; i < n; ++i) {
        const CallGraph& v = prompts[rng.next() % prompts.size()];
        GenerateRequest r;
        r.service = v.service;
        r.latency = v.latency();
        r.num_edges = e;
        r.depth = d;
        grid.requests.push_back(r);
        grid.cell_of.emplace_back(e, d);
      }
    }
  return grid;
}

AccuracyCell score_request(const GenerateRequest& r, const GeneratedGraph& g) {
  AccuracyCell c;
  c.n = 1;
  c.valid = g.complete && is_valid(validate(g.graph));
  if (!c.valid) return c;
  c.edges = !r.num_edges || static_cast<int64_t>(g.graph.edges.size()) == *r.num_edges;
  c.depth = !r.depth || g.graph.depth() == *r.depth;
  c.latency = !r.latency || g.graph.latency() == *r.latency;
  c.all = c.edges && c.depth;
  return c;
}

namespace {
void add(AccuracyCell& to, const AccuracyCell& c) {
  to.n += c.n;
  to.valid += c.valid;
  to.edges += c.edges;
  to.depth += c.depth;
  to.latency += c.latency;
  to.all += c.all;
}
}  // namespace

AccuracyTable tally(const AccuracyGrid& grid, const std::vector<GeneratedGraph>& out,
                    double temperature) {
  AccuracyTable t;
  t.temperature = temperature;
  t.max_edges = grid.max_edges;
  t.max_depth = grid.max_depth;
  size_t n = std::min(out.size(), grid.requests.size());
  for (size_t i = 0; i < n; ++i) {
    AccuracyCell c = score_request(grid.requests[i], out[i]);
    add(t.cells[grid.cell_of[i]], c);
    add(t.total, c);
  }
  return t;
}

std::string accuracy_csv_rows(const AccuracyTable& t) {
  std::string csv;
  for (const auto& [k, c] : t.cells)
    csv += fmt::format("{},{},{},{},{},{},{},{},{}\n", t.temperature, k.first, k.second, c.n,
                       c.valid, c.edges, c.depth, c.latency, c.all);
  return csv;
}

std::string accuracy_summary(const AccuracyTable& t) {
  const AccuracyCell& c = t.total;
  auto pct = [&](int64_t x) { return 100.0 * static_cast<double>(x) / std::max<int64_t>(1, c.n); };
  return fmt::format(
      "T={:.1f}: {} graphs, accuracy (valid + edges + depth) {:.1f}%; valid {:.1f}%, edges "
      "{:.1f}%, depth {:.1f}%, latency {:.1f}%",
      t.temperature, c.n, pct(c.all), pct(c.valid), pct(c.edges), pct(c.depth), pct(c.latency));
}

std::string accuracy_matrix(const AccuracyTable& t) {
  std::string m;
  for (int64_t d = 1; d <= t.max_depth; ++d) {
    for (int64_t e = 1; e <= t.max_edges; ++e) {
      auto it = t.cells.find({e, d});
      m += e > 1 ? " " : "";
      m += it == t.cells.end() || it->second.n == 0
               ? "NaN"
               : fmt::format("{:.4f}", static_cast<double>(it->second.all) /
                                           static_cast<double>(it->second.n));
    }
    m += "\n";
  }
  return m;
}

GnuplotPlot accuracy_heatmap(const AccuracyTable& t, const std::string& title) {
  GnuplotPlot p;
  p.width = 900;
  p.height = 300;
  p.data = {{"m.dat", accuracy_matrix(t)}};
  p.script = fmt::format(
      "set title {}\nset xlabel 'num_edges'\nset ylabel 'depth'\n"
      "set cbrange [0:1]\nset palette defined (0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')\n"
      "set xrange [0.5:{}.5]\nset yrange [0.5:{}.5]\n"
      "plot 'm.dat' matrix using ($1+1):($2+1):3 with image notitle\n",
      gnuplot_quote(title), t.max_edges, t.max_depth);
  return p;
}

}  // namespace tracelm
