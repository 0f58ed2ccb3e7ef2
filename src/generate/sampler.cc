#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace tracelm {

Candidates Candidates::from_logits(const float* logits, size_t n) {
  Candidates c;
  c.ids.resize(n);
  c.logits.assign(logits, logits + n);
  std::iota(c.ids.begin(), c.ids.end(), 0);
  return c;
}

void Candidates::keep(const std::vector<size_t>& idx) {
  std::vector<int32_t> i2;
  std::vector<float> l2;
  i2.reserve(idx.size());
  l2.reserve(idx.size());
  for (size_t k : idx) {
    i2.push_back(ids[k]);
    l2.push_back(logits[k]);
  }
  ids.swap(i2);
  logits.swap(l2);
}

namespace {

// Positions sorted by logit, descending (ties: smaller id first), the k
// first only.
std::vector<size_t> by_logit(const Candidates& c, size_t k) {
  auto better = [&](size_t a, size_t b) {
    return c.logits[a] != c.logits[b] ? c.logits[a] > c.logits[b] : c.ids[a] < c.ids[b];
  };
  k = std::min(k, c.size());
  std::vector<size_t> idx;
  idx.reserve(k + 1);
  if (k < c.size()) {
    // One pass with a heap of the k best seen (its top: the worst of them):
    // most candidates lose one comparison against the top. O(n + k log k ·
    // replacements), against nth_element's O(n) with indirect compares and
    // swaps over the whole vocabulary.
    for (size_t i = 0; i < c.size(); ++i) {
      if (idx.size() < k) {
        idx.push_back(i);
        std::push_heap(idx.begin(), idx.end(), better);
      } else if (better(i, idx.front())) {
        std::pop_heap(idx.begin(), idx.end(), better);
        idx.back() = i;
        std::push_heap(idx.begin(), idx.end(), better);
      }
    }
  } else {
    idx.resize(c.size());
    std::iota(idx.begin(), idx.end(), 0);
  }
  std::sort(idx.begin(), idx.end(), better);
  return idx;
}

class Temperature : public Sampler {
 public:
  explicit Temperature(double t) : t_(t) {
    if (!(t > 0)) throw std::invalid_argument("temperature must be > 0 (use greedy for 0)");
  }
  void apply(Candidates& c) override {
    for (float& l : c.logits) l = static_cast<float>(l / t_);
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<Temperature>(t_); }
  std::string name() const override { return "temperature(" + std::to_string(t_) + ")"; }

 private:
  double t_;
};

class TopK : public Sampler {
 public:
  explicit TopK(int64_t k) : k_(k) {
    if (k < 1) throw std::invalid_argument("top-k must be >= 1");
  }
  void apply(Candidates& c) override {
    if (static_cast<size_t>(k_) < c.size()) c.keep(by_logit(c, static_cast<size_t>(k_)));
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<TopK>(k_); }
  std::string name() const override { return "top_k(" + std::to_string(k_) + ")"; }

 private:
  int64_t k_;
};

class TopP : public Sampler {
 public:
  explicit TopP(double p) : p_(p) {
    if (!(p > 0 && p <= 1)) throw std::invalid_argument("top-p must be in (0, 1]");
  }
  void apply(Candidates& c) override {
    if (p_ >= 1 || c.size() <= 1) return;
    std::vector<size_t> idx = by_logit(c, c.size());
    double mx = c.logits[idx[0]], z = 0;
    for (size_t i : idx) z += std::exp(c.logits[i] - mx);
    double cum = 0;
    size_t n = 0;
    while (n < idx.size()) {
      cum += std::exp(c.logits[idx[n]] - mx) / z;
      ++n;
      if (cum >= p_) break;
    }
    idx.resize(n);
    c.keep(idx);
  }
  std::unique_ptr<Sampler> clone() const override { return std::make_unique<TopP>(p_); }
  std::string name() const override { return "top_p(" + std::to_string(p_) + ")"; }

 private:
  double p_;
};

}  // namespace

std::unique_ptr<Sampler> temperature_sampler(double t) { return std::make_unique<Temperature>(t); }
std::unique_ptr<Sampler> top_k_sampler(int64_t k) { return std::make_unique<TopK>(k); }
std::unique_ptr<Sampler> top_p_sampler(double p) { return std::make_unique<TopP>(p); }

std::unique_ptr<SamplerChain> SamplerChain::from_params(const SamplingParams& p) {
  bool greedy = p.temperature <= 0;
  auto c = std::make_unique<SamplerChain>(p.seed, greedy);
  if (!greedy) {
    if (p.top_k > 0) c->add(top_k_sampler(p.top_k));
    if (p.top_p < 1) c->add(top_p_sampler(p.top_p));
    c->add(temperature_sampler(p.temperature));
  }
  return c;
}

void SamplerChain::apply(Candidates& c) {
  for (auto& s : chain_) {
    if (c.size() == 0) return;
    s->apply(c);
  }
}

void SamplerChain::accept(int32_t token) {
  for (auto& s : chain_) s->accept(token);
}

void SamplerChain::reset() {
  for (auto& s : chain_) s->reset();
  rng_ = Rng(seed_);
}

std::unique_ptr<Sampler> SamplerChain::clone() const {
  auto c = std::make_unique<SamplerChain>(seed_, greedy_);
  for (auto& s : chain_) c->add(s->clone());
  if (grammar_) c->grammar_ = grammar_->clone();
  c->rng_ = rng_;
  return c;
}

std::string SamplerChain::name() const {
  std::string n = greedy_ ? "greedy" : "dist";
  for (auto& s : chain_) n = s->name() + " -> " + n;
  return n;
}

int32_t SamplerChain::pick(Candidates& c) {
  int32_t token = draw(c);
  if (token >= 0) accept(token);
  return token;
}

int32_t SamplerChain::sample(const float* logits, size_t n, bool* redrawn) {
  Candidates c = Candidates::from_logits(logits, n);
  int32_t token = draw(c);
  if (grammar_) {
    Candidates one;
    if (token >= 0) {
      one.ids.push_back(token);
      one.logits.push_back(logits[token]);
      grammar_->apply(one);
    }
    if (one.size() == 0) {  // rejected: grammar first, then the chain
      if (redrawn) *redrawn = true;
      Candidates all = Candidates::from_logits(logits, n);
      grammar_->apply(all);
      if (all.size() == 0) return -1;
      token = draw(all);
      if (token < 0) return -1;
    }
    grammar_->accept(token);
  }
  if (token >= 0) accept(token);
  return token;
}

int32_t SamplerChain::draw(Candidates& c) {
  apply(c);
  if (c.size() == 0) return -1;
  size_t best = 0;
  for (size_t i = 1; i < c.size(); ++i)
    if (c.logits[i] > c.logits[best] || (c.logits[i] == c.logits[best] && c.ids[i] < c.ids[best]))
      best = i;
  int32_t token = c.ids[best];
  if (!greedy_) {
    // Softmax draw, in a fixed candidate order (ids ascending) so that the
    // result does not depend on how earlier samplers ordered them.
    std::vector<size_t> order(c.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c.ids[a] < c.ids[b]; });
    double mx = c.logits[best], z = 0;
    for (size_t i : order) z += std::exp(static_cast<double>(c.logits[i]) - mx);
    double u = rng_.uniform() * z, acc = 0;
    token = c.ids[order.back()];
    for (size_t i : order) {
      acc += std::exp(static_cast<double>(c.logits[i]) - mx);
      if (u < acc) {
        token = c.ids[i];
        break;
      }
    }
  }
  return token;
}

}  // namespace tracelm
