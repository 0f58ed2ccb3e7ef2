#include "downstream/critical.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace tracelm::downstream {
namespace {

std::vector<CpLatencies> cps(const GraphRefs& gs) {
  std::vector<CpLatencies> out;
  out.reserve(gs.size());
  for (const LabeledGraph* g : gs) out.push_back(cp_latencies(g->graph));
  return out;
}

// Z-scores x in place with the statistics of `train`.
void standardize(const std::vector<std::vector<double>>& train,
                 std::vector<std::vector<double>>* x) {
  if (train.empty()) return;
  size_t d = train[0].size();
  for (size_t k = 0; k < d; ++k) {
    std::vector<double> col;
    for (const auto& r : train) col.push_back(r[k]);
    MeanSd m = mean_sd(col);
    double sd = m.sd > 0 ? m.sd : 1.0;
    for (auto& r : *x) r[k] = (r[k] - m.mean) / sd;
  }
}

FirmWindowOptions clamp(FirmWindowOptions o, size_t pool) {
  o.window = std::min(o.window, std::max(o.min_graphs, pool / 2));
  return o;
}

}  // namespace

TaskSpec critical_task(const CriticalOptions& opt) {
  if (opt.svm != "linear" && opt.svm != "rbf")
    throw std::invalid_argument("critical: --svm must be linear or rbf, not " + opt.svm);
  TaskSpec t;
  t.task = "critical";
  t.model = opt.svm == "linear" ? "linear SVM (hinge loss, L2, SGD; FIRM's default)"
                                : "RBF SVM (libsvm C-SVC, C = 1, gamma = 1/(2 Var))";
  if (opt.standardize) t.model += ", standardized features";
  t.labels = fmt::format(
      "(window, microservice) samples of {} train / {} test windows of up to {} graphs; label 1 "
      "iff the microservice's critical-path latency reached its P99 over the real training pool",
      opt.train.windows, opt.test.windows, opt.train.window);
  t.metrics = {
      {"accuracy",
       [](const std::vector<double>& s, const std::vector<int>& y) {
         std::vector<int> p(s.begin(), s.end());
         return accuracy(p, y);
       }},
      {"balanced_accuracy",
       [](const std::vector<double>& s, const std::vector<int>& y) {
         std::vector<int> p(s.begin(), s.end());
         return balanced_accuracy(p, y);
       }},
  };
  t.tolerance = 0.015;
  t.display_scale = 100;
  t.run = [opt](const GraphRefs& train, const GraphRefs& pool, const GraphRefs& test,
                uint64_t seed) {
    TaskRun r;
    FirmThresholds th = firm_thresholds(cps(pool), opt.min_threshold_samples);
    std::vector<CpLatencies> train_cp = cps(train), test_cp = cps(test);
    std::vector<FirmSample> tr =
        firm_samples(train_cp, th, clamp(opt.train, train_cp.size()), seed);
    std::vector<FirmSample> te =
        firm_samples(test_cp, th, clamp(opt.test, test_cp.size()), seed ^ 0x7E57ULL);
    for (const FirmSample& s : te) r.y.push_back(s.label);
    r.train_samples = tr.size();
    if (tr.empty()) {
      r.note = "no training sample (no microservice with a threshold on the critical path)";
      r.score.assign(te.size(), 0.0);
      return r;
    }
    std::vector<std::vector<double>> x;
    std::vector<int> y;
    for (const FirmSample& s : tr) {
      x.push_back(s.x);
      y.push_back(s.label);
    }
    r.train_positive_rate = positive_rate(y);
    std::vector<std::vector<double>> xt;
    for (const FirmSample& s : te) xt.push_back(s.x);
    if (opt.standardize) {
      std::vector<std::vector<double>> raw = x;
      standardize(raw, &xt);
      standardize(raw, &x);
    }
    if (opt.svm == "linear") {
      LinearSvm m;
      m.fit(x, y, seed);
      for (const auto& v : xt) r.score.push_back(m.predict(v));
    } else {
      RbfSvm m;
      m.fit(x, y);
      for (const auto& v : xt) r.score.push_back(m.predict(v));
    }
    return r;
  };
  return t;
}

}  // namespace tracelm::downstream
