// The anomaly task under the real-fault protocol (docs/downstream.md, "Real
// faults"): labels from the corpus' label field, the split by time, training
// on normal graphs only, the ROC AUC per fault type; and, when ../shared is
// present, the labelled TrainTicket recording.
#include <gtest/gtest.h>

#include <random>

#include "corpus/corpus.h"
#include "downstream/anomaly.h"
#include "downstream/command.h"
#include "ingest/spans/labels.h"
#include "ingest/spans/span_ingest.h"
#include "test_util.h"

namespace tracelm::downstream {
namespace {

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kT0 = 1674953000 * kSecond;

// 210 graphs of one service in time order: USER -> A -> {B, C}. Every 6th is
// a "delay" fault (B ten times slower), every 10th of the others an "error"
// fault (A answers without calling C); the rest is normal traffic.
std::vector<LabeledGraph> labelled_corpus(int n = 210) {
  std::mt19937_64 rng(9);
  std::normal_distribution<double> noise(0, 2);
  std::vector<LabeledGraph> real;
  for (int i = 0; i < n; ++i) {
    std::string label = i % 6 == 0 ? "delay" : i % 10 == 0 ? "error" : "normal";
    int64_t b = 20 + static_cast<int64_t>(noise(rng)), c = 30 + static_cast<int64_t>(noise(rng));
    if (label == "delay") b *= 10;
    CallGraph g;
    g.service = "S";
    g.trace_id = "T" + std::to_string(i);
    g.start_unix_ns = kT0 + i * kSecond;
    g.label = label;
    g.edges = {{*RpcId::parse("0"), "USER", "A", CallType::kHttp, 0, b + c + 5},
               {*RpcId::parse("0.1"), "A", "B", CallType::kRpc, 1, 1 + b}};
    if (label != "error")
      g.edges.push_back({*RpcId::parse("0.2"), "A", "C", CallType::kRpc, 2 + b, 2 + b + c});
    g.canonicalize();
    real.push_back({std::move(g), std::move(label)});
  }
  return real;
}

ExperimentOptions time_split_options() {
  ExperimentOptions eo;
  eo.split = "time";
  eo.seeds = 2;
  eo.progress = false;
  eo.bootstrap = 50;
  eo.apps.min_graphs = 10;
  return eo;
}

TEST(DownstreamAnomalyFaults, FieldLabelsTimeSplitNormalTrainingAndPerFaultAuc) {
  std::vector<LabeledGraph> real = labelled_corpus();
  // Expected: test = the latest 60 graphs (i = 150..209).
  size_t test_delay = 0, test_error = 0, pool_normal = 0;
  for (int i = 0; i < 210; ++i) {
    const std::string& l = real[static_cast<size_t>(i)].label;
    if (i >= 150) {
      test_delay += l == "delay";
      test_error += l == "error";
    } else {
      pool_normal += l == "normal";
    }
  }
  ASSERT_EQ(test_delay, 10u);
  ASSERT_EQ(test_error, 4u);
  // A synthetic set: the pool's normal graphs without labels (counted as
  // normal), aligned with the real pool by trace id.
  TrainingSource copy{"copy", "copy.jsonl", {}};
  for (int i = 0; i < 150; ++i)
    if (real[static_cast<size_t>(i)].label == "normal") {
      LabeledGraph g = real[static_cast<size_t>(i)];
      g.label.clear();
      g.graph.label.clear();
      copy.graphs.push_back(std::move(g));
    }
  AnomalyOptions opt;
  opt.labels = "field";
  opt.epochs = 30;
  TaskSpec spec = anomaly_task(opt, real);
  ExperimentResult r = run_experiment(spec, real, {{"real", "", {}}, copy}, time_split_options());
  ASSERT_EQ(r.rows.size(), 2u);
  for (const SourceOutcome& row : r.rows)
    for (const SeedOutcome& o : row.seeds) {
      EXPECT_EQ(o.test_samples, 60u);
      EXPECT_EQ(static_cast<size_t>(o.test_positive_rate * 60 + 0.5), test_delay + test_error);
      EXPECT_EQ(o.positives_by_kind.at("delay"), test_delay);
      EXPECT_EQ(o.positives_by_kind.at("error"), test_error);
      EXPECT_EQ(o.train_samples, pool_normal) << row.source;  // normal graphs only
      EXPECT_GT(o.metrics[0], 0.8) << row.source;             // ROC AUC
      EXPECT_GT(o.by_kind.at("delay"), 0.9) << row.source;    // B ten times slower
      EXPECT_GT(o.by_kind.at("error"), 0.5) << row.source;    // a call missing
    }
  EXPECT_EQ(r.rows[0].seeds[0].train_graphs, 150u);  // the pool, faults included
  EXPECT_EQ(r.rows[1].seeds[0].train_graphs, pool_normal);
  // Seeded: the same result again.
  ExperimentResult again =
      run_experiment(spec, real, {{"real", "", {}}, copy}, time_split_options());
  EXPECT_EQ(again.rows[1].seeds[1].metrics, r.rows[1].seeds[1].metrics);
  EXPECT_EQ(again.rows[0].by_kind.at("delay").mean, r.rows[0].by_kind.at("delay").mean);
}

TEST(DownstreamAnomalyFaults, CliFieldLabelsAndTimeSplit) {
  testing::TempDir dir;
  {
    CorpusWriter w(dir.file("real.jsonl"));
    for (const LabeledGraph& g : labelled_corpus(140)) w.write(g.graph);
    w.close();
  }
  testing::RunResult r = testing::run_tracelm(
      "downstream anomaly --real " + dir.file("real.jsonl") +
      " --labels field --split time --min-app-graphs 10 --seeds 1 --epochs 6 --bootstrap 10 "
      "--json " +
      dir.file("a.json") + " -q");
  ASSERT_EQ(r.status, 0) << r.out;
  ExperimentResult res = read_experiment_result(dir.file("a.json"));
  EXPECT_EQ(res.split, "time");
  EXPECT_NE(res.labels.find("label field"), std::string::npos);
  ASSERT_EQ(res.rows.size(), 1u);
  // The latest 40 of 140 graphs: i = 100..139: delay 102,108,...,138 (7), error 100,110,130 (3).
  EXPECT_EQ(res.rows[0].seeds[0].positives_by_kind.at("delay"), 7u);
  EXPECT_EQ(res.rows[0].seeds[0].positives_by_kind.at("error"), 3u);
}

// The labelled TrainTicket recording: ingest with the fault windows, then
// check the time split's sets (docs/downstream.md, "Real faults").
TEST(DownstreamAnomalyFaults, TrainTicketLabelsAndTimeSplit) {
  REQUIRE_SHARED("data/trainticket/trainticket-2023-01-29.spans.csv.gz");
  REQUIRE_SHARED("data/trainticket/2023-01-29-fault_list.json");
  SpanIngestOptions so;
  so.labels = fault_list_to_windows(nlohmann::json::parse(testing::read_file(testing::shared_path(
                                        "data/trainticket/2023-01-29-fault_list.json"))),
                                    240, "2023-01-29-fault_list.json");
  std::vector<LabeledGraph> real;
  SpanIngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) {
    std::string label = g.label;
    real.push_back({std::move(g), std::move(label)});
  };
  ingest_spans({testing::shared_path("data/trainticket/trainticket-2023-01-29.spans.csv.gz")}, so,
               cb);
  ASSERT_EQ(real.size(), 4285u);
  ExperimentOptions eo;
  eo.split = "time";
  eo.apps.all_services = true;
  std::vector<App> apps;
  GraphRefs pool = real_training_pool(real, eo, 1, false, &apps);
  GraphRefs normal = real_training_pool(real, eo, 1, true);
  ASSERT_EQ(apps.size(), 1u);
  EXPECT_EQ(apps[0].graphs, 4285u);  // every graph has >= 2 calls
  EXPECT_EQ(pool.size(), 3061u);
  EXPECT_EQ(normal.size(), 2452u);
  GraphRefs app_real = app_graphs(real, apps[0]);
  Split split = app_split(apps[0], app_real, 1, eo);
  size_t test_faults = 0;
  for (size_t i : split.test) test_faults += !is_normal_label(app_real[i]->label);
  EXPECT_EQ(split.test.size(), 1224u);
  EXPECT_EQ(test_faults, 196u);  // 175 exception + 21 cpu_contention
}

}  // namespace
}  // namespace tracelm::downstream
