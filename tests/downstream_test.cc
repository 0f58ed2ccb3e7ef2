// The downstream tasks' data half: FIRM critical paths, features, labels and
// SVMs; the scores (ROC AUC, AP, ...); the experiment protocol; the report
// section. (The VAE is tested in tests/model/vae_test.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "downstream/command.h"
#include "downstream/critical.h"
#include "downstream/firm.h"
#include "downstream/protocol.h"
#include "downstream/report.h"
#include "downstream/scores.h"
#include "io/input_error.h"
#include "report/gnuplot.h"
#include "test_util.h"

namespace tracelm::downstream {
namespace {

Edge edge(const char* id, const char* caller, const char* callee, int64_t s, int64_t f) {
  return {*RpcId::parse(id), caller, callee, CallType::kRpc, s, f};
}

CallGraph graph(std::vector<Edge> edges, std::string service = "S_1") {
  CallGraph g;
  g.service = std::move(service);
  g.edges = std::move(edges);
  g.canonicalize();
  return g;
}

std::vector<std::string> path_ids(const CallGraph& g) {
  std::vector<std::string> ids;
  for (size_t e : critical_path(g)) ids.push_back(g.edges[e].id.str());
  return ids;
}

using Ids = std::vector<std::string>;

TEST(DownstreamCriticalPath, OverlappingSiblingsBeforeTheLastChildAreOnThePath) {
  CallGraph g = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 0, 50),
                       edge("0.2", "A", "C", 10, 60), edge("0.3", "A", "D", 70, 95)});
  EXPECT_EQ(path_ids(g), (Ids{"0", "0.3", "0.1", "0.2"}));
}

TEST(DownstreamCriticalPath, ASiblingOverlappingTheLastChildIsNot) {
  CallGraph g = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 0, 80),
                       edge("0.2", "A", "C", 70, 95)});
  EXPECT_EQ(path_ids(g), (Ids{"0", "0.2"}));
}

TEST(DownstreamCriticalPath, ALateChildIsFollowedDownFirst) {
  CallGraph g = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 0, 30),
                       edge("0.2", "A", "C", 40, 99), edge("0.2.1", "C", "D", 45, 90),
                       edge("0.2.2", "C", "E", 50, 60)});
  EXPECT_EQ(path_ids(g), (Ids{"0", "0.2", "0.2.1", "0.1"}));
}

TEST(DownstreamCriticalPath, EqualFinishTimesPreferTheLaterStartThenTheSmallerId) {
  CallGraph g1 = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 10, 50),
                        edge("0.2", "A", "C", 20, 50)});
  EXPECT_EQ(path_ids(g1), (Ids{"0", "0.2"}));
  CallGraph g2 = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 20, 50),
                        edge("0.2", "A", "C", 20, 50)});
  EXPECT_EQ(path_ids(g2), (Ids{"0", "0.1"}));
  // A sibling that finishes exactly when the last child starts happened before it.
  CallGraph g3 = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 0, 20),
                        edge("0.2", "A", "C", 20, 50)});
  EXPECT_EQ(path_ids(g3), (Ids{"0", "0.2", "0.1"}));
}

TEST(DownstreamCriticalPath, EmptyGraphAndLatencies) {
  EXPECT_TRUE(critical_path(CallGraph{}).empty());
  CallGraph g = graph({edge("0", "USER", "A", 0, 100), edge("0.1", "A", "B", 0, 30),
                       edge("0.2", "A", "B", 40, 90)});
  CpLatencies c = cp_latencies(g);
  EXPECT_EQ(c.total, 100);
  ASSERT_EQ(c.components.size(), 2u);
  EXPECT_EQ(c.components[0], (std::pair<std::string, double>{"A", 100}));
  EXPECT_EQ(c.components[1], (std::pair<std::string, double>{"B", 80}));  // 30 + 50
}

TEST(DownstreamFirm, ThresholdsFeaturesAndLabels) {
  // m = "B" with T_B = 1..20 ms and T_CP = T_B + 10: RI = 1.
  std::vector<CpLatencies> pool;
  for (int i = 1; i <= 20; ++i) pool.push_back({i + 10.0, {{"A", i + 10.0}, {"B", double(i)}}});
  FirmThresholds th = firm_thresholds(pool, 10);
  EXPECT_EQ(th.at("B"), 20);  // nearest rank: x[floor(0.99 * 20)] = x[19]
  EXPECT_EQ(firm_thresholds(pool, 21).size(), 0u);
  FirmWindowOptions o{20, 1, 3};  // one window of every graph
  std::vector<FirmSample> s = firm_samples(pool, th, o, 1);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].microservice, "B");
  EXPECT_NEAR(s[1].x[0], 1.0, 1e-12);        // RI
  EXPECT_NEAR(s[1].x[1], 20.0 / 11, 1e-12);  // CI = P99 / P50 = 20 / x[10] = 20 / 11
  EXPECT_EQ(s[1].label, 1);                  // the window holds the maximum, 20 >= Q99
  // Windows without the slowest graph are not critical.
  std::vector<CpLatencies> low(pool.begin(), pool.end() - 1);
  for (const FirmSample& x : firm_samples(low, th, {5, 50, 3}, 2)) EXPECT_EQ(x.label, 0);
  // Seeded: the same seed draws the same windows.
  auto a = firm_samples(pool, th, {5, 30, 3}, 7), b = firm_samples(pool, th, {5, 30, 3}, 7);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].x, b[i].x);
}

void blobs(size_t n, double noise_flip, uint64_t seed, std::vector<std::vector<double>>* x,
           std::vector<int>* y) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0, 0.5);
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t i = 0; i < n; ++i) {
    int c = static_cast<int>(i % 2);
    double cx = c ? 2.0 : -2.0;
    x->push_back({cx + nd(rng), cx + nd(rng)});
    y->push_back(u(rng) < noise_flip ? 1 - c : c);
  }
}

// Separable: class 1 in [1, 3]^2, class 0 in [-3, -1]^2.
void boxes(size_t n, uint64_t seed, std::vector<std::vector<double>>* x, std::vector<int>* y) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(1, 3);
  for (size_t i = 0; i < n; ++i) {
    int c = static_cast<int>(i % 2);
    double sign = c ? 1.0 : -1.0;
    x->push_back({sign * u(rng), sign * u(rng)});
    y->push_back(c);
  }
}

TEST(DownstreamSvm, LinearSgdSeparatesSeparableData) {
  std::vector<std::vector<double>> x, xt;
  std::vector<int> y, yt;
  boxes(400, 1, &x, &y);
  boxes(200, 2, &xt, &yt);
  LinearSvm m;
  m.fit(x, y, 3);
  std::vector<int> p;
  for (const auto& v : xt) p.push_back(m.predict(v));
  EXPECT_EQ(accuracy(p, yt), 1.0);
  EXPECT_GT(m.weights()[0], 0);
  EXPECT_GT(m.weights()[1], 0);
  // Seeded and repeatable.
  LinearSvm m2;
  m2.fit(x, y, 3);
  EXPECT_EQ(m.weights(), m2.weights());
  EXPECT_EQ(m.bias(), m2.bias());
}

TEST(DownstreamSvm, NoisyLabelsCapAccuracyNearTheCleanRate) {
  std::vector<std::vector<double>> x, xt;
  std::vector<int> y, yt;
  blobs(1000, 0.15, 4, &x, &y);
  blobs(1000, 0.15, 5, &xt, &yt);
  LinearSvm lin;
  lin.fit(x, y, 1);
  RbfSvm rbf;
  rbf.fit(x, y);
  std::vector<int> pl, pr;
  for (const auto& v : xt) {
    pl.push_back(lin.predict(v));
    pr.push_back(rbf.predict(v));
  }
  // About 15% of the test labels are flipped: a good model scores about 85%.
  EXPECT_GT(accuracy(pl, yt), 0.78);
  EXPECT_LT(accuracy(pl, yt), 0.92);
  EXPECT_GT(accuracy(pr, yt), 0.78);
  EXPECT_LT(accuracy(pr, yt), 0.92);
  EXPECT_GT(rbf.gamma(), 0);
}

TEST(DownstreamSvm, OneClassTrainingPredictsThatClass) {
  std::vector<std::vector<double>> x = {{0, 1}, {1, 0}, {2, 2}};
  std::vector<int> y = {1, 1, 1};
  LinearSvm lin;
  lin.fit(x, y, 1);
  RbfSvm rbf;
  rbf.fit(x, y);
  EXPECT_EQ(lin.predict({-5, -5}), 1);
  EXPECT_EQ(rbf.predict({-5, -5}), 1);
  EXPECT_THROW(lin.fit({}, {}, 1), std::invalid_argument);
}

TEST(DownstreamScores, RocAucAndAveragePrecisionByHand) {
  // scikit-learn's documentation example.
  std::vector<double> s = {0.1, 0.4, 0.35, 0.8};
  std::vector<int> y = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(roc_auc(s, y), 0.75);
  EXPECT_NEAR(average_precision(s, y), 0.8333333333, 1e-9);
  // Ties: a positive tied with a negative counts one half; tied scores are one threshold.
  std::vector<double> t = {1, 2, 2, 3};
  EXPECT_DOUBLE_EQ(roc_auc(t, y), 0.875);
  EXPECT_NEAR(average_precision(t, y), 0.5 * 1 + 0.5 * (2.0 / 3), 1e-12);
  EXPECT_NEAR(best_f1(t, y), 0.8, 1e-12);
  std::vector<double> all_tied = {0.5, 0.5, 0.5, 0.5};
  std::vector<int> y2 = {0, 1, 0, 1};
  EXPECT_DOUBLE_EQ(roc_auc(all_tied, y2), 0.5);
  EXPECT_DOUBLE_EQ(average_precision(all_tied, y2), 0.5);
  // Perfect and reversed rankings; one class only is undefined.
  EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3, 4}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({4, 3, 2, 1}, {0, 0, 1, 1}), 0.0);
  EXPECT_TRUE(std::isnan(roc_auc({1, 2}, {1, 1})));
  EXPECT_TRUE(std::isnan(average_precision({1, 2}, {0, 0})));
  EXPECT_THROW(roc_auc({1, 2}, {1}), std::invalid_argument);
}

TEST(DownstreamScores, AccuracyPercentilePearsonMeanSd) {
  EXPECT_DOUBLE_EQ(accuracy({1, 1, 0, 0}, {1, 0, 0, 0}), 0.75);
  EXPECT_NEAR(balanced_accuracy({1, 1, 0, 0}, {1, 0, 0, 0}), (1.0 + 2.0 / 3) / 2, 1e-12);
  // A majority-class predictor: high accuracy, balanced accuracy 0.5.
  EXPECT_DOUBLE_EQ(accuracy({0, 0, 0, 0}, {1, 0, 0, 0}), 0.75);
  EXPECT_DOUBLE_EQ(balanced_accuracy({0, 0, 0, 0}, {1, 0, 0, 0}), 0.5);
  std::vector<double> x = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  EXPECT_EQ(percentile(x, 0.99), 10);
  EXPECT_EQ(percentile(x, 0.5), 6);
  EXPECT_EQ(percentile(x, 0.0), 1);
  EXPECT_NEAR(pearson({1, 2, 3}, {2, 4, 6}), 1.0, 1e-12);
  EXPECT_NEAR(pearson({1, 2, 3}, {3, 2, 1}), -1.0, 1e-12);
  EXPECT_EQ(pearson({1, 1, 1}, {1, 2, 3}), 0.0);
  MeanSd m = mean_sd({1, 2, 3, std::nan("")});
  EXPECT_EQ(m.n, 3u);
  EXPECT_DOUBLE_EQ(m.mean, 2);
  EXPECT_DOUBLE_EQ(m.sd, 1);
}

// A corpus of n graphs per service; graph i has latency 10 + i % 17 and trace id T<svc><i>.
std::vector<LabeledGraph> corpus(const std::vector<std::pair<std::string, int>>& services) {
  std::vector<LabeledGraph> out;
  for (const auto& [svc, n] : services)
    for (int i = 0; i < n; ++i) {
      CallGraph g =
          graph({edge("0", "USER", "A", 0, 10 + i % 17), edge("0.1", "A", "B", 1, 5 + i % 3)}, svc);
      g.trace_id = "T" + svc + std::to_string(i);
      out.push_back({g, ""});
    }
  return out;
}

TEST(DownstreamProtocol, AppsSplitsAndPooling) {
  auto real = corpus({{"S_big", 100}, {"S_mid", 80}, {"S_a", 40}, {"S_b", 35}, {"S_c", 5}});
  std::vector<App> apps = choose_apps(real, {});
  ASSERT_EQ(apps.size(), 2u);
  EXPECT_EQ(apps[0].name, "S_big");
  EXPECT_EQ(apps[1].name, "S_mid");
  AppOptions o;
  o.apps = 3;
  apps = choose_apps(real, o);
  ASSERT_EQ(apps.size(), 3u);
  EXPECT_EQ(apps[2].services, (std::vector<std::string>{"S_a", "S_b"}));  // pooled to >= 70
  EXPECT_EQ(apps[2].graphs, 75u);
  EXPECT_NE(apps[2].name.find("pooled"), std::string::npos);
  o.all_services = true;
  apps = choose_apps(real, o);
  ASSERT_EQ(apps.size(), 1u);
  EXPECT_EQ(apps[0].graphs, 260u);

  Split s = split_app(70, 3);
  EXPECT_EQ(s.test.size(), 20u);
  EXPECT_EQ(s.train.size(), 50u);
  Split s2 = split_app(70, 3), s3 = split_app(70, 4);
  EXPECT_EQ(s.test, s2.test);
  EXPECT_NE(s.test, s3.test);
}

TEST(DownstreamProtocol, AlignedAndUnalignedTrainingSets) {
  auto real = corpus({{"S_1", 70}});
  App app{"S_1", {"S_1"}, 70};
  GraphRefs app_real;
  for (const auto& g : real) app_real.push_back(&g);
  Split split = split_app(70, 1);
  // Aligned: the set carries the real trace ids (made "like" each real graph).
  TrainingSource like{"like", "x", corpus({{"S_1", 70}, {"S_other", 10}})};
  std::string note;
  GraphRefs tr = training_graphs(like, app, app_real, split, 1, &note);
  EXPECT_EQ(tr.size(), split.train.size());
  EXPECT_NE(note.find("aligned"), std::string::npos);
  std::set<std::string> test_ids;
  for (size_t i : split.test) test_ids.insert(real[i].graph.trace_id);
  for (const LabeledGraph* g : tr) EXPECT_EQ(test_ids.count(g->graph.trace_id), 0u);
  // Unaligned: sampled to the pool's size, service filter applied.
  TrainingSource other{"other", "y", corpus({{"S_1", 200}, {"S_other", 10}})};
  for (auto& g : other.graphs) g.graph.trace_id.clear();
  tr = training_graphs(other, app, app_real, split, 1, &note);
  EXPECT_EQ(tr.size(), split.train.size());
  EXPECT_NE(note.find("unaligned"), std::string::npos);
  for (const LabeledGraph* g : tr) EXPECT_EQ(g->graph.service, "S_1");
  EXPECT_EQ(training_graphs({"real", "", {}}, app, app_real, split, 1, nullptr).size(), 50u);
  EXPECT_THROW(parse_training_source("real=file.jsonl"), InputError);
  EXPECT_EQ(parse_training_source("dir/tracelm.jsonl").name, "tracelm");
}

// A toy task: the label of a test graph is "latency >= 18"; a model trained
// on graphs predicts with the threshold it learnt (the median latency of its
// training graphs, rounded), so a training set with other latencies predicts worse.
TaskSpec toy_task() {
  TaskSpec t;
  t.task = "toy";
  t.model = "threshold";
  t.labels = "latency >= 18";
  t.metrics = {{"accuracy", [](const std::vector<double>& s, const std::vector<int>& y) {
                  std::vector<int> p(s.begin(), s.end());
                  return accuracy(p, y);
                }}};
  t.tolerance = 0.015;
  t.display_scale = 100;
  t.run = [](const GraphRefs& train, const GraphRefs&, const GraphRefs& test, uint64_t) {
    std::vector<double> lat;
    for (const LabeledGraph* g : train) lat.push_back(double(g->graph.latency()));
    double th = percentile(lat, 0.5) + 8;
    TaskRun r;
    for (const LabeledGraph* g : test) {
      r.y.push_back(g->graph.latency() >= 18);
      r.score.push_back(g->graph.latency() >= th);
    }
    r.train_samples = train.size();
    return r;
  };
  return t;
}

TEST(DownstreamProtocol, ExperimentGapsPassAndJsonRoundTrip) {
  auto real = corpus({{"S_1", 140}, {"S_2", 100}});
  std::vector<TrainingSource> sources = {
      {"real", "", {}}, {"copy", "c", corpus({{"S_1", 140}, {"S_2", 100}})}, {"slow", "s", {}}};
  for (LabeledGraph g : corpus({{"S_1", 140}, {"S_2", 100}})) {
    for (Edge& e : g.graph.edges) e.finish_ms += 5;  // every latency 5 ms higher
    sources[2].graphs.push_back(g);
  }
  ExperimentOptions opt;
  opt.seeds = 3;
  opt.progress = false;
  opt.bootstrap = 200;
  ExperimentResult r = run_experiment(toy_task(), real, sources, opt);
  ASSERT_EQ(r.rows.size(), 6u);  // 2 apps x 3 sources
  for (const SourceOutcome& row : r.rows) {
    ASSERT_EQ(row.seeds.size(), 3u);
    if (row.source == "copy") {
      EXPECT_NEAR(row.gap.mean, 0, 1e-12);  // the same graphs (aligned): the same model
      EXPECT_TRUE(row.pass);
    }
    if (row.source == "slow") {
      EXPECT_LT(row.gap.mean, -0.05);
      EXPECT_FALSE(row.pass);
    }
  }
  ExperimentResult again = run_experiment(toy_task(), real, sources, opt);
  EXPECT_EQ(again.to_json().dump(), r.to_json().dump());  // seeded
  ExperimentResult back = ExperimentResult::from_json(nlohmann::json::parse(r.to_json().dump()));
  EXPECT_EQ(back.to_json().dump(), r.to_json().dump());
  std::string table = r.table();
  EXPECT_NE(table.find("slow"), std::string::npos);
  EXPECT_NE(table.find("NO"), std::string::npos);
  EXPECT_THROW(ExperimentResult::from_json(nlohmann::json::object()), std::runtime_error);
  sources.erase(sources.begin());
  EXPECT_THROW(run_experiment(toy_task(), real, sources, opt), std::invalid_argument);
}

TEST(DownstreamReport, TableAndChartWithErrorBars) {
  auto real = corpus({{"S_<1>", 100}});
  std::vector<TrainingSource> sources = {{"real", "", {}}, {"a&b", "c", corpus({{"S_<1>", 100}})}};
  ExperimentOptions opt;
  opt.seeds = 2;
  opt.progress = false;
  opt.bootstrap = 50;
  ExperimentResult r = run_experiment(toy_task(), real, sources, opt);
  std::string h = downstream_html({r}, {}, false);
  EXPECT_NE(h.find("<table>"), std::string::npos);
  EXPECT_NE(h.find("a&amp;b"), std::string::npos);
  EXPECT_NE(h.find("S_&lt;1&gt;"), std::string::npos);
  if (gnuplot_available()) {
    EXPECT_NE(h.find("<svg"), std::string::npos);
    EXPECT_NE(h.find("ds0-"), std::string::npos);
  }
}

TEST(DownstreamCli, CriticalJsonReportAndEvaluateSection) {
  testing::TempDir dir;
  {
    CorpusWriter w(dir.file("real.jsonl")), s(dir.file("syn.jsonl"));
    for (const LabeledGraph& g : corpus({{"S_1", 120}})) {
      w.write(g.graph);
      s.write(g.graph);
    }
    w.close();
    s.close();
  }
  testing::RunResult r = testing::run_tracelm(
      "downstream critical --real " + dir.file("real.jsonl") +
      " --train syn=" + dir.file("syn.jsonl") + " --seeds 2 --bootstrap 20 --json " +
      dir.file("c.json") + " --report " + dir.file("c.html"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("gap to real"), std::string::npos) << r.out;
  ExperimentResult res = read_experiment_result(dir.file("c.json"));
  EXPECT_EQ(res.task, "critical");
  ASSERT_EQ(res.rows.size(), 2u);
  EXPECT_EQ(res.rows[0].source, "real");
  EXPECT_EQ(res.rows[1].source, "syn");
  EXPECT_NE(testing::read_file(dir.file("c.html")).find("<table>"), std::string::npos);
  // Bad input: a training set named real, a missing file.
  r = testing::run_tracelm("downstream critical --real " + dir.file("real.jsonl") +
                           " --train real=" + dir.file("syn.jsonl"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("real training pool"), std::string::npos) << r.out;
  EXPECT_THROW(read_experiment_result(dir.file("real.jsonl")), InputError);
  // The section in the realism report.
  r = testing::run_tracelm("evaluate --real " + dir.file("real.jsonl") +
                           " --synthetic syn=" + dir.file("syn.jsonl") + " --report " +
                           dir.file("r.html") + " --downstream " + dir.file("c.json") + " -q");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(testing::read_file(dir.file("r.html")).find("Training on synthetic data: critical"),
            std::string::npos);
}

// Graphs whose call to B takes 1..40 ms (B is on the critical path).
std::vector<LabeledGraph> firm_corpus(int n, int offset) {
  std::vector<LabeledGraph> out;
  for (int i = 0; i < n; ++i) {
    int64_t b = 1 + (i * 7 + offset) % 40;
    out.push_back(
        {graph({edge("0", "USER", "A", 0, b + 10), edge("0.1", "A", "B", 2, 2 + b)}), ""});
  }
  return out;
}

TEST(DownstreamCriticalTask, SameTestSamplesForEveryTrainingSetAndStandardize) {
  auto pool_g = firm_corpus(100, 0), test_g = firm_corpus(40, 3), other_g = firm_corpus(100, 5);
  GraphRefs pool, test, other;
  for (const auto& g : pool_g) pool.push_back(&g);
  for (const auto& g : test_g) test.push_back(&g);
  for (const auto& g : other_g) other.push_back(&g);
  for (bool z : {false, true}) {
    CriticalOptions o;
    o.standardize = z;
    TaskSpec t = critical_task(o);
    EXPECT_EQ(t.model.find("standardized") != std::string::npos, z);
    TaskRun a = t.run(pool, pool, test, 9), b = t.run(other, pool, test, 9);
    ASSERT_FALSE(a.y.empty());
    EXPECT_EQ(a.y, b.y);  // the test windows depend on the seed and the test graphs only
    EXPECT_EQ(a.score.size(), a.y.size());
    EXPECT_GT(a.train_samples, 0u);
    EXPECT_GT(a.train_positive_rate, 0.0);  // windows holding the pool's slowest call
  }
  CriticalOptions bad;
  bad.svm = "poly";
  EXPECT_THROW(critical_task(bad), std::invalid_argument);
}

TEST(DownstreamReal, CriticalOnAlibabaTrainSplit) {
  REQUIRE_SHARED("data/alibaba-v2022/callgraphs-train.csv");
  auto real = load_labeled_graphs(testing::shared_path("data/alibaba-v2022/callgraphs-train.csv"));
  ASSERT_GT(real.size(), 1000u);
  ExperimentOptions opt;
  opt.seeds = 2;
  opt.progress = false;
  opt.bootstrap = 100;
  CriticalOptions co;
  co.train.windows = 100;
  co.test.windows = 50;
  ExperimentResult r = run_experiment(critical_task(co), real, {{"real", "", {}}}, opt);
  ASSERT_EQ(r.apps.size(), 2u);
  EXPECT_EQ(r.apps[0].name, "S_032048416");  // the service with the most graphs
  for (const SourceOutcome& row : r.rows) {
    for (const SeedOutcome& o : row.seeds) {
      EXPECT_GT(o.test_samples, 0u);
      EXPECT_GT(o.train_samples, 0u);
      EXPECT_GE(o.metrics[0], 0.0);
      EXPECT_LE(o.metrics[0], 1.0);
    }
  }
}

}  // namespace
}  // namespace tracelm::downstream
