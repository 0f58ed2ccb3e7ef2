// The main job: `tracelm demo`: the pipeline end to end on a built-in
// default: sample (synthetic, said so) or --data FILE... -> ingest
// (train/validation split) -> validate -> stats -> export -> probabilistic
// baseline -> a tiny Llama trained for a bounded time (libtorch builds) ->
// realism metrics against the held-out graphs (metrics.json, report.html).
#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "baseline/probabilistic.h"
#include "cli/commands.h"
#include "core/validate.h"
#include "corpus/corpus.h"
#include "eval/metrics.h"
#include "export/alibaba_csv.h"
#include "ingest/ingest.h"
#include "report/html_report.h"
#include "report/summary_table.h"
#include "sample/synthetic_raw.h"
#include "stats/stats.h"

namespace tracelm::cli {

void add_demo(CLI::App& app) {
  struct Opts {
    std::vector<std::string> data;
    std::string out = "tracelm-demo";
    uint64_t seed = 1;
    double train_minutes = 2;
    int64_t generate = 30;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "demo", "run the pipeline end to end on a built-in synthetic sample, or on --data");
  c->add_option("--data", o->data, "CallGraph files to use instead of the built-in sample");
  c->add_option("--out", o->out, "output directory")->capture_default_str();
  c->add_option("--seed", o->seed, "seed of the built-in sample")->capture_default_str();
  c->add_option("--train-minutes", o->train_minutes,
                "time budget of the model training step (0 skips it)")
      ->capture_default_str();
  c->add_option("--generate", o->generate, "graphs the trained model generates")
      ->capture_default_str();
  c->callback([o] {
    ::mkdir(o->out.c_str(), 0755);
    std::vector<std::string> inputs = o->data;
    if (inputs.empty()) {
      std::string raw = o->out + "/synthetic-raw.csv";
      SyntheticRawOptions so;
      so.seed = o->seed;
      AtomicFile f(raw);
      f.write(synthetic_raw_csv(so));
      f.close();
      std::printf(
          "[1/7] no --data given: wrote a SYNTHETIC raw sample (%d traces, %d services, seed %llu) "
          "to %s\n      (tracelm ships no real traces; pass --data CallGraph_*.tar.gz for real "
          "ones, see scripts/fetch-alibaba)\n",
          so.traces, so.services, static_cast<unsigned long long>(so.seed), raw.c_str());
      inputs = {raw};
    } else {
      inputs = expand_inputs(inputs);
      std::printf("[1/7] using %zu input file(s)\n", inputs.size());
    }
    std::string train_path = o->out + "/corpus.jsonl", val_path = o->out + "/corpus.val.jsonl";
    CorpusWriter train(train_path), val(val_path);
    IngestOptions opt;
    opt.progress = true;
    IngestStats st = ingest(inputs, opt,
                            {[&](CallGraph&& g) {
                               if (is_validation(g.trace_id, 0.1))
                                 val.write(g);
                               else
                                 train.write(g);
                             },
                             nullptr, nullptr});
    train.close();
    val.close();
    std::printf(
        "[2/7] ingest: %llu rows -> %llu traces -> %llu graphs kept (%llu train, %llu "
        "validation)\n",
        static_cast<unsigned long long>(st.rows_read), static_cast<unsigned long long>(st.traces),
        static_cast<unsigned long long>(st.graphs_kept),
        static_cast<unsigned long long>(train.count()),
        static_cast<unsigned long long>(val.count()));
    std::fputs(st.to_text().c_str(), stdout);

    ValidationSummary vs;
    CorpusStats cs;
    std::string csv = std::string(kAlibabaCsvHeader) + "\n";
    uint64_t n = 0;
    read_corpus(train_path, [&](CallGraph&& g) {
      vs.add(validate(g));
      cs.add(g);
      append_alibaba_rows(g, n++, 0, csv);
    });
    std::printf("[3/7] validate: %llu of %llu training graphs valid\n",
                static_cast<unsigned long long>(vs.valid_graphs),
                static_cast<unsigned long long>(vs.graphs));
    std::printf("[4/7] stats of the training corpus:\n%s", cs.to_text(5).c_str());
    std::string csv_path = o->out + "/corpus.alibaba.csv";
    AtomicFile f(csv_path);
    f.write(csv);
    f.close();
    std::printf("[5/7] exported the training corpus as Alibaba CSV: %s\n", csv_path.c_str());

    // Baseline and realism metrics against the held-out graphs.
    std::vector<CallGraph> train_graphs = load_corpus(train_path),
                           val_graphs = load_corpus(val_path);
    if (val_graphs.empty()) {
      std::printf("no validation graphs: skipping the evaluation\n");
      return;
    }
    GraphSetProfile real;
    for (const CallGraph& g : val_graphs) real.add(g);
    TrainingIndex index;
    for (const CallGraph& g : train_graphs) index.add(g);
    ProbabilisticModel prob = fit_probabilistic(train_graphs);
    Rng rng(o->seed);
    std::vector<CallGraph> prob_graphs;
    for (size_t i = 0; i < val_graphs.size() * 10; ++i)
      prob_graphs.push_back(prob.generate(rng).graph);
    std::vector<RealismReport> reports;
    reports.push_back(RealismReport::compute("probabilistic", real, prob_graphs, &index));
    std::printf("[6/7] probabilistic baseline: fitted on %zu graphs, generated %zu\n",
                train_graphs.size(), prob_graphs.size());
#ifdef TRACELM_WITH_TORCH
    if (o->train_minutes > 0) {
      std::printf(
          "[7/7] training a tiny Llama for %.1f min, then generating %lld graphs "
          "(constrained decoding: valid by construction)\n",
          o->train_minutes, static_cast<long long>(o->generate));
      std::vector<CallGraph> llm = demo_train_and_generate(train_path, val_path, o->out + "/model",
                                                           o->train_minutes, o->generate, o->seed);
      std::printf("      %zu of %lld generated graphs complete\n", llm.size(),
                  static_cast<long long>(o->generate));
      if (!llm.empty())
        reports.push_back(RealismReport::compute("tracelm-tiny", real, llm, &index));
    } else {
      std::printf("[7/7] model training skipped (--train-minutes 0)\n");
    }
#else
    std::printf("[7/7] built without libtorch: no model training\n");
#endif
    std::printf("\nrealism against %zu held-out graphs (docs/metrics.md):\n%s", val_graphs.size(),
                summary_text(summary_table(reports, StructureSummary::of(real))).c_str());
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    for (auto& r : reports) j.push_back(r.to_json());
    AtomicFile mf(o->out + "/metrics.json");
    mf.write(j.dump(2) + "\n");
    mf.close();
    std::printf("metrics: %s/metrics.json\n", o->out.c_str());

    ReportContext ctx;
    ctx.title = "tracelm demo: realism report";
    ctx.real_path = val_path;
    ctx.real = StructureSummary::of(real);
    ctx.train_path = train_path;
    ctx.train_graphs = train_graphs.size();
    if (o->data.empty())
      ctx.note =
          "The real set is the held-out part of tracelm's built-in SYNTHETIC sample (no --data "
          "given), not real traces.";
    HtmlReportOptions ro;
    ro.require_plots = false;  // a missing gnuplot should not fail the demo's last step
    std::string report_path = o->out + "/report.html";
    std::string plot_error;
    AtomicFile rf(report_path);
    rf.write(html_report(reports, ctx, ro, &plot_error));
    rf.close();
    std::printf("report: %s\n", report_path.c_str());
    if (!plot_error.empty()) std::printf("      WITHOUT plots: %s\n", plot_error.c_str());
  });
}

}  // namespace tracelm::cli
