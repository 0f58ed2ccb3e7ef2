// The common protocol of the downstream tasks (docs/downstream.md): which
// services are the "apps", how the real graphs of an app are split per seed,
// which graphs of each named training set a model sees, and the experiment
// loop that trains one model per (app, training set, seed), tests it on the
// real test set of that seed and reports mean, spread and gap to real.
//
// Contract:
//  - load_labeled_graphs() reads a corpus (JSON Lines; an optional string
//    field "label" per graph is kept, e.g. "normal" or a fault name) or raw
//    Alibaba CSV (no labels). Errors throw InputError naming file and line.
//  - An app's graphs are the valid graphs of its services with at least
//    min_edges calls (default 2: a lone call has no path and no structure to
//    learn). choose_apps(): apps are the services with the most such graphs
//    (ties by name), `apps` of them. When an app would have fewer than min_graphs
//    graphs, the next services in rank order are pooled into it until it has
//    enough (its name then says "pooled"). all_services = true gives one app
//    holding every service.
//  - split_app(n, seed): a seeded shuffle of 0..n-1; the first
//    round(n * test_fraction) indices are the test set, the rest the real
//    training pool (paper ratio 5K:2K, test_fraction 2/7). This is the split
//    "by trace" (the default).
//  - split_by_time(starts): the split "by time": positions ordered by start
//    time (ties: position); the latest round(n * test_fraction) are the test
//    set, the earlier ones the training pool. The same for every seed (seeds
//    then vary the model and the bootstrap only), so a generator trained once
//    on the pool's graphs never saw a test graph. Throws InputError when a
//    graph has no start time (start_unix_ns == 0).
//  - app_split() applies ExperimentOptions::split; real_training_pool() gives
//    the graphs the "real" source of one seed trains on, app by app (the
//    graphs to train a generator on, or to generate "like").
//  - training_graphs(): the graphs a model of (app, seed) trains on. For the
//    source named "real": the real training pool. For any other source: its
//    graphs whose service is one of the app's. When most of them (>= half)
//    carry the trace id of a real graph of the app (a set generated "like" the
//    real corpus, one graph per real graph), only those made like a graph of
//    this seed's training pool are kept ("aligned"); otherwise a seeded
//    sample without replacement of the training pool's size ("unaligned":
//    graphs made like test graphs may be among them; said in the note).
//  - run_experiment(): the source "real" must come first. For each app, seed
//    (base_seed, base_seed + 1, ...) and source it calls the task once; every
//    source of one (app, seed) is tested on the same real test samples. The
//    primary metric's gap to the reference source (ExperimentOptions::
//    reference, "real" by default; std::invalid_argument when no source has
//    that name) is the per-seed paired difference, averaged
//    over seeds; its standard error comes from a paired bootstrap of the test
//    samples (`bootstrap` resamples per seed, seeded). A source passes when
//    |mean gap| <= max(tolerance, 1.96 * SE). Deterministic for a seed.
//  - ExperimentResult round-trips through JSON (to_json / from_json);
//    from_json throws std::runtime_error naming the missing field.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"
#include "downstream/scores.h"

namespace tracelm::downstream {

struct LabeledGraph {
  CallGraph graph;
  std::string label;  // the corpus' "label" field; empty when absent
};
std::vector<LabeledGraph> load_labeled_graphs(const std::string& path);

struct App {
  std::string name;                   // "S_032048416", or "pooled: S_1+S_2+...", or "all"
  std::vector<std::string> services;  // sorted
  size_t graphs = 0;                  // valid real graphs with >= min_edges calls
  size_t min_edges = 2;
};
struct AppOptions {
  size_t apps = 2;
  size_t min_graphs = 70;
  size_t min_edges = 2;
  bool all_services = false;
};
std::vector<App> choose_apps(const std::vector<LabeledGraph>& real, const AppOptions& opt);
// The app's graphs of `real`, in corpus order.
std::vector<const LabeledGraph*> app_graphs(const std::vector<LabeledGraph>& real, const App& app);

struct Split {
  std::vector<size_t> train, test;  // positions in the app's graph list
};
Split split_app(size_t n, uint64_t seed, double test_fraction = 2.0 / 7.0);
// starts: the graphs' start_unix_ns, in app order; `what` names them in errors.
Split split_by_time(const std::vector<int64_t>& starts, double test_fraction,
                    const std::string& what);
// Normal traffic under the label field: no label, or "normal".
bool is_normal_label(const std::string& label);

struct TrainingSource {
  std::string name;  // "real", "tracelm", "probabilistic", ...
  std::string path;  // empty for "real"
  std::vector<LabeledGraph> graphs;
};

using GraphRefs = std::vector<const LabeledGraph*>;
// The graphs of `src` a model of this app and seed trains on (rules above);
// *note says how they were chosen.
GraphRefs training_graphs(const TrainingSource& src, const App& app, const GraphRefs& app_real,
                          const Split& split, uint64_t seed, std::string* note);

// What one trained model did on the real test samples of one (app, seed).
struct TaskRun {
  std::vector<int> y;         // test labels (0/1)
  std::vector<double> score;  // per test sample: predicted class or anomaly score
  size_t train_samples = 0;   // samples the model was trained on
  double train_positive_rate = 0;
  std::string note;
  // Optional, per test sample: its kind (e.g. the corpus label: "normal",
  // "exception"). When set, the primary metric is also computed per kind of
  // positive sample: all negatives against the positives of that kind.
  std::vector<std::string> kind;
};
// train: the graphs to train on; pool: the real training pool (thresholds
// come from it); test: the real test graphs.
using TaskFn = std::function<TaskRun(const GraphRefs& train, const GraphRefs& pool,
                                     const GraphRefs& test, uint64_t seed)>;

struct Metric {
  std::string name;
  std::function<double(const std::vector<double>& score, const std::vector<int>& y)> fn;
};

struct TaskSpec {
  std::string task;             // "critical", "anomaly"
  std::string model;            // e.g. "linear SVM (hinge, SGD)"
  std::string labels;           // how labels were made, one line
  std::vector<Metric> metrics;  // the first is the primary metric
  double tolerance = 0;         // pass: |gap| <= max(tolerance, 1.96 SE), in metric units
  double display_scale = 1;     // 100: metrics shown in points (percent)
  TaskFn run;
};

struct ExperimentOptions {
  AppOptions apps;
  size_t seeds = 5;
  uint64_t base_seed = 1;
  size_t bootstrap = 1000;
  double test_fraction = 2.0 / 7.0;
  // "trace" (seeded shuffle) or "time" (the latest graphs are the test set).
  std::string split = "trace";
  // The training set the gaps are measured against (it always passes):
  // "real" (the real training pool), or e.g. a sample of the pool of a
  // synthetic set's size.
  std::string reference = "real";
  bool progress = true;  // one line per model on stderr
};

// The split of one app's graphs (app_graphs order) for one seed, as
// run_experiment() draws it.
Split app_split(const App& app, const GraphRefs& app_real, uint64_t seed,
                const ExperimentOptions& opt);
// Under the time split: "by time: training pool <first> to <last> (N graphs);
// test set <first> to <last> (M graphs)" (trace starts, UTC seconds); empty
// under the trace split.
std::string describe_split(const GraphRefs& app_real, const Split& split,
                           const std::string& split_kind);
// The real training pool of every app for one seed (what the "real" source
// trains on), app by app in app_graphs order; normal_only keeps the graphs
// whose label is_normal_label().
GraphRefs real_training_pool(const std::vector<LabeledGraph>& real, const ExperimentOptions& opt,
                             uint64_t seed, bool normal_only, std::vector<App>* apps = nullptr);

struct SeedOutcome {
  uint64_t seed = 0;
  size_t train_graphs = 0, test_graphs = 0, train_samples = 0, test_samples = 0;
  double train_positive_rate = 0, test_positive_rate = 0;
  std::vector<double> metrics;  // in TaskSpec order
  double gap = 0;               // primary metric minus the reference's (0 for it)
  double gap_se = 0;            // bootstrap SE of gap
  std::string note;
  // TaskRun::kind: per kind of positive, the primary metric of all negatives
  // against those positives, and how many positives of that kind were tested.
  std::map<std::string, double> by_kind;
  std::map<std::string, size_t> positives_by_kind;
};

struct SourceOutcome {
  std::string app, source, path;
  std::vector<SeedOutcome> seeds;
  std::vector<MeanSd> metrics;            // over seeds, in TaskSpec order
  MeanSd gap;                             // of the primary metric, over seeds (0: reference)
  double gap_se = 0;                      // SE of the mean gap
  bool pass = true;                       // the criterion (always true for the reference)
  std::map<std::string, MeanSd> by_kind;  // SeedOutcome::by_kind over seeds
};

struct ExperimentResult {
  std::string task, model, labels;
  std::string split = "trace";           // ExperimentOptions::split
  std::string reference = "real";        // ExperimentOptions::reference
  std::vector<std::string> split_notes;  // per app: describe_split()
  std::vector<std::string> metric_names;
  double tolerance = 0, display_scale = 1;
  size_t seeds = 0;
  std::vector<App> apps;
  std::vector<SourceOutcome> rows;  // app by app, sources in the given order

  nlohmann::ordered_json to_json() const;
  static ExperimentResult from_json(const nlohmann::json& j);
  // A plain-text table: one row per (app, source): n train/test, positive
  // rate, each metric mean ± sd, gap to the reference ± SE, pass. When rows have
  // by_kind values, a second table: the primary metric per kind of positive.
  std::string table() const;
};

ExperimentResult run_experiment(const TaskSpec& spec, const std::vector<LabeledGraph>& real,
                                const std::vector<TrainingSource>& sources,
                                const ExperimentOptions& opt);

// "name=path" -> {name, path}; a bare path is named by its file stem; "real"
// alone is the real training pool. Throws InputError on "real=FILE".
TrainingSource parse_training_source(const std::string& spec);

}  // namespace tracelm::downstream
