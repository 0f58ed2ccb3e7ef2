// Critical-component extraction as in FIRM (OSDI'20), the first downstream
// task of docs/downstream.md: critical paths of call graphs, FIRM's two
// features per microservice on the path, labels from 99th-percentile
// latencies, and the two classifiers (FIRM's default linear SVM trained by
// SGD, and an RBF SVM from libsvm).
//
// Contract:
//  - critical_path(g) runs FIRM's LONGESTPATH on the call tree of a canonical
//    graph (nodes are edges, children by rpc id): start at the root edge (the
//    top-level edge with the latest finish when there are several); the last
//    returned child lrc of a node is its child with the latest finish_ms (ties:
//    the larger start_ms, then the smaller rpc id); the path is the node, then
//    the path of lrc, then the paths of the children c with
//    c.finish_ms <= lrc.start_ms (children that happened before lrc), in id
//    order. Each edge appears at most once. Empty for an empty graph.
//  - cp_latencies(g): the end-to-end latency T_CP = g.latency() and, for each
//    microservice m that is the callee of a critical-path edge, T_m = the sum
//    of the durations of the critical-path edges calling m (inclusive response
//    time, as FIRM uses span durations); components sorted by name.
//  - firm_thresholds(pool): Q99_m = nearest-rank P99 of T_m over the graphs of
//    `pool` where m is on the critical path, for m seen at least min_samples
//    times; other microservices have no threshold.
//  - firm_samples(): one sample per (window, microservice). A window is
//    `window` graphs drawn without replacement from `graphs` (each window
//    drawn independently; seeded). For each m on the critical path of at least
//    min_graphs graphs of the window and with a threshold:
//    RI = Pearson(T_m, T_CP) over those graphs (0 at zero variance),
//    CI = P99(T_m) / P50(T_m) (P50 of 0 counts as 1 ms),
//    label = 1 iff max T_m >= Q99_m. Deterministic for a seed.
//  - LinearSvm::fit is scikit-learn's SGDClassifier(loss="hinge",
//    penalty="l2", alpha=1e-4, learning_rate="optimal") trained as FIRM's
//    minibatch_svm.py does: `passes` passes, each over mini-batches of
//    min(batch, n) samples in an order reshuffled with the seed; labels {0,1}
//    map to {-1,+1}; no feature scaling. Deterministic for a seed.
//  - RbfSvm::fit is libsvm's C-SVC with an RBF kernel, C = 1 and
//    gamma = 1 / (d * Var(all feature values)) (scikit-learn's "scale"; 1 when
//    the variance is 0). libsvm's own output is silenced.
//  - Both classifiers trained on one class only predict that class.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/call_graph.h"

namespace tracelm::downstream {

std::vector<size_t> critical_path(const CallGraph& g);

struct CpLatencies {
  double total = 0;                                        // T_CP, ms
  std::vector<std::pair<std::string, double>> components;  // (m, T_m), sorted by m
};
CpLatencies cp_latencies(const CallGraph& g);

using FirmThresholds = std::map<std::string, double>;  // microservice -> Q99
FirmThresholds firm_thresholds(const std::vector<CpLatencies>& pool, size_t min_samples = 10,
                               double q = 0.99);

struct FirmSample {
  std::string microservice;
  std::vector<double> x;  // {RI, CI}
  int label = 0;
};

struct FirmWindowOptions {
  size_t window = 20;     // graphs per window
  size_t windows = 200;   // windows drawn
  size_t min_graphs = 3;  // m must be on the critical path of this many graphs of the window
};
std::vector<FirmSample> firm_samples(const std::vector<CpLatencies>& graphs,
                                     const FirmThresholds& thresholds, const FirmWindowOptions& opt,
                                     uint64_t seed);

class LinearSvm {
 public:
  double alpha = 1e-4;
  int passes = 19;
  size_t batch = 1000;

  void fit(const std::vector<std::vector<double>>& x, const std::vector<int>& y, uint64_t seed);
  double decision(const std::vector<double>& x) const;  // w.x + b
  int predict(const std::vector<double>& x) const { return decision(x) > 0 ? 1 : 0; }
  const std::vector<double>& weights() const { return w_; }
  double bias() const { return b_; }

 private:
  std::vector<double> w_;
  double b_ = 0;
  int constant_ = -1;  // the class when trained on one class only
};

class RbfSvm {
 public:
  RbfSvm();
  ~RbfSvm();
  RbfSvm(const RbfSvm&) = delete;
  RbfSvm& operator=(const RbfSvm&) = delete;

  void fit(const std::vector<std::vector<double>>& x, const std::vector<int>& y);
  int predict(const std::vector<double>& x) const;
  double gamma() const { return gamma_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  double gamma_ = 1;
  int constant_ = -1;
};

}  // namespace tracelm::downstream
