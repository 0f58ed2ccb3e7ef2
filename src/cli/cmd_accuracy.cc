// `tracelm eval accuracy`: the paper's instruction-following heatmap
// (eval/accuracy.h) at each temperature. Writes accuracy.csv and one heatmap
// per temperature (gnuplot SVG), and prints a summary line per temperature.
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "eval/accuracy.h"
#include "generate/generator.h"
#include "report/gnuplot.h"
#include "util/progress.h"

namespace tracelm::cli {

namespace {

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    double v = std::stod(item, &used);
    if (used != item.size() || v < 0 || v > 10)
      throw CLI::ValidationError("--temperatures: expected numbers in [0, 10], got '" + item + "'");
    out.push_back(v);
  }
  if (out.empty()) throw CLI::ValidationError("--temperatures: empty list");
  return out;
}

}  // namespace

void add_eval_commands(CLI::App& app) {
  CLI::App* ev = app.add_subcommand("eval", "evaluations that need a model");
  ev->require_subcommand(1);
  struct Opts {
    std::string model, adapter, prompts, out = "accuracy";
    int64_t n = 50, max_edges = 30, max_depth = 6, batch = 16;
    std::string temperatures = "0,0.2,0.4,0.6,0.8,1.0";
    bool unconstrained = false, quiet = false;
    std::string format = "recursive";
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = ev->add_subcommand(
      "accuracy",
      "the paper's accuracy heatmap: valid graphs with exactly the requested edges and depth, "
      "per (edges, depth) cell and temperature");
  c->add_option("--model", o->model, "trained model directory")->required();
  c->add_option("--adapter", o->adapter, "LoRA adapter directory, when --model is the base");
  c->add_option("--prompts", o->prompts,
                "validation graphs (corpus .jsonl or CSV): services and latencies of the requests")
      ->required();
  c->add_option("-n", o->n, "requests per cell")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  c->add_option("--max-edges", o->max_edges, "cells for 1..E edges")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  c->add_option("--max-depth", o->max_depth, "cells for depth 1..D")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  c->add_option("--temperatures", o->temperatures, "comma-separated; 0 = greedy")
      ->capture_default_str();
  c->add_option("--batch", o->batch, "sequences decoded together")->capture_default_str();
  c->add_flag("--unconstrained", o->unconstrained, "measure the model without the constraint");
  c->add_option("--format", o->format,
                "prompts: recursive, or instruction (an instruction-tuned model)")
      ->check(CLI::IsMember({"recursive", "instruction"}))
      ->capture_default_str();
  c->add_option("--seed", o->seed, "seed")->capture_default_str();
  c->add_flag("-q,--quiet", o->quiet, "no progress line");
  c->add_option("-o,--output", o->out, "output directory")->capture_default_str();
  c->callback([o] {
    std::vector<double> temps = parse_list(o->temperatures);
    std::vector<CallGraph> val;
    for_each_graph(o->prompts, CsvMode::kClean,
                   [&](CallGraph&& g) { val.push_back(std::move(g)); });
    if (val.empty()) throw CLI::ValidationError(o->prompts + ": no graphs");
    ModelBundle b = load_model_bundle(o->model, o->adapter);
    if (::mkdir(o->out.c_str(), 0755) != 0 && errno != EEXIST)
      throw CLI::ValidationError(o->out + ": cannot create the directory");
    std::string csv = kAccuracyCsvHeader;
    std::vector<GnuplotPlot> plots;
    for (double t : temps) {
      GeneratorOptions go;
      go.sampling.temperature = t;
      go.sampling.seed = o->seed;
      go.batch = o->batch;
      go.constrained = !o->unconstrained;
      go.instruction = o->format == "instruction";
      go.retries = 0;  // the paper's model gets one try
      AccuracyGrid grid = accuracy_requests(val, o->max_edges, o->max_depth, o->n, o->seed);
      RecursiveGenerator gen(b, go);
      Progress bar(fmt::format("accuracy T={}", t), grid.requests.size(), !o->quiet, "graphs");
      std::vector<GeneratedGraph> out =
          gen.generate(grid.requests, o->seed, [&](size_t done, size_t) { bar.update(done, 0); });
      bar.finish();
      AccuracyTable table = tally(grid, out, t);
      csv += accuracy_csv_rows(table);
      std::printf("%s\n", accuracy_summary(table).c_str());
      plots.push_back(accuracy_heatmap(
          table, fmt::format("accuracy at temperature {} ({}, {})", t,
                             o->unconstrained ? "unconstrained" : "constrained", o->format)));
    }
    write_file_atomically(o->out + "/accuracy.csv", csv);
    std::vector<std::string> svgs = render_svgs(plots);
    for (size_t i = 0; i < svgs.size(); ++i)
      write_file_atomically(o->out + fmt::format("/heatmap-T{}.svg", temps[i]), svgs[i]);
    std::printf("wrote %s/accuracy.csv and %zu heatmaps\n", o->out.c_str(), svgs.size());
  });
}

}  // namespace tracelm::cli
