#include "downstream/firm.h"

#include <svm.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

#include "downstream/scores.h"

namespace tracelm::downstream {
namespace {

// Seeded Fisher-Yates (std::shuffle's draws are not specified by the standard).
template <class T>
void shuffle_seeded(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

void append_path(const CallGraph& g, const GraphIndex& ix, size_t n, std::vector<char>& seen,
                 std::vector<size_t>& path) {
  if (seen[n]) return;
  seen[n] = 1;
  path.push_back(n);
  const std::vector<size_t>& ch = ix.children[n];
  if (ch.empty()) return;
  size_t lrc = ch[0];
  for (size_t c : ch) {  // children are in id order: strict improvement keeps the smaller id
    const Edge &e = g.edges[c], &best = g.edges[lrc];
    if (e.finish_ms > best.finish_ms ||
        (e.finish_ms == best.finish_ms && e.start_ms > best.start_ms))
      lrc = c;
  }
  append_path(g, ix, lrc, seen, path);
  for (size_t c : ch)
    if (c != lrc && g.edges[c].finish_ms <= g.edges[lrc].start_ms)
      append_path(g, ix, c, seen, path);
}

}  // namespace

std::vector<size_t> critical_path(const CallGraph& g) {
  std::vector<size_t> path;
  if (g.edges.empty()) return path;
  GraphIndex ix = g.index();
  if (ix.roots.empty()) return path;
  size_t root = ix.roots[0];
  for (size_t r : ix.roots)
    if (g.edges[r].finish_ms > g.edges[root].finish_ms) root = r;
  std::vector<char> seen(g.edges.size(), 0);
  append_path(g, ix, root, seen, path);
  return path;
}

CpLatencies cp_latencies(const CallGraph& g) {
  CpLatencies r;
  r.total = static_cast<double>(g.latency());
  std::map<std::string, double> by_ms;
  for (size_t e : critical_path(g))
    by_ms[g.edges[e].callee] += static_cast<double>(g.edges[e].duration_ms());
  r.components.assign(by_ms.begin(), by_ms.end());
  return r;
}

FirmThresholds firm_thresholds(const std::vector<CpLatencies>& pool, size_t min_samples, double q) {
  std::map<std::string, std::vector<double>> values;
  for (const CpLatencies& g : pool)
    for (const auto& [m, t] : g.components) values[m].push_back(t);
  FirmThresholds th;
  for (auto& [m, v] : values)
    if (v.size() >= min_samples) th[m] = percentile(std::move(v), q);
  return th;
}

std::vector<FirmSample> firm_samples(const std::vector<CpLatencies>& graphs,
                                     const FirmThresholds& thresholds, const FirmWindowOptions& opt,
                                     uint64_t seed) {
  std::vector<FirmSample> out;
  if (graphs.empty() || opt.window == 0) return out;
  size_t w = std::min(opt.window, graphs.size());
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(graphs.size());
  for (size_t k = 0; k < opt.windows; ++k) {
    std::iota(order.begin(), order.end(), 0);
    // Partial Fisher-Yates: the first w positions are a uniform draw.
    for (size_t i = 0; i < w; ++i) {
      size_t j = i + static_cast<size_t>(rng() % (order.size() - i));
      std::swap(order[i], order[j]);
    }
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> per_ms;  // T_m, T_CP
    for (size_t i = 0; i < w; ++i) {
      const CpLatencies& g = graphs[order[i]];
      for (const auto& [m, t] : g.components) {
        auto& v = per_ms[m];
        v.first.push_back(t);
        v.second.push_back(g.total);
      }
    }
    for (auto& [m, v] : per_ms) {
      auto th = thresholds.find(m);
      if (th == thresholds.end() || v.first.size() < opt.min_graphs) continue;
      FirmSample s;
      s.microservice = m;
      double ri = pearson(v.first, v.second);
      double p50 = percentile(v.first, 0.5);
      double ci = percentile(v.first, 0.99) / (p50 > 0 ? p50 : 1.0);
      s.x = {ri, ci};
      s.label = *std::max_element(v.first.begin(), v.first.end()) >= th->second ? 1 : 0;
      out.push_back(std::move(s));
    }
  }
  return out;
}

void LinearSvm::fit(const std::vector<std::vector<double>>& x, const std::vector<int>& y,
                    uint64_t seed) {
  if (x.size() != y.size()) throw std::invalid_argument("LinearSvm::fit: x and y differ in length");
  if (x.empty()) throw std::invalid_argument("LinearSvm::fit: no training samples");
  size_t d = x[0].size();
  w_.assign(d, 0.0);
  b_ = 0;
  constant_ = -1;
  bool has[2] = {false, false};
  for (int v : y) has[v != 0] = true;
  if (!has[0] || !has[1]) {
    constant_ = has[1] ? 1 : 0;
    return;
  }
  // scikit-learn's "optimal" schedule: eta = 1 / (alpha * (t0 + t - 1)),
  // t0 = 1 / (eta0 * alpha), eta0 = sqrt(1 / sqrt(alpha)) for the hinge loss.
  double typw = std::sqrt(1.0 / std::sqrt(alpha));
  double t0 = 1.0 / (typw * alpha);
  double t = 1;
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  size_t bs = std::min(batch, x.size());
  for (int pass = 0; pass < passes; ++pass) {
    for (size_t start = 0; start < x.size(); start += bs) {
      // One partial_fit call: one epoch over this mini-batch, shuffled.
      std::vector<size_t> mb(
          order.begin() + static_cast<std::ptrdiff_t>(start),
          order.begin() + static_cast<std::ptrdiff_t>(std::min(start + bs, x.size())));
      shuffle_seeded(mb, rng);
      for (size_t i : mb) {
        if (x[i].size() != d) throw std::invalid_argument("LinearSvm::fit: ragged features");
        double yy = y[i] ? 1.0 : -1.0;
        double p = b_;
        for (size_t k = 0; k < d; ++k) p += w_[k] * x[i][k];
        double eta = 1.0 / (alpha * (t0 + t - 1));
        double scale = std::max(0.0, 1.0 - eta * alpha);
        for (double& wk : w_) wk *= scale;
        if (yy * p <= 1.0) {
          for (size_t k = 0; k < d; ++k) w_[k] += eta * yy * x[i][k];
          b_ += eta * yy;
        }
        t += 1;
      }
    }
    shuffle_seeded(order, rng);
  }
}

double LinearSvm::decision(const std::vector<double>& x) const {
  if (constant_ >= 0) return constant_ ? 1.0 : -1.0;
  double p = b_;
  for (size_t k = 0; k < w_.size() && k < x.size(); ++k) p += w_[k] * x[k];
  return p;
}

struct RbfSvm::Impl {
  std::vector<svm_node> nodes;  // the training features; the model points into them
  std::vector<svm_node*> rows;
  std::vector<double> labels;
  svm_problem prob{};
  svm_parameter param{};
  svm_model* model = nullptr;
  ~Impl() {
    if (model) svm_free_and_destroy_model(&model);
    svm_destroy_param(&param);
  }
};

RbfSvm::RbfSvm() = default;
RbfSvm::~RbfSvm() = default;

namespace {
void silent_print(const char*) {}
}  // namespace

void RbfSvm::fit(const std::vector<std::vector<double>>& x, const std::vector<int>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("RbfSvm::fit: x and y differ in length");
  if (x.empty()) throw std::invalid_argument("RbfSvm::fit: no training samples");
  impl_ = std::make_unique<Impl>();
  constant_ = -1;
  bool has[2] = {false, false};
  for (int v : y) has[v != 0] = true;
  if (!has[0] || !has[1]) {
    constant_ = has[1] ? 1 : 0;
    return;
  }
  size_t d = x[0].size();
  double sum = 0, sq = 0, n = 0;
  for (const auto& r : x) {
    if (r.size() != d) throw std::invalid_argument("RbfSvm::fit: ragged features");
    for (double v : r) {
      sum += v;
      sq += v * v;
      n += 1;
    }
  }
  double var = sq / n - (sum / n) * (sum / n);
  gamma_ = var > 0 ? 1.0 / (static_cast<double>(d) * var) : 1.0;
  Impl& m = *impl_;
  m.nodes.reserve(x.size() * (d + 1));
  for (const auto& r : x) {
    for (size_t k = 0; k < d; ++k) m.nodes.push_back({static_cast<int>(k + 1), r[k]});
    m.nodes.push_back({-1, 0});
  }
  for (size_t i = 0; i < x.size(); ++i) {
    m.rows.push_back(&m.nodes[i * (d + 1)]);
    m.labels.push_back(y[i] ? 1.0 : 0.0);
  }
  m.prob.l = static_cast<int>(x.size());
  m.prob.y = m.labels.data();
  m.prob.x = m.rows.data();
  m.param.svm_type = C_SVC;
  m.param.kernel_type = RBF;
  m.param.gamma = gamma_;
  m.param.C = 1;
  m.param.cache_size = 100;
  m.param.eps = 1e-3;
  m.param.shrinking = 1;
  m.param.probability = 0;
  m.param.nr_weight = 0;
  svm_set_print_string_function(&silent_print);
  if (const char* err = svm_check_parameter(&m.prob, &m.param))
    throw std::runtime_error(std::string("libsvm: ") + err);
  m.model = svm_train(&m.prob, &m.param);
}

int RbfSvm::predict(const std::vector<double>& x) const {
  if (constant_ >= 0) return constant_;
  if (!impl_ || !impl_->model) throw std::logic_error("RbfSvm::predict before fit");
  std::vector<svm_node> q;
  for (size_t k = 0; k < x.size(); ++k) q.push_back({static_cast<int>(k + 1), x[k]});
  q.push_back({-1, 0});
  return svm_predict(impl_->model, q.data()) > 0.5 ? 1 : 0;
}

}  // namespace tracelm::downstream
