// The real-fault protocol of the downstream tasks (docs/downstream.md,
// "Real faults"): the split by time, the real training pool a generator is
// trained on (`tracelm downstream pool`), the primary metric per kind of
// positive (per fault type), and their JSON, table and CLI. The anomaly task
// on labelled graphs is in tests/model/anomaly_faults_test.cc.
#include <gtest/gtest.h>

#include <algorithm>

#include "corpus/corpus.h"
#include "downstream/command.h"
#include "downstream/protocol.h"
#include "downstream/scores.h"
#include "io/input_error.h"
#include "test_util.h"

namespace tracelm::downstream {
namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kT0 = 1674953000 * kSecond;  // 2023-01-29T00:43:20Z

// Graph i: USER -> A (root) -> B; starts i seconds after kT0; B takes b ms.
LabeledGraph timed(int i, int64_t b, std::string label, std::string service = "S") {
  CallGraph g;
  g.service = std::move(service);
  g.trace_id = "t" + std::to_string(i);
  g.start_unix_ns = kT0 + i * kSecond;
  g.label = label;
  g.edges = {{*RpcId::parse("0"), "USER", "A", CallType::kHttp, 0, b + 10},
             {*RpcId::parse("0.1"), "A", "B", CallType::kRpc, 2, 2 + b}};
  g.canonicalize();
  return {std::move(g), std::move(label)};
}

TEST(DownstreamFaults, SplitByTimePutsTheLatestGraphsInTheTestSet) {
  // starts (s): 50 10 40 20 30 60 70; 2/7 of 7 = 2 test graphs.
  Split s = split_by_time({50, 10, 40, 20, 30, 60, 70}, 2.0 / 7.0, "x");
  EXPECT_EQ(s.train, (std::vector<size_t>{1, 3, 4, 2, 0}));  // in time order
  EXPECT_EQ(s.test, (std::vector<size_t>{5, 6}));
  // Ties keep corpus order; the last of three equal starts goes to the test set.
  s = split_by_time({5, 5, 5}, 1.0 / 3.0, "x");
  EXPECT_EQ(s.train, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(s.test, (std::vector<size_t>{2}));
  try {
    split_by_time({5, 0, 7}, 0.5, "app S");
    FAIL() << "a graph without a start time was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("1 of 3 graphs have none"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("app S"), std::string::npos) << e.what();
  }
}

TEST(DownstreamFaults, TimeSplitIsTheSameForEverySeedTraceSplitIsNot) {
  std::vector<LabeledGraph> real;
  for (int i = 0; i < 70; ++i) real.push_back(timed(69 - i, 5, "normal"));  // newest first
  ExperimentOptions opt;
  opt.apps.min_graphs = 10;
  std::vector<App> apps = choose_apps(real, opt.apps);
  ASSERT_EQ(apps.size(), 1u);
  GraphRefs app_real = app_graphs(real, apps[0]);
  opt.split = "time";
  Split a = app_split(apps[0], app_real, 1, opt), b = app_split(apps[0], app_real, 2, opt);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.test, b.test);
  ASSERT_EQ(a.test.size(), 20u);
  for (size_t i : a.test) EXPECT_LT(i, 20u);  // corpus positions 0..19 are the newest graphs
  EXPECT_EQ(describe_split(app_real, a, "time"),
            "by time: training pool 2023-01-29T00:43:20Z to 2023-01-29T00:44:09Z (50 graphs); "
            "test set 2023-01-29T00:44:10Z to 2023-01-29T00:44:29Z (20 graphs)");
  opt.split = "trace";
  EXPECT_NE(app_split(apps[0], app_real, 1, opt).test, app_split(apps[0], app_real, 2, opt).test);
  EXPECT_EQ(describe_split(app_real, a, "trace"), "");
  opt.split = "day";
  EXPECT_THROW(app_split(apps[0], app_real, 1, opt), std::invalid_argument);
}

// 70 graphs of S in time order; every 5th is a fault ("delay": B 10x slower,
// or "error" every 7th: B 0 ms); 30 graphs of service T (another app).
std::vector<LabeledGraph> faulty_corpus() {
  std::vector<LabeledGraph> real;
  for (int i = 0; i < 70; ++i) {
    if (i % 5 == 0) {
      real.push_back(timed(i, 200, "delay"));
    } else if (i % 7 == 0) {
      real.push_back(timed(i, 0, "error"));
    } else {
      real.push_back(timed(i, 20 + i % 3, i % 2 ? "normal" : ""));  // unlabelled = normal
    }
  }
  for (int i = 0; i < 30; ++i) real.push_back(timed(100 + i, 20, "normal", "T"));
  return real;
}

TEST(DownstreamFaults, RealTrainingPoolKeepsTheNormalGraphsOfThePool) {
  std::vector<LabeledGraph> real = faulty_corpus();
  ExperimentOptions opt;
  opt.split = "time";
  opt.apps.min_graphs = 10;
  opt.apps.all_services = true;  // one app: 100 graphs, pool = the earliest 71
  std::vector<App> apps;
  GraphRefs pool = real_training_pool(real, opt, 1, false, &apps);
  ASSERT_EQ(apps.size(), 1u);
  EXPECT_EQ(pool.size(), 71u);
  GraphRefs normal = real_training_pool(real, opt, 1, true);
  // Faults among S's 70 graphs: 14 delay (i % 5 == 0), 8 error (i % 7 == 0, not % 5).
  EXPECT_EQ(normal.size(), 71u - 22u);
  for (const LabeledGraph* g : normal) EXPECT_TRUE(is_normal_label(g->label)) << g->label;
  EXPECT_TRUE(is_normal_label(""));
  EXPECT_FALSE(is_normal_label("delay"));
  // Two apps (S, T): the pool is each app's earliest 5/7.
  opt.apps.all_services = false;
  pool = real_training_pool(real, opt, 1, false, &apps);
  ASSERT_EQ(apps.size(), 2u);
  EXPECT_EQ(pool.size(), 50u + 21u);
}

// A task without a model: the score is B's latency, labels from the field,
// kinds from the label.
TaskSpec latency_task() {
  TaskSpec t;
  t.task = "anomaly";
  t.model = "B's latency";
  t.labels = "field";
  t.metrics = {{"roc_auc", roc_auc}, {"average_precision", average_precision}};
  t.tolerance = 0.02;
  t.run = [](const GraphRefs& train, const GraphRefs&, const GraphRefs& test, uint64_t) {
    TaskRun r;
    for (const LabeledGraph* g : test) {
      r.y.push_back(!is_normal_label(g->label));
      r.score.push_back(static_cast<double>(g->graph.edges[1].duration_ms()));
      r.kind.push_back(g->label.empty() ? "normal" : g->label);
    }
    r.train_samples = train.size();
    return r;
  };
  return t;
}

TEST(DownstreamFaults, MetricPerKindOfPositiveInResultJsonAndTable) {
  std::vector<LabeledGraph> real = faulty_corpus();
  ExperimentOptions opt;
  opt.split = "time";
  opt.apps.min_graphs = 10;
  opt.apps.apps = 1;
  opt.seeds = 2;
  opt.bootstrap = 20;
  opt.progress = false;
  ExperimentResult r = run_experiment(latency_task(), real, {{"real", "", {}}}, opt);
  ASSERT_EQ(r.rows.size(), 1u);
  const SourceOutcome& row = r.rows[0];
  // Test set: S's latest 20 graphs (i = 50..69): delay at 50,55,60,65; error at 56,63.
  for (const SeedOutcome& o : row.seeds) {
    EXPECT_EQ(o.test_samples, 20u);
    EXPECT_EQ(o.positives_by_kind.at("delay"), 4u);
    EXPECT_EQ(o.positives_by_kind.at("error"), 2u);
    EXPECT_EQ(o.by_kind.at("delay"), 1.0);  // slower than every normal graph
    EXPECT_EQ(o.by_kind.at("error"), 0.0);  // faster than every normal graph
    EXPECT_NEAR(o.metrics[0], 4.0 / 6.0, 1e-12);
  }
  EXPECT_EQ(row.by_kind.at("delay").mean, 1.0);
  EXPECT_EQ(r.split, "time");
  ASSERT_EQ(r.split_notes.size(), 1u);
  EXPECT_NE(r.split_notes[0].find("(50 graphs); test set"), std::string::npos) << r.split_notes[0];
  std::string table = r.table();
  EXPECT_NE(table.find("split of S by time"), std::string::npos) << table;
  EXPECT_NE(table.find("roc_auc of the negatives against each kind of positive"), std::string::npos)
      << table;
  EXPECT_NE(table.find("1.000 ± 0.000 (4)"), std::string::npos) << table;
  // JSON round trip keeps the split and the per-kind values.
  ExperimentResult back = ExperimentResult::from_json(nlohmann::json::parse(r.to_json().dump()));
  EXPECT_EQ(back.split, "time");
  EXPECT_EQ(back.split_notes, r.split_notes);
  EXPECT_EQ(back.rows[0].by_kind.at("error").mean, 0.0);
  EXPECT_EQ(back.rows[0].seeds[1].positives_by_kind.at("delay"), 4u);
  EXPECT_EQ(back.table(), table);
  // Results written before the split existed read as the trace split.
  nlohmann::json old = nlohmann::json::parse(r.to_json().dump());
  old.erase("split");
  EXPECT_EQ(ExperimentResult::from_json(old).split, "trace");
}

TEST(DownstreamFaults, GapsAgainstANamedReference) {
  std::vector<LabeledGraph> real = faulty_corpus();
  ExperimentOptions opt;
  opt.split = "time";
  opt.apps.min_graphs = 10;
  opt.apps.apps = 1;
  opt.seeds = 2;
  opt.bootstrap = 20;
  opt.progress = false;
  // "few": 20 graphs of the pool (aligned by trace id); a model trained on
  // fewer than 40 graphs ranks by the opposite of B's latency.
  TrainingSource few{"few", "few.jsonl", {}};
  for (int i = 1; i <= 20; ++i) few.graphs.push_back(real[static_cast<size_t>(i)]);
  TaskSpec t = latency_task();
  TaskFn by_latency = t.run;
  t.run = [by_latency](const GraphRefs& train, const GraphRefs& pool, const GraphRefs& test,
                       uint64_t seed) {
    TaskRun r = by_latency(train, pool, test, seed);
    if (train.size() < 40)
      for (double& s : r.score) s = -s;
    return r;
  };
  opt.reference = "few";
  ExperimentResult r = run_experiment(t, real, {{"real", "", {}}, few}, opt);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.reference, "few");
  EXPECT_NEAR(r.rows[0].metrics[0].mean, 4.0 / 6.0, 1e-12);  // real: 50 graphs
  EXPECT_NEAR(r.rows[1].metrics[0].mean, 2.0 / 6.0, 1e-12);  // few: 20 graphs
  EXPECT_NEAR(r.rows[0].gap.mean, 2.0 / 6.0, 1e-12);         // real - few
  EXPECT_EQ(r.rows[1].gap.mean, 0.0);
  EXPECT_TRUE(r.rows[1].pass);
  EXPECT_GT(r.rows[0].gap_se, 0);  // paired bootstrap against "few"
  EXPECT_NE(r.table().find("gap to few ± SE"), std::string::npos) << r.table();
  EXPECT_EQ(ExperimentResult::from_json(nlohmann::json::parse(r.to_json().dump())).reference,
            "few");
  opt.reference = "nobody";
  EXPECT_THROW(run_experiment(t, real, {{"real", "", {}}, few}, opt), std::invalid_argument);
}

TEST(DownstreamFaults, PoolCommandWritesTheNormalTrainingGraphs) {
  testing::TempDir dir;
  {
    CorpusWriter w(dir.file("real.jsonl"));
    for (const LabeledGraph& g : faulty_corpus()) w.write(g.graph);
    w.close();
  }
  PoolSummary s;
  ExperimentOptions opt;
  opt.split = "time";
  opt.apps.min_graphs = 10;
  opt.apps.all_services = true;
  s = write_real_training_pool(dir.file("real.jsonl"), opt, 1, true, dir.file("pool.jsonl"));
  EXPECT_EQ(s.real_graphs, 100u);
  EXPECT_EQ(s.app_graphs, 100u);
  EXPECT_EQ(s.pool_graphs, 71u);
  EXPECT_EQ(s.not_normal, 22u);
  EXPECT_EQ(s.written, 49u);
  std::vector<CallGraph> pool = load_corpus(dir.file("pool.jsonl"));
  ASSERT_EQ(pool.size(), 49u);
  for (const CallGraph& g : pool) EXPECT_TRUE(is_normal_label(g.label));
  // The CLI: same graphs, and a corpus without start times is refused by name.
  testing::RunResult r = testing::run_tracelm(
      "downstream pool --real " + dir.file("real.jsonl") + " --split time --all-services " +
      "--min-app-graphs 10 --normal-only -o " + dir.file("pool2.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("71 in the training pool, 22 not normal left out; wrote 49"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(testing::read_file(dir.file("pool2.jsonl")),
            testing::read_file(dir.file("pool.jsonl")));
  {
    CorpusWriter w(dir.file("untimed.jsonl"));
    for (LabeledGraph g : faulty_corpus()) {
      g.graph.start_unix_ns = 0;
      w.write(g.graph);
    }
    w.close();
  }
  r = testing::run_tracelm("downstream pool --real " + dir.file("untimed.jsonl") +
                           " --split time -o " + dir.file("p3.jsonl"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("start time"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tracelm::downstream
