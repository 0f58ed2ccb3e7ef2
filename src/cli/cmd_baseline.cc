// `tracelm baseline`: the probabilistic baseline (fit, generate); `baseline
// tvae` is in cmd_tvae.cc (libtorch).
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "baseline/probabilistic.h"
#include "cli/commands.h"
#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "eval/provenance.h"
#include "export/graph_writer.h"

namespace tracelm::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void add_fit(CLI::App& parent) {
  struct Opts {
    std::string input, output;
    ProbabilisticOptions fit;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = parent.add_subcommand(
      "fit", "fit the probabilistic model (per-depth statistics) on a corpus or CallGraph CSV");
  c->add_option("input", o->input, "training corpus JSONL (or CallGraph CSV, cleaned first)")
      ->required();
  c->add_option("-o,--output", o->output, "model to write (JSON)")->required();
  c->add_option("--reservoir", o->fit.reservoir,
                "response times kept per (type, depth) cell (reservoir sample)")
      ->capture_default_str();
  c->add_option("--seed", o->fit.seed, "seed of the reservoir sampling")->capture_default_str();
  c->add_option("--max-depth", o->fit.max_depth_cap, "cap on the generated depth")
      ->check(CLI::Range(1, 15))
      ->capture_default_str();
  c->add_flag("-q,--quiet", o->quiet, "no summary on stderr");
  c->callback([o] {
    auto t0 = std::chrono::steady_clock::now();
    ProbabilisticFitter fitter(o->fit);
    for_each_graph(o->input, CsvMode::kClean, [&](CallGraph&& g) { fitter.add(g); });
    ProbabilisticModel m = fitter.finish();
    if (m.fitted_graphs() == 0) throw std::runtime_error("no valid graphs in " + o->input);
    m.save(o->output);
    if (!o->quiet)
      std::fprintf(stderr,
                   "fitted %llu graphs (%llu invalid skipped): %zu services, %zu microservices, "
                   "max depth %d, max edges %lld, sequential layers %.1f%%; wrote %s (%.2f s)\n",
                   static_cast<unsigned long long>(m.fitted_graphs()),
                   static_cast<unsigned long long>(fitter.skipped()), m.num_services(),
                   m.num_microservices(), m.max_depth(), static_cast<long long>(m.max_edges()),
                   100 * m.p_sequential(), o->output.c_str(), seconds_since(t0));
  });
}

void add_generate(CLI::App& parent) {
  struct Opts {
    std::string model, output, like;
    uint64_t n = 0, seed = 1;
    std::string service;
    int64_t num_edges = 0;
    int depth = 0;
    int attempts = 200;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = parent.add_subcommand(
      "generate", "draw call graphs from a fitted probabilistic model (valid by construction)");
  c->add_option("model", o->model, "model JSON written by `baseline fit`")->required();
  auto* n = c->add_option("-n,--count", o->n, "number of graphs");
  c->add_option("-o,--output", o->output,
                "graphs to write (.jsonl, .csv, .otlp.json, .otlp.jsonl, .jaeger.json)")
      ->required();
  c->add_option("--seed", o->seed, "random seed")->capture_default_str();
  c->add_option("--service", o->service,
                "service of every graph (an unknown one draws its root from all services)");
  c->add_option("--num-edges", o->num_edges,
                "target edges per graph (rejection sampling; closest kept when not met)");
  c->add_option("--depth", o->depth, "target depth (rejection sampling)");
  auto* like = c->add_option(
      "--like", o->like,
      "one graph per graph of this corpus, with its service, num_edges and depth as targets "
      "(the paper's prompts from validation graphs)");
  c->add_option("--attempts", o->attempts, "rejection sampling: most draws per graph")
      ->capture_default_str();
  c->add_flag("-q,--quiet", o->quiet, "no summary on stderr");
  n->excludes(like);
  c->callback([o, n, like] {
    if (!*n && !*like) throw CLI::RequiredError("-n or --like");
    ProbabilisticModel m = ProbabilisticModel::load(o->model);
    std::vector<BaselineRequest> prompts;
    if (!o->like.empty()) {
      for_each_graph(o->like, CsvMode::kClean, [&](CallGraph&& g) {
        BaselineRequest r;
        r.service = g.service;
        r.num_edges = static_cast<int64_t>(g.num_edges());
        r.depth = g.depth();
        prompts.push_back(r);
      });
    } else {
      BaselineRequest r;
      if (!o->service.empty()) {
        r.service = o->service;
        if (!m.has_service(o->service) && !o->quiet)
          std::fprintf(stderr, "note: service %s is not in the model; roots drawn from all\n",
                       o->service.c_str());
      }
      if (o->num_edges > 0) r.num_edges = o->num_edges;
      if (o->depth > 0) r.depth = o->depth;
      prompts.assign(o->n, r);
    }
    Rng rng(o->seed);
    GraphWriter w(o->output);
    uint64_t unmatched = 0, targeted = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (BaselineRequest& r : prompts) {
      r.max_attempts = o->attempts;
      BaselineResult res = m.generate(rng, r);
      if (r.num_edges || r.depth) ++targeted;
      if (!res.matched) ++unmatched;
      w.write(res.graph);
    }
    w.close();
    SetProvenance prov{"probabilistic",
                       !o->like.empty()                                          ? "like"
                       : !o->service.empty() || o->num_edges > 0 || o->depth > 0 ? "fixed"
                                                                                 : "open",
                       o->like,
                       o->model,
                       o->seed,
                       prompts.size()};
    write_provenance(o->output, prov);
    double s = seconds_since(t0);
    if (!o->quiet) {
      std::fprintf(stderr, "wrote %llu graphs to %s (%.2f s, %.0f graphs/s)",
                   static_cast<unsigned long long>(w.count()), o->output.c_str(), s,
                   s > 0 ? static_cast<double>(w.count()) / s : 0.0);
      if (targeted)
        std::fprintf(stderr, "; %llu of %llu missed their num_edges/depth targets",
                     static_cast<unsigned long long>(unmatched),
                     static_cast<unsigned long long>(targeted));
      std::fputc('\n', stderr);
    }
  });
}

}  // namespace

void add_baseline(CLI::App& app) {
  CLI::App* c = app.add_subcommand(
      "baseline",
      "the baselines: probabilistic (after Alibaba's call-graph generator: fit, generate) "
      "and, with libtorch, TVAE (tvae train|generate)");
  c->require_subcommand(1);
  add_fit(*c);
  add_generate(*c);
#ifdef TRACELM_WITH_TORCH
  add_baseline_tvae(*c);
#endif
}

}  // namespace tracelm::cli
