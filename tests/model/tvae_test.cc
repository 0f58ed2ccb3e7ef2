// The TVAE baseline (src/baseline/tvae.h): the Gaussian mixture of
// mode-specific normalization, the transformer's round trip, that a trained
// model makes the frequent calls most often, save/load and seeded
// repeatability. Tiny sizes: seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "baseline/tvae.h"
#include "corpus/corpus.h"
#include "io/input_error.h"
#include "test_util.h"

namespace tracelm {
namespace {

double normal(Rng& rng) {
  double u1 = std::max(rng.uniform(), 1e-12), u2 = rng.uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

TEST(Tvae, GmmRecoversTwoWellSeparatedModes) {
  Rng rng(3);
  std::vector<double> x;
  for (int i = 0; i < 1500; ++i) x.push_back(normal(rng));           // N(0, 1)
  for (int i = 0; i < 500; ++i) x.push_back(100 + 2 * normal(rng));  // N(100, 2^2)
  Gmm g = fit_gmm(x);
  ASSERT_EQ(g.modes(), 2u);
  size_t lo = g.mean[0] < g.mean[1] ? 0 : 1, hi = 1 - lo;
  EXPECT_NEAR(g.mean[lo], 0, 0.15);
  EXPECT_NEAR(g.mean[hi], 100, 0.4);
  EXPECT_NEAR(g.sd[lo], 1, 0.1);
  EXPECT_NEAR(g.sd[hi], 2, 0.2);
  EXPECT_NEAR(g.weight[lo], 0.75, 0.01);
  EXPECT_NEAR(g.weight[hi], 0.25, 0.01);
  // Modes below min_weight are dropped: 3 values far away make a mode of
  // weight < 0.005 (if BIC keeps it at all), never one of the result.
  x.push_back(1e4);
  x.push_back(1e4 + 1);
  x.push_back(1e4 + 2);
  Gmm p = fit_gmm(x);
  for (size_t k = 0; k < p.modes(); ++k) EXPECT_GE(p.weight[k], 0.005);
  double wsum = 0;
  for (double w : p.weight) wsum += w;
  EXPECT_NEAR(wsum, 1, 1e-9);
  // A constant column: one mode.
  EXPECT_EQ(fit_gmm(std::vector<double>(10, 7.0)).modes(), 1u);
}

TEST(Tvae, TransformInverseRoundTrip) {
  Rng rng(5);
  std::vector<CallRow> calls;
  for (int i = 0; i < 400; ++i) {
    bool a = i % 3 != 0;
    calls.push_back(
        {a ? "USER" : "MS_1", a ? "MS_2" : "MS_3", a ? CallType::kHttp : CallType::kRpc, a ? 1 : 2,
         a ? 0 : 5 + i % 4,
         static_cast<int64_t>(std::llround(a ? 20 + 2 * normal(rng) : 500 + 10 * normal(rng)))});
  }
  Table t = calls_table(calls);
  EXPECT_EQ(calls_from_table(t), calls);
  TableTransformer tr = TableTransformer::fit(t);
  ASSERT_EQ(tr.spans().size(), 4u + 2u * 2u);
  // caller, callee, type, depth: 2 categories each; then alpha + modes per continuous column.
  EXPECT_EQ(tr.spans()[0].size, 2);
  Rng r1(9);
  std::vector<float> data = tr.transform(t, r1);
  ASSERT_EQ(data.size(), t.rows() * static_cast<size_t>(tr.width()));
  for (float v : data) EXPECT_LE(std::fabs(v), 1.0f);
  Rng r2(9);
  Table back = tr.inverse(data, t.rows(), {}, r2);
  EXPECT_EQ(back.discrete, t.discrete);
  size_t close = 0;
  for (size_t c = 0; c < 2; ++c)
    for (size_t i = 0; i < t.rows(); ++i)
      close += std::fabs(back.continuous[c][i] - t.continuous[c][i]) < 1e-3 ? 1 : 0;
  EXPECT_GE(close, 2 * t.rows() * 99 / 100);  // all but values beyond 3.96 sd of their mode
  EXPECT_EQ(calls_from_table(back).size(), calls.size());

  // The cap on categories: the most frequent kept, the rest in OTHER.
  TableTransformer capped = TableTransformer::fit(t, 2);
  std::vector<CallRow> three = calls;
  three.push_back({"MS_9", "MS_2", CallType::kHttp, 1, 0, 1});
  Table t3 = calls_table(three);
  TableTransformer c3 = TableTransformer::fit(t3, 2);
  EXPECT_EQ(c3.columns()[0].categories, (std::vector<std::string>{"USER", kOtherCategory}));
  EXPECT_EQ(capped.columns()[0].categories, (std::vector<std::string>{"USER", "MS_1"}));
  // JSON round trip.
  TableTransformer j = TableTransformer::from_json(tr.to_json());
  EXPECT_EQ(j.width(), tr.width());
  Rng r3(9);
  EXPECT_EQ(j.transform(t, r3), data);
}

// 60% USER->A, 30% A->B, 10% over 20 rare pairs.
std::vector<CallRow> skewed_calls() {
  std::vector<CallRow> calls;
  for (int i = 0; i < 1000; ++i) {
    if (i % 10 < 6)
      calls.push_back({"USER", "A", CallType::kHttp, 1, 0, 30 + i % 5});
    else if (i % 10 < 9)
      calls.push_back({"A", "B", CallType::kRpc, 2, 1 + i % 3, 4 + i % 3});
    else
      calls.push_back(
          {"R" + std::to_string(i % 20), "S" + std::to_string(i % 20), CallType::kDb, 3, 2, 1});
  }
  return calls;
}

TvaeOptions small_options(int epochs) {
  TvaeOptions o;
  o.embedding = 16;
  o.hidden = 32;
  o.batch = 100;
  o.epochs = epochs;
  o.seed = 11;
  return o;
}

TEST(Tvae, TrainedModelMakesTheFrequentCallsMostOften) {
  std::vector<CallRow> real = skewed_calls();
  Tvae m = Tvae::train(calls_table(real), small_options(40));
  EXPECT_EQ(m.training().epochs, 40);
  EXPECT_EQ(m.training().rows, real.size());
  std::vector<CallRow> gen = calls_from_table(m.sample(1000, 2));
  ASSERT_EQ(gen.size(), 1000u);
  std::map<std::pair<std::string, std::string>, int> pairs;
  for (const CallRow& r : gen) ++pairs[{r.caller, r.callee}];
  std::vector<std::pair<int, std::pair<std::string, std::string>>> v;
  for (auto& [p, k] : pairs) v.push_back({k, p});
  std::sort(v.rbegin(), v.rend());
  ASSERT_GE(v.size(), 2u);
  EXPECT_EQ(v[0].second, std::make_pair(std::string("USER"), std::string("A")));
  EXPECT_EQ(v[1].second, std::make_pair(std::string("A"), std::string("B")));
  // And the popular-call KL (eval/call_rows.h) is far below that of calls
  // spread uniformly over the same pairs.
  GraphSetProfile profile;
  add_calls(profile, real);
  std::vector<CallRow> uniform;
  for (int i = 0; i < 1000; ++i) {
    int k = i % 22;  // USER->A, A->B and the 20 rare pairs, equally often
    if (k == 0)
      uniform.push_back({"USER", "A", CallType::kHttp, 1, 0, 30});
    else if (k == 1)
      uniform.push_back({"A", "B", CallType::kRpc, 2, 1, 4});
    else
      uniform.push_back(
          {"R" + std::to_string(k - 2), "S" + std::to_string(k - 2), CallType::kDb, 3, 2, 1});
  }
  double kl_tvae = calls_report("tvae", profile, gen).popular.kl;
  double kl_uniform = calls_report("uniform", profile, uniform).popular.kl;
  // (TVAE takes the argmax of each discrete column, so the 20 rare pairs are
  // seldom made: most of its KL, about 1.0 here against 2.1 for uniform.)
  EXPECT_LT(kl_tvae, 0.7 * kl_uniform) << kl_tvae << " vs " << kl_uniform;
  EXPECT_NEAR(v[0].first / 1000.0, 0.6, 0.15);
  EXPECT_NEAR(v[1].first / 1000.0, 0.3, 0.15);
  // Response times: USER->A around 30..34 ms, far from A->B's 4..6.
  double sum = 0;
  int n = 0;
  for (const CallRow& r : gen)
    if (r.caller == "USER" && r.callee == "A") sum += static_cast<double>(r.response_ms), ++n;
  ASSERT_GT(n, 0);
  EXPECT_NEAR(sum / n, 32, 8);
}

TEST(Tvae, SeededRepeatabilityAndSaveLoadGiveTheSameSamples) {
  std::vector<CallRow> real = skewed_calls();
  Table t = calls_table(real);
  Tvae a = Tvae::train(t, small_options(3));
  Tvae b = Tvae::train(t, small_options(3));
  EXPECT_EQ(a.training().last_loss, b.training().last_loss);
  Table sa = a.sample(300, 4);
  EXPECT_EQ(calls_from_table(sa), calls_from_table(b.sample(300, 4)));
  EXPECT_EQ(sa.continuous, b.sample(300, 4).continuous);
  EXPECT_NE(calls_from_table(sa), calls_from_table(a.sample(300, 5)));

  testing::TempDir d;
  a.save(d.file("m"));
  EXPECT_TRUE(testing::exists(d.file("m/tvae.json")));
  EXPECT_TRUE(testing::exists(d.file("m/weights.pt")));
  EXPECT_FALSE(testing::exists(d.file("m/tvae.json.tmp")));
  Tvae l = Tvae::load(d.file("m"));
  EXPECT_EQ(l.transformer().width(), a.transformer().width());
  EXPECT_EQ(l.training().epochs, 3);
  Table sl = l.sample(300, 4);
  EXPECT_EQ(sl.discrete, sa.discrete);
  EXPECT_EQ(sl.continuous, sa.continuous);
  EXPECT_EQ(generate_tvae_calls(l, 300, 4), calls_from_table(sa));

  EXPECT_THROW(Tvae::load(d.file("nowhere")), InputError);
  testing::write_file(d.file("m/tvae.json"), "{\"format\": \"other\"}");
  EXPECT_THROW(Tvae::load(d.file("m")), InputError);
}

TEST(Tvae, TimeBudgetStopsTraining) {
  TvaeOptions o = small_options(1000000);
  o.minutes = 0.3 / 60;  // 0.3 s
  Tvae m = Tvae::train(calls_table(skewed_calls()), o);
  EXPECT_TRUE(m.training().budget_stop);
  EXPECT_LT(m.training().epochs, 1000000);
  EXPECT_GT(m.training().steps, 0);
  EXPECT_LT(m.training().seconds, 10);
  EXPECT_THROW(Tvae::train(Table{}, o), std::invalid_argument);
}

// The commands: train, generate a calls CSV, evaluate it as a calls-only set.
TEST(Tvae, CommandsTrainGenerateAndEvaluateCalls) {
  testing::TempDir d;
  std::string corpus;
  for (int i = 0; i < 30; ++i) {
    CallGraph g;
    g.service = "S_1";
    g.trace_id = "T_" + std::to_string(i);
    g.edges = {{RpcId(), "USER", "MS_1", CallType::kHttp, 0, 20 + i % 5},
               {*RpcId::parse("0.1"), "MS_1", i % 3 ? "MS_2" : "MS_3", CallType::kRpc, 1, 5}};
    corpus += graph_to_json(g) + "\n";
  }
  testing::write_file(d.file("c.jsonl"), corpus);
  auto r = testing::run_tracelm("baseline tvae train " + d.file("c.jsonl") + " -o " + d.file("m") +
                                " --epochs 2 --seed 3");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("trained TVAE on 60 calls"), std::string::npos) << r.out;
  r = testing::run_tracelm("baseline tvae generate " + d.file("m") + " -n 50 -q -o " +
                           d.file("calls.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<CallRow> rows = read_calls_csv(d.file("calls.csv"));
  EXPECT_EQ(rows.size(), 50u);
  r = testing::run_tracelm("baseline tvae generate " + d.file("m") + " --like " +
                           d.file("c.jsonl") + " -q -o " + d.file("like.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(read_calls_csv(d.file("like.csv")).size(), 60u);  // the corpus's edges
  r = testing::run_tracelm("evaluate --real " + d.file("c.jsonl") +
                           " --calls tvae=" + d.file("calls.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("popular calls KL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tvae: calls, not graphs (50 calls)"), std::string::npos) << r.out;
  r = testing::run_tracelm("evaluate --real " + d.file("c.jsonl") +
                           " --calls x=" + d.file("c.jsonl"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("c.jsonl:1: expected the header"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tracelm
