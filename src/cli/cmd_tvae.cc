// `tracelm baseline tvae train|generate`: the TVAE baseline over the calls
// of a corpus (baseline/tvae.h; libtorch builds only).
#include <cstdio>
#include <memory>

#include "baseline/tvae.h"
#include "cli/commands.h"
#include "eval/call_rows.h"

namespace tracelm::cli {

void add_baseline_tvae(CLI::App& parent) {
  CLI::App* tvae = parent.add_subcommand(
      "tvae", "the TVAE baseline (Xu et al. 2019): a VAE over calls (table rows), not graphs");
  tvae->require_subcommand(1);

  struct TrainOpts {
    std::string input, output;
    TvaeOptions tvae;
    bool quiet = false;
  };
  auto t = std::make_shared<TrainOpts>();
  CLI::App* c = tvae->add_subcommand("train", "train TVAE on the calls of a corpus");
  c->add_option("input", t->input, "training corpus JSONL (or CallGraph CSV, cleaned first)")
      ->required();
  c->add_option("-o,--output", t->output, "model directory to write")->required();
  c->add_option("--epochs", t->tvae.epochs, "epochs at most")->capture_default_str();
  c->add_option("--minutes", t->tvae.minutes, "time budget in minutes (0: none)")
      ->capture_default_str();
  c->add_option("--seed", t->tvae.seed, "random seed")->capture_default_str();
  c->add_option("--max-categories", t->tvae.max_categories,
                "categories kept per discrete column (the rest: OTHER)")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  c->add_flag("-q,--quiet", t->quiet, "no progress or summary on stderr");
  c->callback([t] {
    t->tvae.progress = !t->quiet;
    uint64_t skipped = 0;
    Tvae m = train_tvae_on_corpus(t->input, t->tvae, &skipped);
    m.save(t->output);
    if (!t->quiet) {
      const TvaeTraining& r = m.training();
      std::fprintf(stderr,
                   "trained TVAE on %zu calls (%llu invalid graphs skipped): %d epochs, %lld "
                   "steps, loss %.3f, output width %lld%s; wrote %s (%.1f s)\n",
                   r.rows, static_cast<unsigned long long>(skipped), r.epochs,
                   static_cast<long long>(r.steps), r.last_loss,
                   static_cast<long long>(m.transformer().width()),
                   r.budget_stop ? ", stopped by the time budget" : "", t->output.c_str(),
                   r.seconds);
    }
  });

  struct GenOpts {
    std::string model, output, like;
    int64_t n = 0;
    uint64_t seed = 1;
    bool quiet = false;
  };
  auto g = std::make_shared<GenOpts>();
  CLI::App* gen = tvae->add_subcommand("generate", "sample calls (a calls CSV, not graphs)");
  gen->add_option("model", g->model, "model directory written by `baseline tvae train`")
      ->required();
  auto* n = gen->add_option("-n,--count", g->n, "number of calls")
                ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  auto* like = gen->add_option("--like", g->like,
                               "as many calls as the graphs of this corpus have edges (TVAE is "
                               "unconditional: the count is all it takes from them)");
  n->excludes(like);
  gen->add_option("-o,--output", g->output,
                  "calls CSV to write (caller,callee,type,depth,start_ms,response_ms)")
      ->required();
  gen->add_option("--seed", g->seed, "random seed")->capture_default_str();
  gen->add_flag("-q,--quiet", g->quiet, "no summary on stderr");
  gen->callback([g, n, like] {
    if (!*n && !*like) throw CLI::RequiredError("-n or --like");
    if (!g->like.empty()) g->n = static_cast<int64_t>(count_calls(g->like));
    Tvae m = Tvae::load(g->model);
    std::vector<CallRow> rows = generate_tvae_calls(m, g->n, g->seed);
    write_calls_csv(g->output, rows);
    if (!g->quiet) std::fprintf(stderr, "wrote %zu calls to %s\n", rows.size(), g->output.c_str());
  });
}

}  // namespace tracelm::cli
