// The main job: `tracelm demo`. Until the model and generator land, it runs
// the data half of the pipeline end to end on a built-in default:
// sample (synthetic, said so) or --data FILE... -> ingest (train/validation
// split) -> validate -> stats -> export.
#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/validate.h"
#include "corpus/corpus.h"
#include "export/alibaba_csv.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "stats/stats.h"

namespace tracelm::cli {

void add_demo(CLI::App& app) {
  struct Opts {
    std::vector<std::string> data;
    std::string out = "tracelm-demo";
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = app.add_subcommand(
      "demo", "run the pipeline end to end on a built-in synthetic sample, or on --data");
  c->add_option("--data", o->data, "CallGraph files to use instead of the built-in sample");
  c->add_option("--out", o->out, "output directory")->capture_default_str();
  c->add_option("--seed", o->seed, "seed of the built-in sample")->capture_default_str();
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
          "[1/5] no --data given: wrote a SYNTHETIC raw sample (%d traces, %d services, seed %llu) "
          "to %s\n      (tracelm ships no real traces; pass --data CallGraph_*.tar.gz for real "
          "ones, see scripts/fetch-alibaba)\n",
          so.traces, so.services, static_cast<unsigned long long>(so.seed), raw.c_str());
      inputs = {raw};
    } else {
      inputs = expand_inputs(inputs);
      std::printf("[1/5] using %zu input file(s)\n", inputs.size());
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
        "[2/5] ingest: %llu rows -> %llu traces -> %llu graphs kept (%llu train, %llu "
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
    std::printf("[3/5] validate: %llu of %llu training graphs valid\n",
                static_cast<unsigned long long>(vs.valid_graphs),
                static_cast<unsigned long long>(vs.graphs));
    std::printf("[4/5] stats of the training corpus:\n%s", cs.to_text(5).c_str());
    std::string csv_path = o->out + "/corpus.alibaba.csv";
    AtomicFile f(csv_path);
    f.write(csv);
    f.close();
    std::printf("[5/5] exported the training corpus as Alibaba CSV: %s\n", csv_path.c_str());
    std::printf("outputs in %s/: corpus.jsonl, corpus.val.jsonl, corpus.alibaba.csv\n",
                o->out.c_str());
  });
}

}  // namespace tracelm::cli
