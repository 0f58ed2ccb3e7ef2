// The TraceVAE-style graph VAE (src/downstream/vae.h) and the anomaly task's
// labels: graph mapping, likelihoods that rank normal graphs above shuffled
// ones, seeded repeatability.
#include <gtest/gtest.h>

#include <random>

#include "downstream/anomaly.h"
#include "downstream/scores.h"
#include "downstream/vae.h"

namespace tracelm::downstream {
namespace {

Edge edge(const char* id, const char* caller, const char* callee, int64_t s, int64_t f) {
  return {*RpcId::parse(id), caller, callee, CallType::kRpc, s, f};
}

TEST(DownstreamVae, GraphMappingMergesSameTypeSiblingsInBfsOrder) {
  CallGraph g;
  g.service = "S";
  g.edges = {edge("0", "USER", "A", 0, 100),  edge("0.1", "A", "B", 0, 10),
             edge("0.1.1", "B", "D", 1, 5),   edge("0.2", "A", "B", 10, 30),
             edge("0.2.1", "B", "E", 11, 12), edge("0.3", "A", "C", 30, 40)};
  g.canonicalize();
  auto v = to_vae_graph(g);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->type, (std::vector<std::string>{"A/rpc", "B/rpc", "C/rpc", "D/rpc", "E/rpc"}));
  EXPECT_EQ(v->parent, (std::vector<int>{-1, 0, 0, 1, 1}));
  EXPECT_EQ(v->latency, (std::vector<double>{100, 15, 10, 4, 1}));  // B: mean of 10 and 20
  CallGraph one;
  one.edges = {edge("0", "USER", "A", 0, 1)};
  EXPECT_FALSE(to_vae_graph(one));  // TraceVAE keeps 2..32 nodes
  EXPECT_FALSE(to_vae_graph(g, 4));
  EXPECT_TRUE(to_vae_graph(g, 5));
}

// Graphs of one family: a root calling 2..5 distinct children, each with a
// latency around its own mean.
VaeGraph family_graph(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> kids(2, 5);
  std::normal_distribution<double> noise(0, 2);
  VaeGraph g;
  int k = kids(rng);
  g.type.push_back("root");
  g.parent.push_back(-1);
  double total = 0;
  for (int i = 0; i < k; ++i) {
    g.type.push_back("ms" + std::to_string(i));
    g.parent.push_back(0);
    g.latency.push_back(0);
    double l = 10.0 * (i + 1) + noise(rng);
    g.latency.back() = l;
    total += l;
  }
  g.latency.insert(g.latency.begin(), total + 5 + noise(rng));
  return g;
}

// The same graph with its nodes' types and latencies shuffled.
VaeGraph shuffled(VaeGraph g, std::mt19937_64& rng) {
  for (size_t i = g.size(); i > 1; --i) {
    size_t j = rng() % i;
    std::swap(g.type[i - 1], g.type[j]);
  }
  for (size_t i = g.size(); i > 1; --i) std::swap(g.latency[i - 1], g.latency[rng() % i]);
  return g;
}

VaeConfig tiny() {
  VaeConfig c;
  c.max_nodes = 8;
  c.embed = 8;
  c.hidden = 32;
  c.z = 4;
  c.z2 = 4;
  c.epochs = 40;
  c.latency_epochs = 10;
  c.batch = 32;
  c.lr = 3e-3;
  return c;
}

TEST(DownstreamVae, LikelihoodHigherOnGraphsLikeTheTrainingSetThanOnShuffledOnes) {
  std::mt19937_64 rng(1);
  std::vector<VaeGraph> train, like, odd;
  for (int i = 0; i < 300; ++i) train.push_back(family_graph(rng));
  for (int i = 0; i < 60; ++i) like.push_back(family_graph(rng));
  for (const VaeGraph& g : like) odd.push_back(shuffled(g, rng));
  GraphVae vae(tiny());
  vae.train(train, 7);
  std::vector<double> a = vae.nll(like, 10, 3), b = vae.nll(odd, 10, 3);
  double ma = mean_sd(a).mean, mb = mean_sd(b).mean;
  EXPECT_LT(ma, mb);
  std::vector<double> score(a);
  score.insert(score.end(), b.begin(), b.end());
  std::vector<int> y(a.size(), 0);
  y.resize(a.size() + b.size(), 1);
  EXPECT_GT(roc_auc(score, y), 0.9);  // NLL ranks shuffled graphs as anomalous
}

TEST(DownstreamVae, SeededAndRepeatable) {
  std::mt19937_64 rng(2);
  std::vector<VaeGraph> train, test;
  for (int i = 0; i < 80; ++i) train.push_back(family_graph(rng));
  for (int i = 0; i < 10; ++i) test.push_back(family_graph(rng));
  VaeConfig c = tiny();
  c.epochs = 5;
  c.latency_epochs = 2;
  GraphVae a(c), b(c), d(c);
  a.train(train, 11);
  b.train(train, 11);
  d.train(train, 12);
  EXPECT_EQ(a.nll(test, 4, 1), b.nll(test, 4, 1));
  EXPECT_NE(a.nll(test, 4, 1), d.nll(test, 4, 1));
  EXPECT_THROW(GraphVae(c).train({}, 1), std::invalid_argument);
  EXPECT_THROW(GraphVae(c).nll(test, 4, 1), std::logic_error);
}

TEST(DownstreamAnomaly, RuleAndFieldLabels) {
  std::vector<VaeGraph> pool;
  for (int i = 1; i <= 20; ++i) pool.push_back({{"a", "b"}, {-1, 0}, {double(i), 1.0}});
  auto q = node_thresholds(pool, 10);
  EXPECT_EQ(q.at("a"), 20);
  EXPECT_EQ(q.at("b"), 1);
  EXPECT_TRUE(rule_anomalous({{"a", "c"}, {-1, 0}, {20, 0}}, q));
  EXPECT_FALSE(rule_anomalous({{"a", "c"}, {-1, 0}, {19, 1e9}}, q));  // "c" has no threshold
  EXPECT_TRUE(field_anomalous("cpu-contention"));
  EXPECT_FALSE(field_anomalous("normal"));
  EXPECT_FALSE(field_anomalous(""));
}

// A corpus with a label field: normal graphs, and "delay" graphs whose
// second call is ten times slower; auto labels read the field.
TEST(DownstreamAnomaly, FieldLabelsEndToEnd) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0, 2);
  std::vector<LabeledGraph> real;
  for (int i = 0; i < 200; ++i) {
    bool fault = i % 8 == 0;
    int64_t b = 20 + static_cast<int64_t>(noise(rng)), c = 30 + static_cast<int64_t>(noise(rng));
    if (fault) b *= 10;
    CallGraph g;
    g.service = "S";
    g.trace_id = "T" + std::to_string(i);
    g.edges = {edge("0", "USER", "A", 0, b + c + 5), edge("0.1", "A", "B", 1, 1 + b),
               edge("0.2", "A", "C", 2 + b, 2 + b + c)};
    real.push_back({g, fault ? "delay" : "normal"});
  }
  AnomalyOptions opt;
  opt.epochs = 30;
  TaskSpec spec = anomaly_task(opt, real);
  EXPECT_NE(spec.labels.find("label field"), std::string::npos);
  ExperimentOptions eo;
  eo.seeds = 2;
  eo.progress = false;
  eo.bootstrap = 50;
  eo.apps.min_graphs = 10;
  ExperimentResult r = run_experiment(spec, real, {{"real", "", {}}}, eo);
  ASSERT_EQ(r.rows.size(), 1u);
  for (const SeedOutcome& o : r.rows[0].seeds) {
    EXPECT_NEAR(o.test_positive_rate, 1.0 / 8, 0.08);
    EXPECT_GT(o.metrics[0], 0.9);  // ROC AUC: the slow graphs score a higher NLL
  }
  AnomalyOptions rule = opt;
  rule.labels = "rule";
  EXPECT_NE(anomaly_task(rule, real).labels.find("P99"), std::string::npos);
}

}  // namespace
}  // namespace tracelm::downstream
