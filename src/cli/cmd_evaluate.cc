// `tracelm evaluate`: realism metrics of synthetic sets against a real set
// (docs/metrics.md). Prints a summary table (one column per synthetic set)
// and writes every number as JSON; the JSON also holds the points the HTML
// report's plots need (CDF quantiles, popular-call bars, heavy-hitter curve).
#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "eval/metrics.h"

namespace tracelm::cli {

namespace {

std::string stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string s = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = s.find('.');
  return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

std::string pct(double x) { return fmt::format("{:.1f}%", 100 * x); }

std::string num(double x) { return fmt::format("{:.3f}", x); }

void print_table(const std::vector<RealismReport>& reps, const StructureSummary& real) {
  std::vector<std::string> head{"metric", "real"};
  for (auto& r : reps) head.push_back(r.name);
  std::vector<std::vector<std::string>> rows;
  auto row = [&](std::string name, std::string real_cell, auto cell) {
    std::vector<std::string> v{std::move(name), std::move(real_cell)};
    for (auto& r : reps) v.push_back(cell(r));
    rows.push_back(std::move(v));
  };
  row("graphs", std::to_string(real.graphs),
      [](const RealismReport& r) { return std::to_string(r.validity.graphs); });
  row("valid (no error)", "", [](const RealismReport& r) { return pct(r.validity_rate()); });
  row("strictly valid", "", [](const RealismReport& r) { return pct(r.strict_validity_rate()); });
  for (int i = 0; i < kNumRules; ++i) {
    bool any = false;
    for (auto& r : reps) any = any || r.validity.violations[i] != 0;
    if (!any) continue;
    row(fmt::format("  {} (graphs)", rule_code(static_cast<Rule>(i))), "",
        [i](const RealismReport& r) { return std::to_string(r.validity.graphs_with[i]); });
  }
  row(fmt::format("popular calls KL (top {})", reps.empty() ? 0 : reps[0].popular.calls.size()), "",
      [](const RealismReport& r) { return num(r.popular.kl); });
  row("  share of edges in top calls", "",
      [](const RealismReport& r) { return pct(r.popular.synthetic_share); });
  if (!reps.empty())
    for (size_t i = 0; i < reps[0].heavy_hitters.size(); ++i) {
      const HeavyHitterPoint& p = reps[0].heavy_hitters[i];
      std::string name = p.k_effective < p.k
                             ? fmt::format("heavy hitters K={} (*{})", p.k, p.k_effective)
                             : fmt::format("heavy hitters K={}", p.k);
      row(name, "", [i](const RealismReport& r) { return pct(r.heavy_hitters[i].accuracy); });
    }
  if (!reps.empty())
    for (auto& [what, e0] : reps[0].emd) {
      std::string w = what;
      row("EMD/mean " + w, num(e0.real_mean), [w](const RealismReport& r) {
        const Emd* e = r.find_emd(w);
        return e && e->defined ? num(e->normalized) : std::string("n/a");
      });
    }
  row("mean edges per graph", num(real.mean_edges),
      [](const RealismReport& r) { return num(r.synthetic_structure.mean_edges); });
  row("mean depth", num(real.mean_depth),
      [](const RealismReport& r) { return num(r.synthetic_structure.mean_depth); });
  row("mean fan-out", num(real.mean_fanout),
      [](const RealismReport& r) { return num(r.synthetic_structure.mean_fanout); });
  row("memorized (= a training graph)", "", [](const RealismReport& r) {
    return r.memorization ? pct(r.memorization->rate) : std::string("n/a");
  });

  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) width[c] = head[c].size();
  for (auto& v : rows)
    for (size_t c = 0; c < v.size(); ++c) width[c] = std::max(width[c], v[c].size());
  auto line = [&](const std::vector<std::string>& v) {
    std::string s;
    for (size_t c = 0; c < v.size(); ++c)
      s += c == 0 ? fmt::format("{:<{}}", v[c], width[c]) : fmt::format("  {:>{}}", v[c], width[c]);
    std::printf("%s\n", s.c_str());
  };
  line(head);
  for (auto& v : rows) line(v);
  bool capped = false;
  for (auto& r : reps)
    for (auto& p : r.heavy_hitters) capped = capped || p.k_effective < p.k;
  if (capped) std::printf("(*N: the real set has fewer than K microservices; K capped at N)\n");
  std::printf("KL: natural log, additive smoothing epsilon %g; EMD: Wasserstein-1 / real mean\n",
              reps.empty() ? kKlEpsilon : reps[0].options.kl_epsilon);
}

}  // namespace

void add_evaluate(CLI::App& app) {
  struct Opts {
    std::string real, train, json;
    std::vector<std::string> synthetic;
    bool all_graphs = false, quiet = false;
    double epsilon = kKlEpsilon;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "evaluate",
      "realism metrics of synthetic call graphs against real ones (docs/metrics.md): validity, "
      "popular-call KL, heavy hitters, normalized EMD, structure, memorization");
  c->add_option("--real", o->real, "real corpus (e.g. the validation split)")->required();
  c->add_option("--synthetic", o->synthetic, "NAME=FILE, a synthetic corpus (repeatable)")
      ->required();
  c->add_option("--train", o->train, "training corpus, for memorization");
  c->add_option("--json", o->json, "write every metric as JSON to this file ('-' for stdout)");
  c->add_option("--epsilon", o->epsilon, "additive smoothing of the popular-call KL")
      ->capture_default_str();
  c->add_flag("--all-graphs", o->all_graphs,
              "distribution metrics over every synthetic graph (default: valid ones only)");
  c->add_flag("-q,--quiet", o->quiet, "no table on stdout");
  c->callback([o] {
    auto t0 = std::chrono::steady_clock::now();
    GraphSetProfile real;
    for_each_graph(o->real, CsvMode::kClean, [&](CallGraph&& g) { real.add(g); });
    std::unique_ptr<TrainingIndex> train;
    if (!o->train.empty()) {
      train = std::make_unique<TrainingIndex>();
      for_each_graph(o->train, CsvMode::kClean, [&](CallGraph&& g) { train->add(g); });
    }
    RealismOptions opt;
    opt.kl_epsilon = o->epsilon;
    opt.valid_only = !o->all_graphs;
    std::vector<RealismReport> reps;
    std::vector<std::string> paths;
    for (const std::string& spec : o->synthetic) {
      size_t eq = spec.find('=');
      std::string name = eq == std::string::npos ? stem(spec) : spec.substr(0, eq);
      std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
      std::vector<CallGraph> graphs;
      for_each_graph(path, CsvMode::kAsIs, [&](CallGraph&& g) { graphs.push_back(std::move(g)); });
      reps.push_back(RealismReport::compute(name, real, graphs, train.get(), opt));
      paths.push_back(path);
    }
    StructureSummary rs = StructureSummary::of(real);
    if (!o->quiet) print_table(reps, rs);
    if (!o->json.empty()) {
      nlohmann::ordered_json j;
      j["definitions"] = {
          {"docs", "docs/metrics.md"},
          {"kl_epsilon", opt.kl_epsilon},
          {"kl_log", "natural"},
          {"popular_calls", opt.popular_calls},
          {"heavy_hitter_ks", opt.heavy_hitter_ks},
          {"emd", "Wasserstein-1 between empirical distributions"},
          {"emd_normalization", "w1 / mean of the real distribution (w1 when that mean is 0)"},
          {"distribution_metrics_over", opt.valid_only ? "valid synthetic graphs" : "all"},
          {"cdf_quantiles", kCdfPoints}};
      j["real"] = {{"path", o->real}, {"structure", rs.to_json()}};
      j["train"] = train ? nlohmann::ordered_json{{"path", o->train}, {"graphs", train->size()}}
                         : nlohmann::ordered_json(nullptr);
      nlohmann::ordered_json arr = nlohmann::ordered_json::array();
      for (size_t i = 0; i < reps.size(); ++i) {
        nlohmann::ordered_json r = reps[i].to_json();
        r["path"] = paths[i];
        arr.push_back(std::move(r));
      }
      j["synthetic"] = arr;
      std::string text = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      if (o->json == "-") {
        std::fputs(text.c_str(), stdout);
      } else {
        AtomicFile f(o->json);
        f.write(text);
        f.close();
      }
    }
    if (!o->quiet)
      std::fprintf(stderr, "evaluated %zu synthetic set(s) in %.2f s\n", reps.size(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
}

}  // namespace tracelm::cli
