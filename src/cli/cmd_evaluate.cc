// `tracelm evaluate`: realism metrics of synthetic sets against a real set
// (docs/metrics.md). Prints a summary table (one column per synthetic set)
// and writes every number as JSON (with the points of the plots: CDF
// quantiles, popular-call bars, heavy-hitter curve) and/or an HTML report
// with the plots drawn by gnuplot (report/html_report.h).
#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "downstream/command.h"
#include "downstream/report.h"
#include "eval/call_rows.h"
#include "eval/metrics.h"
#include "eval/provenance.h"
#include "report/html_report.h"
#include "report/summary_table.h"

namespace tracelm::cli {

namespace {

std::string stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string s = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = s.find('.');
  return dot == std::string::npos || dot == 0 ? s : s.substr(0, dot);
}

}  // namespace

namespace {

struct EvaluateOpts {
  std::string real, train, json, report;
  std::vector<std::string> synthetic, calls, downstream;
  bool all_graphs = false, quiet = false;
  size_t runs = 1;
  double epsilon = kKlEpsilon;
};

// Loads the sets, computes the realism reports, prints and writes them.
void run_evaluate(EvaluateOpts* o) {
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
  opt.runs = o->runs;
  std::vector<RealismReport> reps;
  std::vector<std::string> paths;
  for (const std::string& spec : o->synthetic) {
    size_t eq = spec.find('=');
    std::string name = eq == std::string::npos ? stem(spec) : spec.substr(0, eq);
    std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
    std::vector<CallGraph> graphs;
    for_each_graph(path, CsvMode::kAsIs, [&](CallGraph&& g) { graphs.push_back(std::move(g)); });
    reps.push_back(RealismReport::compute(name, real, graphs, train.get(), opt));
    if (std::optional<SetProvenance> p = read_provenance(path))
      reps.back().protocol = protocol_label(*p);
    paths.push_back(path);
  }
  for (const std::string& spec : o->calls) {  // calls-only sets (TVAE): eval/call_rows.h
    size_t eq = spec.find('=');
    std::string name = eq == std::string::npos ? stem(spec) : spec.substr(0, eq);
    std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
    reps.push_back(calls_report(name, real, read_calls_csv(path), opt));
    paths.push_back(path);
  }
  if (reps.empty()) throw CLI::RequiredError("--synthetic or --calls");
  StructureSummary rs = StructureSummary::of(real);
  if (!o->quiet) std::fputs(summary_text(summary_table(reps, rs)).c_str(), stdout);
  if (!o->json.empty()) {
    nlohmann::ordered_json j;
    j["definitions"] = {
        {"docs", "docs/metrics.md"},
        {"kl_epsilon", opt.kl_epsilon},
        {"kl_log", "natural"},
        {"popular_calls", opt.popular_calls},
        {"popular_calls_kl",
         "KL(real || synthetic) over the real top calls + 'other' (all remaining edges)"},
        {"heavy_hitter_ks", opt.heavy_hitter_ks},
        {"heavy_hitter_runs", opt.runs},
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
  if (!o->report.empty()) {
    ReportContext ctx;
    ctx.real_path = o->real;
    ctx.real = rs;
    if (train) {
      ctx.train_path = o->train;
      ctx.train_graphs = train->size();
    }
    ctx.synthetic_paths = paths;
    std::vector<downstream::ExperimentResult> ds;
    for (const std::string& p : o->downstream) ds.push_back(downstream::read_experiment_result(p));
    if (!ds.empty()) ctx.extra_html = downstream::downstream_html(ds);
    AtomicFile f(o->report);
    f.write(html_report(reps, ctx));
    f.close();
    if (!o->quiet) std::fprintf(stderr, "report: %s\n", o->report.c_str());
  }
  if (!o->quiet)
    std::fprintf(stderr, "evaluated %zu synthetic set(s) in %.2f s\n", reps.size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace

void add_evaluate(CLI::App& app) {
  auto o = std::make_shared<EvaluateOpts>();
  CLI::App* c = app.add_subcommand(
      "evaluate",
      "realism metrics of synthetic call graphs against real ones (docs/metrics.md): validity, "
      "popular-call KL, heavy hitters, normalized EMD, structure, memorization");
  c->add_option("--real", o->real, "real corpus (e.g. the validation split)")->required();
  c->add_option("--synthetic", o->synthetic, "NAME=FILE, a synthetic corpus (repeatable)");
  c->add_option(
      "--calls", o->calls,
      "NAME=FILE, a synthetic set of calls, not graphs (calls CSV of `baseline tvae "
      "generate`): popular calls, caller flows, heavy hitters and response time only (repeatable)");
  c->add_option("--train", o->train, "training corpus, for memorization");
  c->add_option("--json", o->json, "write every metric as JSON to this file ('-' for stdout)");
  CLI::Option* report_opt =
      c->add_option("--report", o->report,
                    "write a self-contained HTML report (summary table, plots drawn by gnuplot) to "
                    "this file");
  c->add_option("--downstream", o->downstream,
                "with --report: add the results of `tracelm downstream ... --json FILE` "
                "(repeatable)")
      ->needs(report_opt);
  c->add_option("--epsilon", o->epsilon, "additive smoothing of the popular-call KL")
      ->capture_default_str();
  c->add_option("--runs", o->runs,
                "heavy hitters: mean over this many consecutive parts of each synthetic set "
                "(the paper averaged 20 generations)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  c->add_flag("--all-graphs", o->all_graphs,
              "distribution metrics over every synthetic graph (default: valid ones only)");
  c->add_flag("-q,--quiet", o->quiet, "no table on stdout");
  c->callback([o] { run_evaluate(o.get()); });
}

}  // namespace tracelm::cli
