// TVAE: the tabular VAE baseline of the paper (Xu et al., NeurIPS 2019,
// "Modeling Tabular Data using Conditional GAN"; the TVAE of the CTGAN/SDV
// code) in libtorch, over the calls of a corpus: one table row per call.
// It makes calls, not graphs, so it is compared on the metrics defined on
// calls only (eval/call_rows.h; the paper: popular calls). docs/metrics.md,
// "TVAE baseline".
//
// Contract:
//  - Table: named discrete columns (strings) and continuous columns
//    (doubles), all of the same number of rows. calls_table() makes the
//    calls' table: discrete caller, callee, type, depth; continuous start_ms,
//    response_ms. calls_from_table() is its inverse (numbers rounded to
//    integer ms, negative ones clamped to 0); a depth or type that does not
//    parse (the "OTHER" bucket) throws std::runtime_error.
//  - fit_gmm(): the Gaussian mixture of one continuous column. Stands in for
//    CTGAN's variational Bayesian GMM (up to 10 modes, modes of weight <
//    0.005 dropped): plain EM for each number of modes 1..max_modes (means
//    started by seeded k-means++ seeding; the search stops after two
//    numbers of modes that do not improve on the best), the fit with the
//    lowest BIC kept, then modes of
//    weight < min_weight dropped and the weights renormalized. At most
//    max_fit values (a seeded sample) take part in the fit. Standard
//    deviations are floored at 1e-3 x the column's (1 for a constant
//    column). Deterministic for a seed.
//  - TableTransformer (mode-specific normalization, as CTGAN's): a discrete
//    column becomes a one-hot span over its categories (the max_categories -
//    1 most frequent, ties by name, then "OTHER" for the rest when there are
//    more); a continuous column becomes alpha = (x - mu_k) / (4 sd_k),
//    clipped to [-0.99, 0.99] (one tanh value), then a one-hot span over its
//    modes, the mode k drawn from the posterior of the mixture (seeded Rng).
//    inverse() takes the decoder's output after tanh: the mode and the
//    category are the argmax of their spans; alpha gets N(0, sigma^2) noise
//    from the learned per-column sigma when sigmas are given, is clipped to
//    [-1, 1], then x = 4 sd_k alpha + mu_k.
//  - Tvae: the VAE. Encoder 2 x (Linear(128) + ReLU) -> mu, logvar of a
//    128-dim latent; decoder 2 x (Linear(128) + ReLU) -> Linear(width), tanh
//    on alphas, a softmax over each one-hot span, and a learned sigma per
//    output (clamped to [0.01, 1] after every step). Loss per batch of B
//    rows: loss_factor x (sum over alphas of (x - tanh(y))^2 / (2 sigma^2) +
//    log sigma, plus the cross-entropy of each one-hot span) / B + KL / B.
//    Adam (lr 1e-3, weight decay 1e-5), batches of 500 rows, shuffled per
//    epoch; stops after `epochs` or when the time budget runs out (after the
//    step in progress). sample(): z ~ N(0, I), decode, tanh, inverse with
//    the learned sigmas, as TVAE (the category of a row is the argmax of its
//    logits: TVAE's sampling).
//  - Everything follows the seed: the same data, options, seed and thread
//    count give the same model; sample(n, seed) is a function of the model,
//    n and seed (also after save() and load()).
//  - save(dir): dir/tvae.json (transformer, sizes, training summary) and
//    dir/weights.pt (libtorch archive), each written atomically; load()
//    throws InputError naming the file on a missing or malformed one.
//  - Memory: training holds the whole transformed table, rows x width
//    floats (width = the categories of all discrete columns + 1 + modes per
//    continuous column; 485 for the Alibaba sample's 3,603 calls).
//  - Not thread-safe; one model per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/call_rows.h"
#include "util/rng.h"

namespace tracelm {

inline constexpr const char* kOtherCategory = "OTHER";

struct Table {
  std::vector<std::string> discrete_names, continuous_names;
  std::vector<std::vector<std::string>> discrete;  // [column][row]
  std::vector<std::vector<double>> continuous;     // [column][row]
  size_t rows() const;
};

Table calls_table(const std::vector<CallRow>& calls);
std::vector<CallRow> calls_from_table(const Table& t);

// ---- mode-specific normalization

struct Gmm {
  std::vector<double> weight, mean, sd;  // one per mode; weights sum to 1
  size_t modes() const { return weight.size(); }
};

struct GmmOptions {
  int max_modes = 10;
  double min_weight = 0.005;
  int iterations = 200;  // EM iterations at most, per number of modes
  size_t max_fit = 20000;
};

Gmm fit_gmm(const std::vector<double>& x, const GmmOptions& opt = {}, uint64_t seed = 1);

// One output span of the transformed row.
struct Span {
  int64_t start = 0, size = 0;
  bool softmax = false;  // false: one tanh value (an alpha)
};

class TableTransformer {
 public:
  struct Column {
    std::string name;
    bool continuous = false;
    std::vector<std::string> categories;  // discrete
    Gmm gmm;                              // continuous
  };

  static TableTransformer fit(const Table& t, size_t max_categories = 1000,
                              const GmmOptions& gmm = {}, uint64_t seed = 1);
  int64_t width() const { return width_; }
  const std::vector<Span>& spans() const { return spans_; }
  const std::vector<Column>& columns() const { return columns_; }

  // Row-major [rows, width] floats. The table must have the fitted columns.
  std::vector<float> transform(const Table& t, Rng& rng) const;
  // data: [rows, width], after tanh; sigmas: [width] or empty (no noise).
  Table inverse(const std::vector<float>& data, size_t rows, const std::vector<float>& sigmas,
                Rng& rng) const;

  nlohmann::json to_json() const;
  static TableTransformer from_json(const nlohmann::json& j);

 private:
  void layout();                 // spans_ and width_ from columns_
  std::vector<Column> columns_;  // discrete columns first, then continuous
  size_t num_discrete_ = 0;
  std::vector<Span> spans_;
  int64_t width_ = 0;
};

// ---- the VAE

struct TvaeOptions {
  int64_t embedding = 128;  // latent size
  int64_t hidden = 128;     // both encoder and decoder layers
  int epochs = 300;
  double minutes = 0;  // time budget; 0 = none
  int64_t batch = 500;
  double lr = 1e-3, weight_decay = 1e-5, loss_factor = 2;
  size_t max_categories = 1000;
  GmmOptions gmm;
  uint64_t seed = 1;
  bool progress = false;  // a progress line on stderr
};

struct TvaeTraining {
  size_t rows = 0;
  int epochs = 0;  // completed epochs
  int64_t steps = 0;
  double last_loss = 0;  // mean loss per row of the last epoch
  double seconds = 0;
  bool budget_stop = false;
  nlohmann::json to_json() const;
};

class Tvae {
 public:
  Tvae();
  ~Tvae();
  Tvae(Tvae&&) noexcept;
  Tvae& operator=(Tvae&&) noexcept;

  // Fits the transformer and trains. Throws std::invalid_argument on an
  // empty table.
  static Tvae train(const Table& t, const TvaeOptions& opt);
  Table sample(int64_t rows, uint64_t seed) const;
  void save(const std::string& dir) const;
  static Tvae load(const std::string& dir);

  const TableTransformer& transformer() const;
  const TvaeTraining& training() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The library functions of `tracelm baseline tvae`: trains on the calls of a
// corpus (graphs read as `baseline fit` reads them; invalid ones skipped and
// counted in *skipped), and samples calls.
Tvae train_tvae_on_corpus(const std::string& corpus, const TvaeOptions& opt,
                          uint64_t* skipped = nullptr);
std::vector<CallRow> generate_tvae_calls(const Tvae& m, int64_t n, uint64_t seed);

}  // namespace tracelm
