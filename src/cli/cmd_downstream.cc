// `tracelm downstream critical|anomaly`: can a model for microservice
// management be trained on synthetic call graphs? (docs/downstream.md)
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "downstream/command.h"
#include "downstream/critical.h"
#ifdef TRACELM_WITH_TORCH
#include "downstream/anomaly.h"
#endif

namespace tracelm::cli {
namespace {

struct CommonOpts {
  downstream::CommandFiles files;
  downstream::ExperimentOptions exp;
};

// The options that choose apps and split them (shared with `downstream pool`).
void add_split_options(CLI::App* c, downstream::ExperimentOptions& o) {
  c->add_option("--apps", o.apps.apps, "apps: the services with the most graphs")
      ->capture_default_str();
  c->add_option("--min-app-graphs", o.apps.min_graphs,
                "an app with fewer graphs pools the next services into it")
      ->capture_default_str();
  c->add_option("--min-edges", o.apps.min_edges,
                "graphs with fewer calls are left out (a lone call has no path or structure)")
      ->capture_default_str();
  c->add_flag("--all-services", o.apps.all_services, "one app holding every service");
  c->add_option("--split", o.split,
                "trace (each seed shuffles the app's graphs) or time (the latest graphs are the "
                "test set, the same for every seed; needs start times, as span import writes)")
      ->check(CLI::IsMember({"trace", "time"}))
      ->capture_default_str();
  c->add_option("--test-fraction", o.test_fraction, "fraction of an app's graphs in the test set")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
}

void add_common(CLI::App* c, CommonOpts& o) {
  c->add_option("--real", o.files.real,
                "real corpus (JSON Lines, optional \"label\" field per graph) or Alibaba CSV: "
                "split per app and seed into the real training pool and the real test set")
      ->required();
  add_split_options(c, o.exp);
  c->add_option("--train", o.files.train,
                "NAME=FILE, a training set (repeatable); \"real\" (the real training pool) is "
                "always included first");
  c->add_option("--seeds", o.exp.seeds, "seeds (each redraws the split and the model)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  c->add_option("--seed", o.exp.base_seed, "first seed")->capture_default_str();
  c->add_option("--reference", o.exp.reference,
                "the training set the gaps are measured against (e.g. a sample of the real pool "
                "of a synthetic set's size)")
      ->capture_default_str();
  c->add_option("--bootstrap", o.exp.bootstrap, "paired bootstrap resamples per seed")
      ->capture_default_str();
  c->add_option("--json", o.files.json, "write the result as JSON ('-' for stdout)");
  c->add_option("--report", o.files.report, "write an HTML report (table and bar chart)");
  c->add_flag("-q,--quiet", o.files.quiet, "no table on stdout, no progress");
}

}  // namespace

void add_downstream(CLI::App& app) {
  CLI::App* d = app.add_subcommand(
      "downstream",
      "train microservice-management models on real and on synthetic call graphs, test them on "
      "the same real graphs (docs/downstream.md)");
  d->require_subcommand(1);

  auto co = std::make_shared<CommonOpts>();
  auto copt = std::make_shared<downstream::CriticalOptions>();
  CLI::App* c = d->add_subcommand(
      "critical", "critical components as in FIRM: SVM on (RI, CI) of critical-path services");
  add_common(c, *co);
  c->add_option("--svm", copt->svm, "linear (FIRM's default: hinge loss, SGD) or rbf (libsvm)")
      ->check(CLI::IsMember({"linear", "rbf"}))
      ->capture_default_str();
  c->add_flag("--standardize", copt->standardize,
              "z-score the features with the training samples' statistics (FIRM: no scaling)");
  c->add_option("--window", copt->train.window, "graphs per window")->capture_default_str();
  c->add_option("--train-windows", copt->train.windows, "windows drawn from each training set")
      ->capture_default_str();
  c->add_option("--test-windows", copt->test.windows, "windows drawn from the real test set")
      ->capture_default_str();
  c->callback([co, copt] {
    copt->test.window = copt->train.window;
    co->exp.progress = !co->files.quiet;
    downstream::CriticalOptions opt = *copt;
    downstream::run_downstream_command(
        [opt](const auto&) { return downstream::critical_task(opt); }, co->files, co->exp);
  });

  struct PoolOpts {
    std::string real, out;
    downstream::ExperimentOptions exp;
    bool normal_only = false;
  };
  auto po = std::make_shared<PoolOpts>();
  CLI::App* p = d->add_subcommand(
      "pool",
      "write the real training pool of one seed (what the \"real\" training set is), e.g. "
      "the normal graphs to train a generator on and to generate --like");
  p->add_option("--real", po->real, "real corpus, as for critical and anomaly")->required();
  p->add_option("-o,--output", po->out, "corpus (JSON Lines) to write")->required();
  p->add_option("--seed", po->exp.base_seed, "the seed (irrelevant under --split time)")
      ->capture_default_str();
  add_split_options(p, po->exp);
  p->add_flag("--normal-only", po->normal_only,
              "keep only graphs labelled \"normal\" or unlabelled (normal traffic)");
  p->callback([po] {
    downstream::PoolSummary s = downstream::write_real_training_pool(
        po->real, po->exp, po->exp.base_seed, po->normal_only, po->out);
    for (size_t i = 0; i < s.apps.size(); ++i)
      std::printf("app %s: %zu graphs%s%s\n", s.apps[i].name.c_str(), s.apps[i].graphs,
                  s.split_notes[i].empty() ? "" : "; split ", s.split_notes[i].c_str());
    std::printf(
        "%zu real graphs, %zu in the apps, %zu in the training pool, %zu not normal left out; "
        "wrote %zu to %s\n",
        s.real_graphs, s.app_graphs, s.pool_graphs, s.not_normal, s.written, po->out.c_str());
  });

#ifdef TRACELM_WITH_TORCH
  auto ao = std::make_shared<CommonOpts>();
  auto aopt = std::make_shared<downstream::AnomalyOptions>();
  CLI::App* a = d->add_subcommand(
      "anomaly", "anomaly detection as in TraceVAE: a graph VAE scored by negative log-likelihood");
  add_common(a, *ao);
  a->add_option("--labels", aopt->labels,
                "auto (field when the real corpus has \"label\" fields, else rule), rule (a node "
                "at or above its type's P99 over the real training pool), field (label != "
                "\"normal\")")
      ->check(CLI::IsMember({"auto", "rule", "field"}))
      ->capture_default_str();
  a->add_option("--size", aopt->size, "small (CPU budget) or published (TraceVAE's dimensions)")
      ->check(CLI::IsMember({"small", "published"}))
      ->capture_default_str();
  a->add_option("--epochs", aopt->epochs, "epochs (0: the size's default)")->capture_default_str();
  a->add_option("--samples", aopt->is_samples, "importance samples for the NLL")
      ->capture_default_str();
  a->callback([ao, aopt] {
    ao->exp.progress = !ao->files.quiet;
    downstream::AnomalyOptions opt = *aopt;
    downstream::run_downstream_command(
        [opt](const std::vector<downstream::LabeledGraph>& real) {
          return downstream::anomaly_task(opt, real);
        },
        ao->files, ao->exp);
  });
#endif
}

}  // namespace tracelm::cli
