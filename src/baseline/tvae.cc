#include "baseline/tvae.h"

#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include "core/validate.h"
#include "corpus/graph_source.h"
#include "io/atomic_file.h"
#include "io/input_error.h"
#include "util/progress.h"

namespace tracelm {

// ---------------------------------------------------------------- the table

size_t Table::rows() const {
  if (!discrete.empty()) return discrete[0].size();
  if (!continuous.empty()) return continuous[0].size();
  return 0;
}

Table calls_table(const std::vector<CallRow>& calls) {
  Table t;
  t.discrete_names = {"caller", "callee", "type", "depth"};
  t.continuous_names = {"start_ms", "response_ms"};
  t.discrete.assign(4, {});
  t.continuous.assign(2, {});
  for (auto& c : t.discrete) c.reserve(calls.size());
  for (auto& c : t.continuous) c.reserve(calls.size());
  for (const CallRow& r : calls) {
    t.discrete[0].push_back(r.caller);
    t.discrete[1].push_back(r.callee);
    t.discrete[2].push_back(std::string(call_type_name(r.type)));
    t.discrete[3].push_back(std::to_string(r.depth));
    t.continuous[0].push_back(static_cast<double>(r.start_ms));
    t.continuous[1].push_back(static_cast<double>(r.response_ms));
  }
  return t;
}

std::vector<CallRow> calls_from_table(const Table& t) {
  if (t.discrete.size() != 4 || t.continuous.size() != 2)
    throw std::runtime_error("calls_from_table: expected the columns of calls_table()");
  std::vector<CallRow> out(t.rows());
  auto ms = [](double x) {
    return std::isfinite(x) ? std::max<int64_t>(0, std::llround(x)) : int64_t{0};
  };
  for (size_t i = 0; i < out.size(); ++i) {
    CallRow& r = out[i];
    r.caller = t.discrete[0][i];
    r.callee = t.discrete[1][i];
    std::optional<CallType> ty = parse_call_type(t.discrete[2][i]);
    if (!ty) throw std::runtime_error("calls_from_table: type '" + t.discrete[2][i] + "'");
    r.type = *ty;
    const std::string& d = t.discrete[3][i];
    auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), r.depth);
    if (ec != std::errc() || p != d.data() + d.size() || r.depth < 1)
      throw std::runtime_error("calls_from_table: depth '" + d + "'");
    r.start_ms = ms(t.continuous[0][i]);
    r.response_ms = ms(t.continuous[1][i]);
  }
  return out;
}

// ---------------------------------------------------------------- GMM

namespace {

constexpr double kLog2Pi = 1.8378770664093453;

double log_normal(double x, double mu, double sd) {
  double z = (x - mu) / sd;
  return -0.5 * (z * z + kLog2Pi) - std::log(sd);
}

double normal_draw(Rng& rng) {  // Box-Muller (portable)
  double u1 = rng.uniform(), u2 = rng.uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
}

struct EmFit {
  Gmm gmm;
  double loglik = -std::numeric_limits<double>::infinity();
};

// EM for k modes, the means started by k-means++ seeding (each next mean a
// value drawn with probability proportional to its squared distance to the
// nearest mean so far: never a mean twice while there are other values).
EmFit em(const std::vector<double>& x, int k, double floor, int iterations, uint64_t seed) {
  const size_t n = x.size();
  double mean = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(n);
  double var = 0;
  for (double v : x) var += (v - mean) * (v - mean);
  double sd = std::max(std::sqrt(var / static_cast<double>(n)), floor);
  Rng rng(seed);
  Gmm g;
  g.mean.push_back(x[static_cast<size_t>(rng.range(0, static_cast<int64_t>(n) - 1))]);
  std::vector<double> d2(n);
  while (static_cast<int>(g.mean.size()) < k) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (double m : g.mean) best = std::min(best, (x[i] - m) * (x[i] - m));
      total += (d2[i] = best);
    }
    if (total <= 0) break;  // fewer distinct values than k
    double u = rng.uniform() * total;
    size_t i = 0;
    while (i + 1 < n && u >= d2[i]) u -= d2[i++];
    g.mean.push_back(x[i]);
  }
  k = static_cast<int>(g.mean.size());
  g.weight.assign(static_cast<size_t>(k), 1.0 / k);
  g.sd.assign(static_cast<size_t>(k), std::max(sd / k, floor));
  std::vector<double> resp(n * static_cast<size_t>(k));
  double prev = -std::numeric_limits<double>::infinity(), ll = prev;
  for (int it = 0; it < iterations; ++it) {
    // E step (log-sum-exp per value).
    ll = 0;
    for (size_t i = 0; i < n; ++i) {
      double* r = &resp[i * static_cast<size_t>(k)];
      double mx = -std::numeric_limits<double>::infinity();
      for (int j = 0; j < k; ++j) {
        r[j] = g.weight[j] > 0 ? std::log(g.weight[j]) + log_normal(x[i], g.mean[j], g.sd[j])
                               : -std::numeric_limits<double>::infinity();
        mx = std::max(mx, r[j]);
      }
      double s = 0;
      for (int j = 0; j < k; ++j) s += (r[j] = std::exp(r[j] - mx));
      for (int j = 0; j < k; ++j) r[j] /= s;
      ll += mx + std::log(s);
    }
    // M step.
    for (int j = 0; j < k; ++j) {
      double nj = 0, m = 0;
      for (size_t i = 0; i < n; ++i) {
        nj += resp[i * k + j];
        m += resp[i * k + j] * x[i];
      }
      if (nj < 1e-12) {
        g.weight[j] = 0;
        continue;
      }
      m /= nj;
      double v = 0;
      for (size_t i = 0; i < n; ++i) v += resp[i * k + j] * (x[i] - m) * (x[i] - m);
      g.weight[j] = nj / static_cast<double>(n);
      g.mean[j] = m;
      g.sd[j] = std::max(std::sqrt(v / nj), floor);
    }
    if (ll - prev < 1e-7 * static_cast<double>(n)) break;
    prev = ll;
  }
  return {g, ll};
}

}  // namespace

Gmm fit_gmm(const std::vector<double>& values, const GmmOptions& opt, uint64_t seed) {
  Gmm g;
  if (values.empty()) {
    g.weight = {1};
    g.mean = {0};
    g.sd = {1};
    return g;
  }
  std::vector<double> x = values;
  if (x.size() > opt.max_fit) {
    Rng rng(seed);
    rng.shuffle(x.begin(), x.end());
    x.resize(opt.max_fit);
  }
  const double n = static_cast<double>(x.size());
  double mean = std::accumulate(x.begin(), x.end(), 0.0) / n, var = 0;
  for (double v : x) var += (v - mean) * (v - mean);
  double sd = std::sqrt(var / n);
  if (sd == 0) {
    g.weight = {1};
    g.mean = {mean};
    g.sd = {1};
    return g;
  }
  const double floor = 1e-3 * sd;
  std::vector<double> distinct = x;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  int kmax = std::min<int>(opt.max_modes, static_cast<int>(distinct.size()));
  double best_bic = std::numeric_limits<double>::infinity();
  int worse = 0;
  for (int k = 1; k <= kmax; ++k) {
    EmFit f = em(x, k, floor, opt.iterations, seed + static_cast<uint64_t>(k));
    double bic = -2 * f.loglik + (3.0 * static_cast<double>(f.gmm.modes()) - 1) * std::log(n);
    if (bic < best_bic) {
      best_bic = bic;
      g = f.gmm;
      worse = 0;
    } else if (++worse >= 2) {
      break;  // two more modes than the best did not help
    }
  }
  Gmm kept;
  double wsum = 0;
  for (size_t j = 0; j < g.modes(); ++j)
    if (g.weight[j] >= opt.min_weight) wsum += g.weight[j];
  for (size_t j = 0; j < g.modes(); ++j)
    if (g.weight[j] >= opt.min_weight) {
      kept.weight.push_back(g.weight[j] / wsum);
      kept.mean.push_back(g.mean[j]);
      kept.sd.push_back(g.sd[j]);
    }
  return kept;
}

// ---------------------------------------------------------------- transformer

void TableTransformer::layout() {
  spans_.clear();
  width_ = 0;
  for (const Column& c : columns_) {
    if (c.continuous) {
      spans_.push_back({width_, 1, false});
      spans_.push_back({width_ + 1, static_cast<int64_t>(c.gmm.modes()), true});
      width_ += 1 + static_cast<int64_t>(c.gmm.modes());
    } else {
      spans_.push_back({width_, static_cast<int64_t>(c.categories.size()), true});
      width_ += static_cast<int64_t>(c.categories.size());
    }
  }
}

TableTransformer TableTransformer::fit(const Table& t, size_t max_categories, const GmmOptions& gmm,
                                       uint64_t seed) {
  if (max_categories < 2) throw std::invalid_argument("max_categories must be at least 2");
  TableTransformer tr;
  for (size_t c = 0; c < t.discrete.size(); ++c) {
    Column col;
    col.name = t.discrete_names.at(c);
    std::map<std::string, uint64_t> counts;
    for (const std::string& v : t.discrete[c]) ++counts[v];
    std::vector<std::pair<std::string, uint64_t>> v(counts.begin(), counts.end());
    std::stable_sort(v.begin(), v.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    size_t keep = v.size() > max_categories ? max_categories - 1 : v.size();
    for (size_t i = 0; i < keep; ++i) col.categories.push_back(v[i].first);
    if (keep < v.size()) col.categories.push_back(kOtherCategory);
    if (col.categories.empty()) col.categories.push_back(kOtherCategory);
    tr.columns_.push_back(std::move(col));
  }
  tr.num_discrete_ = tr.columns_.size();
  for (size_t c = 0; c < t.continuous.size(); ++c) {
    Column col;
    col.name = t.continuous_names.at(c);
    col.continuous = true;
    col.gmm = fit_gmm(t.continuous[c], gmm, seed + c);
    tr.columns_.push_back(std::move(col));
  }
  tr.layout();
  return tr;
}

std::vector<float> TableTransformer::transform(const Table& t, Rng& rng) const {
  if (t.discrete.size() != num_discrete_ || t.continuous.size() != columns_.size() - num_discrete_)
    throw std::invalid_argument("TableTransformer::transform: the table has other columns");
  const size_t n = t.rows();
  std::vector<float> out(n * static_cast<size_t>(width_), 0.0f);
  size_t span = 0;
  for (size_t c = 0; c < columns_.size(); ++c) {
    const Column& col = columns_[c];
    if (!col.continuous) {
      std::unordered_map<std::string_view, int64_t> index;
      for (size_t k = 0; k < col.categories.size(); ++k) index.emplace(col.categories[k], k);
      auto other = index.find(kOtherCategory);
      const Span& s = spans_[span++];
      for (size_t i = 0; i < n; ++i) {
        auto it = index.find(t.discrete[c][i]);
        if (it == index.end()) it = other;
        if (it == index.end())
          throw std::invalid_argument("TableTransformer::transform: unknown category '" +
                                      t.discrete[c][i] + "' in column " + col.name);
        out[i * width_ + s.start + it->second] = 1.0f;
      }
    } else {
      const Span& a = spans_[span++];
      const Span& m = spans_[span++];
      const Gmm& g = col.gmm;
      const std::vector<double>& x = t.continuous[c - num_discrete_];
      std::vector<double> lp(g.modes());
      for (size_t i = 0; i < n; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        for (size_t k = 0; k < g.modes(); ++k)
          mx = std::max(mx, lp[k] = std::log(g.weight[k]) + log_normal(x[i], g.mean[k], g.sd[k]));
        double s = 0;
        for (size_t k = 0; k < g.modes(); ++k) s += (lp[k] = std::exp(lp[k] - mx));
        double u = rng.uniform() * s;
        size_t k = 0;
        while (k + 1 < g.modes() && u >= lp[k]) u -= lp[k++];
        double alpha = std::clamp((x[i] - g.mean[k]) / (4 * g.sd[k]), -0.99, 0.99);
        out[i * width_ + a.start] = static_cast<float>(alpha);
        out[i * width_ + m.start + static_cast<int64_t>(k)] = 1.0f;
      }
    }
  }
  return out;
}

Table TableTransformer::inverse(const std::vector<float>& data, size_t rows,
                                const std::vector<float>& sigmas, Rng& rng) const {
  if (data.size() != rows * static_cast<size_t>(width_))
    throw std::invalid_argument("TableTransformer::inverse: data is not [rows, width]");
  Table t;
  auto argmax = [&](size_t i, const Span& s) {
    const float* p = &data[i * width_ + s.start];
    return static_cast<size_t>(std::max_element(p, p + s.size) - p);
  };
  size_t span = 0;
  for (const Column& col : columns_) {
    if (!col.continuous) {
      const Span& s = spans_[span++];
      t.discrete_names.push_back(col.name);
      std::vector<std::string> v(rows);
      for (size_t i = 0; i < rows; ++i) v[i] = col.categories[argmax(i, s)];
      t.discrete.push_back(std::move(v));
    } else {
      const Span& a = spans_[span++];
      const Span& m = spans_[span++];
      t.continuous_names.push_back(col.name);
      std::vector<double> v(rows);
      for (size_t i = 0; i < rows; ++i) {
        double alpha = data[i * width_ + a.start];
        if (!sigmas.empty()) alpha += sigmas.at(static_cast<size_t>(a.start)) * normal_draw(rng);
        alpha = std::clamp(alpha, -1.0, 1.0);
        size_t k = argmax(i, m);
        v[i] = 4 * col.gmm.sd[k] * alpha + col.gmm.mean[k];
      }
      t.continuous.push_back(std::move(v));
    }
  }
  return t;
}

nlohmann::json TableTransformer::to_json() const {
  nlohmann::json cols = nlohmann::json::array();
  for (const Column& c : columns_) {
    if (c.continuous)
      cols.push_back({{"name", c.name},
                      {"kind", "continuous"},
                      {"weight", c.gmm.weight},
                      {"mean", c.gmm.mean},
                      {"sd", c.gmm.sd}});
    else
      cols.push_back({{"name", c.name}, {"kind", "discrete"}, {"categories", c.categories}});
  }
  return {{"columns", cols}, {"width", width_}};
}

TableTransformer TableTransformer::from_json(const nlohmann::json& j) {
  TableTransformer tr;
  bool seen_continuous = false;
  for (const auto& c : j.at("columns")) {
    Column col;
    col.name = c.at("name").get<std::string>();
    std::string kind = c.at("kind").get<std::string>();
    if (kind == "continuous") {
      col.continuous = true;
      seen_continuous = true;
      col.gmm.weight = c.at("weight").get<std::vector<double>>();
      col.gmm.mean = c.at("mean").get<std::vector<double>>();
      col.gmm.sd = c.at("sd").get<std::vector<double>>();
      if (col.gmm.modes() == 0 || col.gmm.mean.size() != col.gmm.modes() ||
          col.gmm.sd.size() != col.gmm.modes())
        throw std::runtime_error("column " + col.name + ": weight, mean, sd of different sizes");
    } else if (kind == "discrete") {
      if (seen_continuous) throw std::runtime_error("discrete columns must come first");
      col.categories = c.at("categories").get<std::vector<std::string>>();
      if (col.categories.empty())
        throw std::runtime_error("column " + col.name + ": no categories");
      ++tr.num_discrete_;
    } else {
      throw std::runtime_error("column kind '" + kind + "': expected discrete or continuous");
    }
    tr.columns_.push_back(std::move(col));
  }
  tr.layout();
  if (j.contains("width") && j.at("width").get<int64_t>() != tr.width_)
    throw std::runtime_error("width does not match the columns");
  return tr;
}

// ---------------------------------------------------------------- the VAE

namespace {

struct EncoderImpl : torch::nn::Module {
  torch::nn::Sequential seq{nullptr};
  torch::nn::Linear mu{nullptr}, logvar{nullptr};
  EncoderImpl(int64_t width, int64_t hidden, int64_t embedding) {
    seq = register_module(
        "seq", torch::nn::Sequential(torch::nn::Linear(width, hidden), torch::nn::ReLU(),
                                     torch::nn::Linear(hidden, hidden), torch::nn::ReLU()));
    mu = register_module("mu", torch::nn::Linear(hidden, embedding));
    logvar = register_module("logvar", torch::nn::Linear(hidden, embedding));
  }
  // x: [B, width] -> mu, std, logvar: [B, embedding]
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    torch::Tensor h = seq->forward(x);  // [B, hidden]
    torch::Tensor m = mu->forward(h), lv = logvar->forward(h);
    return {m, torch::exp(0.5 * lv), lv};
  }
};
TORCH_MODULE(Encoder);

struct DecoderImpl : torch::nn::Module {
  torch::nn::Sequential seq{nullptr};
  torch::Tensor sigma;  // [width]: TVAE's learned standard deviation per output
  DecoderImpl(int64_t embedding, int64_t hidden, int64_t width) {
    seq = register_module(
        "seq", torch::nn::Sequential(torch::nn::Linear(embedding, hidden), torch::nn::ReLU(),
                                     torch::nn::Linear(hidden, hidden), torch::nn::ReLU(),
                                     torch::nn::Linear(hidden, width)));
    sigma = register_parameter("sigma", torch::ones({width}) * 0.1);
  }
  torch::Tensor forward(const torch::Tensor& z) { return seq->forward(z); }  // [B, width] logits
};
TORCH_MODULE(Decoder);

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

nlohmann::json TvaeTraining::to_json() const {
  return {{"rows", rows},           {"epochs", epochs},   {"steps", steps},
          {"last_loss", last_loss}, {"seconds", seconds}, {"budget_stop", budget_stop}};
}

struct Tvae::Impl {
  TableTransformer transformer;
  TvaeOptions opt;
  TvaeTraining training;
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};

  void build() {
    encoder = Encoder(transformer.width(), opt.hidden, opt.embedding);
    decoder = Decoder(opt.embedding, opt.hidden, transformer.width());
  }

  // x, y: [B, width] (data, decoder logits); mu, logvar: [B, embedding].
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& mu,
                     const torch::Tensor& logvar) {
    const int64_t b = x.size(0);
    torch::Tensor total = torch::zeros({}, x.options());
    for (const Span& s : transformer.spans()) {
      if (!s.softmax) {
        torch::Tensor sd = decoder->sigma[s.start];
        torch::Tensor eq = x.select(1, s.start) - torch::tanh(y.select(1, s.start));  // [B]
        total = total + (eq * eq / 2 / (sd * sd)).sum() + torch::log(sd) * b;
      } else {
        torch::Tensor target = x.narrow(1, s.start, s.size).argmax(1);  // [B]
        total =
            total + torch::nn::functional::cross_entropy(
                        y.narrow(1, s.start, s.size), target,
                        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      }
    }
    torch::Tensor kld = -0.5 * torch::sum(1 + logvar - mu * mu - logvar.exp());
    return total * opt.loss_factor / b + kld / b;
  }
};

Tvae::Tvae() : impl_(std::make_unique<Impl>()) {}
Tvae::~Tvae() = default;
Tvae::Tvae(Tvae&&) noexcept = default;
Tvae& Tvae::operator=(Tvae&&) noexcept = default;

const TableTransformer& Tvae::transformer() const { return impl_->transformer; }
const TvaeTraining& Tvae::training() const { return impl_->training; }

Tvae Tvae::train(const Table& t, const TvaeOptions& opt) {
  const size_t n = t.rows();
  if (n == 0) throw std::invalid_argument("TVAE: the table has no rows");
  auto t0 = std::chrono::steady_clock::now();
  Tvae m;
  Impl& I = *m.impl_;
  I.opt = opt;
  I.transformer = TableTransformer::fit(t, opt.max_categories, opt.gmm, opt.seed);
  Rng rng(opt.seed);
  std::vector<float> data = I.transformer.transform(t, rng);
  const int64_t w = I.transformer.width();
  torch::Tensor x = torch::from_blob(data.data(), {static_cast<int64_t>(n), w}, torch::kFloat32)
                        .clone();  // [N, width]
  torch::manual_seed(opt.seed);
  I.build();
  std::vector<torch::Tensor> params = I.encoder->parameters();
  for (auto& p : I.decoder->parameters()) params.push_back(p);
  torch::optim::Adam adam(params, torch::optim::AdamOptions(opt.lr).weight_decay(opt.weight_decay));
  I.training.rows = n;
  const int64_t batch = std::max<int64_t>(1, opt.batch);
  const int64_t steps_per_epoch = (static_cast<int64_t>(n) + batch - 1) / batch;
  Progress progress("tvae", static_cast<uint64_t>(opt.epochs) * steps_per_epoch, opt.progress,
                    "steps");
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  bool stop = false;
  for (int epoch = 0; epoch < opt.epochs && !stop; ++epoch) {
    rng.shuffle(order.begin(), order.end());
    torch::Tensor perm = torch::from_blob(order.data(), {static_cast<int64_t>(n)}, torch::kInt64);
    double sum = 0;
    for (int64_t s = 0; s < static_cast<int64_t>(n); s += batch) {
      int64_t b = std::min<int64_t>(batch, static_cast<int64_t>(n) - s);
      torch::Tensor xb = x.index_select(0, perm.narrow(0, s, b));  // [b, width]
      adam.zero_grad();
      auto [mu, sd, logvar] = I.encoder->forward(xb);  // [b, embedding] each
      torch::Tensor z = torch::randn_like(sd) * sd + mu;
      torch::Tensor y = I.decoder->forward(z);  // [b, width]
      torch::Tensor loss = I.loss(xb, y, mu, logvar);
      loss.backward();
      adam.step();
      {
        torch::NoGradGuard ng;
        I.decoder->sigma.clamp_(0.01, 1.0);
      }
      sum += loss.item<double>() * static_cast<double>(b);
      ++I.training.steps;
      if (opt.minutes > 0 && seconds_since(t0) > opt.minutes * 60) {
        stop = I.training.budget_stop = true;
        break;
      }
    }
    if (!stop) {
      ++I.training.epochs;
      I.training.last_loss = sum / static_cast<double>(n);
    }
    progress.update(static_cast<uint64_t>(I.training.steps),
                    static_cast<uint64_t>(epoch + 1) * static_cast<uint64_t>(n),
                    fmt::format("epoch {} loss {:.3f}", epoch + 1, sum / static_cast<double>(n)));
  }
  progress.finish();
  I.training.seconds = seconds_since(t0);
  return m;
}

Table Tvae::sample(int64_t rows, uint64_t seed) const {
  if (rows < 0) throw std::invalid_argument("TVAE: negative number of rows");
  Impl& I = *impl_;  // forward() is not const; sampling changes nothing
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t w = I.transformer.width();
  std::vector<float> data;
  data.reserve(static_cast<size_t>(rows * w));
  const int64_t batch = std::max<int64_t>(1, I.opt.batch);
  for (int64_t s = 0; s < rows; s += batch) {
    int64_t b = std::min(batch, rows - s);
    torch::Tensor z = torch::randn({b, I.opt.embedding}, gen);          // [b, embedding]
    torch::Tensor y = torch::tanh(I.decoder->forward(z)).contiguous();  // [b, width]
    const float* p = y.data_ptr<float>();
    data.insert(data.end(), p, p + b * w);
  }
  torch::Tensor sig = I.decoder->sigma.detach().contiguous();  // [width]
  std::vector<float> sigmas(sig.data_ptr<float>(), sig.data_ptr<float>() + w);
  Rng rng(seed ^ 0x9e3779b97f4a7c15ULL);
  return I.transformer.inverse(data, static_cast<size_t>(rows), sigmas, rng);
}

void Tvae::save(const std::string& dir) const {
  const Impl& I = *impl_;
  std::filesystem::create_directories(dir);
  nlohmann::json j;
  j["format"] = "tracelm-tvae";
  j["version"] = 1;
  j["embedding"] = I.opt.embedding;
  j["hidden"] = I.opt.hidden;
  j["batch"] = I.opt.batch;
  j["loss_factor"] = I.opt.loss_factor;
  j["seed"] = I.opt.seed;
  j["transformer"] = I.transformer.to_json();
  j["training"] = I.training.to_json();
  torch::serialize::OutputArchive enc, dec, ar;
  I.encoder->save(enc);
  I.decoder->save(dec);
  ar.write("encoder", enc);
  ar.write("decoder", dec);
  std::ostringstream os;
  ar.save_to(os);
  write_file_atomically(dir + "/weights.pt", os.str());
  write_file_atomically(dir + "/tvae.json", j.dump(1) + "\n");
}

Tvae Tvae::load(const std::string& dir) {
  const std::string jpath = dir + "/tvae.json", wpath = dir + "/weights.pt";
  std::ifstream in(jpath);
  if (!in) throw InputError(jpath, 0, "cannot open (expected a TVAE model directory)");
  Tvae m;
  Impl& I = *m.impl_;
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    if (j.value("format", "") != "tracelm-tvae")
      throw std::runtime_error("expected \"format\": \"tracelm-tvae\"");
    I.opt.embedding = j.at("embedding").get<int64_t>();
    I.opt.hidden = j.at("hidden").get<int64_t>();
    I.opt.batch = j.at("batch").get<int64_t>();
    I.opt.loss_factor = j.at("loss_factor").get<double>();
    I.opt.seed = j.at("seed").get<uint64_t>();
    I.transformer = TableTransformer::from_json(j.at("transformer"));
    const auto& tj = j.at("training");
    I.training.rows = tj.at("rows").get<size_t>();
    I.training.epochs = tj.at("epochs").get<int>();
    I.training.steps = tj.at("steps").get<int64_t>();
    I.training.last_loss = tj.at("last_loss").get<double>();
    I.training.seconds = tj.at("seconds").get<double>();
    I.training.budget_stop = tj.at("budget_stop").get<bool>();
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    throw InputError(jpath, 0, e.what());
  }
  I.build();
  try {
    torch::serialize::InputArchive ar, enc, dec;
    ar.load_from(wpath);
    ar.read("encoder", enc);
    ar.read("decoder", dec);
    I.encoder->load(enc);
    I.decoder->load(dec);
  } catch (const std::exception& e) {
    throw InputError(wpath, 0, std::string("cannot load the TVAE weights: ") + e.what());
  }
  return m;
}

// ---------------------------------------------------------------- corpus

Tvae train_tvae_on_corpus(const std::string& corpus, const TvaeOptions& opt, uint64_t* skipped) {
  std::vector<CallRow> rows;
  uint64_t bad = 0;
  for_each_graph(corpus, CsvMode::kClean, [&](CallGraph&& g) {
    if (!is_valid(validate(g))) {
      ++bad;
      return;
    }
    std::vector<CallRow> r = call_rows(g);
    rows.insert(rows.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
  });
  if (skipped) *skipped = bad;
  if (rows.empty()) throw std::runtime_error("no calls in valid graphs in " + corpus);
  return Tvae::train(calls_table(rows), opt);
}

std::vector<CallRow> generate_tvae_calls(const Tvae& m, int64_t n, uint64_t seed) {
  return calls_from_table(m.sample(n, seed));
}

}  // namespace tracelm
