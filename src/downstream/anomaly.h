// The anomaly-detection task of docs/downstream.md as a TaskSpec for
// run_experiment(): a TraceVAE-style graph VAE (vae.h) trained on the normal
// graphs of a training set, scoring the real test graphs by negative
// log-likelihood.
//
// Contract:
//  - Graphs become VAE graphs with to_vae_graph (2..32 nodes); the others are
//    left out of training and testing, and counted in the run's note.
//  - Labels, "rule" (the paper's 99th percentile): Q99_k = nearest-rank P99
//    of the latency of nodes of type k over the real training pool (types
//    seen at least 10 times); a graph is anomalous iff one of its nodes has
//    latency >= Q99_k. "field": anomalous iff the graph's corpus label is
//    neither empty nor "normal" (e.g. graphs labelled from fault-injection
//    windows). "auto" picks field when any real graph has a label, else rule.
//  - The model trains on the training set's graphs that the same rule calls
//    normal (TraceVAE trains on normal traffic); a synthetic set without
//    labels counts as normal under "field".
//  - Metrics: ROC AUC (primary, the paper's), average precision (what
//    TraceVAE's code reports as "auc"), best F1. Tolerance 0.02 AUC. Under
//    "field" the ROC AUC is also given per label (the normal test graphs
//    against the test graphs of one fault type: TaskRun::kind).
//  - Deterministic for a seed and thread count.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "downstream/protocol.h"
#include "downstream/vae.h"

namespace tracelm::downstream {

struct AnomalyOptions {
  std::string labels = "auto";  // auto, rule, field
  std::string size = "small";   // small, published (VaeConfig)
  int epochs = 0;               // 0: the size's default
  int is_samples = 10;          // importance samples per NLL
  size_t min_threshold_samples = 10;
};

// Per node type Q99 over the pool's VAE graphs (rule above).
std::unordered_map<std::string, double> node_thresholds(const std::vector<VaeGraph>& pool,
                                                        size_t min_samples = 10);
bool rule_anomalous(const VaeGraph& g, const std::unordered_map<std::string, double>& q99);
bool field_anomalous(const std::string& label);

TaskSpec anomaly_task(const AnomalyOptions& opt, const std::vector<LabeledGraph>& real);

}  // namespace tracelm::downstream
