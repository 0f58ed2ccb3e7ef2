#include "downstream/anomaly.h"

#include <fmt/format.h>

#include <map>
#include <stdexcept>

namespace tracelm::downstream {

std::unordered_map<std::string, double> node_thresholds(const std::vector<VaeGraph>& pool,
                                                        size_t min_samples) {
  std::map<std::string, std::vector<double>> by_type;
  for (const VaeGraph& g : pool)
    for (size_t k = 0; k < g.size(); ++k) by_type[g.type[k]].push_back(g.latency[k]);
  std::unordered_map<std::string, double> q;
  for (auto& [t, v] : by_type)
    if (v.size() >= min_samples) q[t] = percentile(std::move(v), 0.99);
  return q;
}

bool rule_anomalous(const VaeGraph& g, const std::unordered_map<std::string, double>& q99) {
  for (size_t k = 0; k < g.size(); ++k) {
    auto it = q99.find(g.type[k]);
    if (it != q99.end() && g.latency[k] >= it->second) return true;
  }
  return false;
}

bool field_anomalous(const std::string& label) { return !is_normal_label(label); }

TaskSpec anomaly_task(const AnomalyOptions& opt, const std::vector<LabeledGraph>& real) {
  if (opt.labels != "auto" && opt.labels != "rule" && opt.labels != "field")
    throw std::invalid_argument("anomaly: --labels must be auto, rule or field");
  if (opt.size != "small" && opt.size != "published")
    throw std::invalid_argument("anomaly: --size must be small or published");
  bool field = opt.labels == "field";
  if (opt.labels == "auto")
    for (const LabeledGraph& g : real)
      if (!g.label.empty()) {
        field = true;
        break;
      }
  VaeConfig cfg = opt.size == "published" ? VaeConfig::published() : VaeConfig::small();
  if (opt.epochs > 0) {
    cfg.latency_epochs = std::max(1, opt.epochs / 3);
    cfg.epochs = opt.epochs - cfg.latency_epochs;
  }
  TaskSpec t;
  t.task = "anomaly";
  t.model = fmt::format(
      "graph VAE ({}: embedding {}, {} graph layers of {}, z {} + z2 {}, {}+{} epochs), NLL by "
      "importance sampling (K = {})",
      opt.size, cfg.embed, cfg.layers, cfg.hidden, cfg.z, cfg.z2, cfg.epochs, cfg.latency_epochs,
      opt.is_samples);
  t.labels = field ? "the corpus' label field (anomalous unless \"normal\")"
                   : "anomalous iff a call's latency reaches its (callee, type) P99 over the real "
                     "training pool";
  t.metrics = {
      {"roc_auc", roc_auc}, {"average_precision", average_precision}, {"best_f1", best_f1}};
  t.tolerance = 0.02;
  t.display_scale = 1;
  t.run = [opt, cfg, field](const GraphRefs& train, const GraphRefs& pool, const GraphRefs& test,
                            uint64_t seed) {
    TaskRun r;
    auto convert = [](const GraphRefs& gs, std::vector<VaeGraph>* out,
                      std::vector<const LabeledGraph*>* kept) {
      size_t dropped = 0;
      for (const LabeledGraph* g : gs) {
        auto v = to_vae_graph(g->graph, 32);
        if (!v) {
          ++dropped;
          continue;
        }
        out->push_back(std::move(*v));
        if (kept) kept->push_back(g);
      }
      return dropped;
    };
    std::vector<VaeGraph> pool_v, train_v, test_v;
    std::vector<const LabeledGraph*> train_k, test_k;
    convert(pool, &pool_v, nullptr);
    size_t drop_train = convert(train, &train_v, &train_k);
    size_t drop_test = convert(test, &test_v, &test_k);
    std::unordered_map<std::string, double> q99;
    if (!field) q99 = node_thresholds(pool_v, opt.min_threshold_samples);
    auto anomalous = [&](const VaeGraph& v, const LabeledGraph* g) {
      return field ? field_anomalous(g->label) : rule_anomalous(v, q99);
    };
    for (size_t i = 0; i < test_v.size(); ++i) r.y.push_back(anomalous(test_v[i], test_k[i]));
    if (field)  // ROC AUC per fault type as well
      for (const LabeledGraph* g : test_k) r.kind.push_back(g->label.empty() ? "normal" : g->label);
    std::vector<VaeGraph> normal;
    for (size_t i = 0; i < train_v.size(); ++i)
      if (!anomalous(train_v[i], train_k[i])) normal.push_back(train_v[i]);
    r.train_samples = normal.size();
    r.train_positive_rate = train_v.empty() ? 0
                                            : 1.0 - static_cast<double>(normal.size()) /
                                                        static_cast<double>(train_v.size());
    r.note = fmt::format("{} train / {} test graphs outside 2..32 nodes left out", drop_train,
                         drop_test);
    if (normal.empty()) {
      r.note += "; no normal training graph: every test graph scores 0";
      r.score.assign(r.y.size(), 0.0);
      return r;
    }
    GraphVae vae(cfg);
    vae.train(normal, seed);
    r.score = vae.nll(test_v, opt.is_samples, seed ^ 0x5C0EULL);
    return r;
  };
  return t;
}

}  // namespace tracelm::downstream
