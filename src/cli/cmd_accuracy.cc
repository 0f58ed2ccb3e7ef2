// `tracelm eval accuracy`: the paper's instruction-following heatmap. For
// num_edges 1..E x depth 1..D (the feasible cells), N requests each, at each
// temperature: the fraction of graphs that are valid and have exactly the
// requested edges and depth, and each condition's own success rate. Service
// and latency of each request come from a random validation graph, as in the
// paper's prompts. Writes accuracy.csv and one heatmap per temperature
// (gnuplot SVG), and prints a summary.
#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/validate.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "generate/generator.h"
#include "report/gnuplot.h"
#include "util/progress.h"

namespace tracelm::cli {

namespace {

struct Cell {
  int64_t n = 0, valid = 0, edges = 0, depth = 0, latency = 0, all = 0;
};

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.close();
}

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
    std::string csv =
        "temperature,num_edges,depth,samples,valid,edges_ok,depth_ok,latency_ok,all_ok\n";
    std::vector<GnuplotPlot> plots;
    for (double t : temps) {
      GeneratorOptions go;
      go.sampling.temperature = t;
      go.sampling.seed = o->seed;
      go.batch = o->batch;
      go.constrained = !o->unconstrained;
      go.instruction = o->format == "instruction";
      go.retries = 0;  // the paper's model gets one try
      std::vector<GenerateRequest> reqs;
      std::vector<std::pair<int64_t, int64_t>> cell_of;
      Rng rng(o->seed);
      for (int64_t e = 1; e <= o->max_edges; ++e)
        for (int64_t d = 1; d <= o->max_depth; ++d) {
          if (d > e || (d == 1) != (e == 1)) continue;
          for (int64_t i = 0; i < o->n; ++i) {
            const CallGraph& v = val[rng.next() % val.size()];
            GenerateRequest r;
            r.service = v.service;
            r.latency = v.latency();
            r.num_edges = e;
            r.depth = d;
            reqs.push_back(r);
            cell_of.emplace_back(e, d);
          }
        }
      RecursiveGenerator gen(b, go);
      Progress bar(fmt::format("accuracy T={}", t), reqs.size(), !o->quiet, "graphs");
      std::vector<GeneratedGraph> out =
          gen.generate(reqs, o->seed, [&](size_t done, size_t) { bar.update(done, 0); });
      bar.finish();
      std::map<std::pair<int64_t, int64_t>, Cell> cells;
      Cell total;
      for (size_t i = 0; i < out.size(); ++i) {
        Cell& c = cells[cell_of[i]];
        const GeneratedGraph& g = out[i];
        bool valid = g.complete && is_valid(validate(g.graph));
        bool edges = valid && static_cast<int64_t>(g.graph.edges.size()) == *reqs[i].num_edges;
        bool depth = valid && g.graph.depth() == *reqs[i].depth;
        bool lat = valid && g.graph.latency() == *reqs[i].latency;
        for (Cell* x : {&c, &total}) {
          ++x->n;
          x->valid += valid;
          x->edges += edges;
          x->depth += depth;
          x->latency += lat;
          x->all += valid && edges && depth;
        }
      }
      std::string matrix;  // rows: depth, columns: edges; NaN where infeasible
      for (int64_t d = 1; d <= o->max_depth; ++d) {
        for (int64_t e = 1; e <= o->max_edges; ++e) {
          auto it = cells.find({e, d});
          matrix += e > 1 ? " " : "";
          matrix += it == cells.end()
                        ? "NaN"
                        : fmt::format("{:.4f}", double(it->second.all) / it->second.n);
        }
        matrix += "\n";
      }
      for (auto& [k, c] : cells)
        csv += fmt::format("{},{},{},{},{},{},{},{},{}\n", t, k.first, k.second, c.n, c.valid,
                           c.edges, c.depth, c.latency, c.all);
      auto pct = [&](int64_t x) { return 100.0 * x / std::max<int64_t>(1, total.n); };
      std::printf(
          "T=%.1f: %lld graphs, accuracy (valid + edges + depth) %.1f%%; valid %.1f%%, edges "
          "%.1f%%, depth %.1f%%, latency %.1f%%\n",
          t, static_cast<long long>(total.n), pct(total.all), pct(total.valid), pct(total.edges),
          pct(total.depth), pct(total.latency));
      GnuplotPlot p;
      p.width = 900;
      p.height = 300;
      p.data = {{"m.dat", matrix}};
      p.script = fmt::format(
          "set title {}\nset xlabel 'num_edges'\nset ylabel 'depth'\n"
          "set cbrange [0:1]\nset palette defined (0 '#b2182b', 0.5 '#f7f7f7', 1 '#2166ac')\n"
          "set xrange [0.5:{}.5]\nset yrange [0.5:{}.5]\n"
          "plot 'm.dat' matrix using ($1+1):($2+1):3 with image notitle\n",
          gnuplot_quote(fmt::format("accuracy at temperature {} ({}, {})", t,
                                    o->unconstrained ? "unconstrained" : "constrained", o->format)),
          o->max_edges, o->max_depth);
      plots.push_back(std::move(p));
    }
    write_text_file(o->out + "/accuracy.csv", csv);
    std::vector<std::string> svgs = render_svgs(plots);
    for (size_t i = 0; i < svgs.size(); ++i)
      write_text_file(o->out + fmt::format("/heatmap-T{}.svg", temps[i]), svgs[i]);
    std::printf("wrote %s/accuracy.csv and %zu heatmaps\n", o->out.c_str(), svgs.size());
  });
}

}  // namespace tracelm::cli
