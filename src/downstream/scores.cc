#include "downstream/scores.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace tracelm::downstream {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_sizes(size_t a, size_t b, const char* what) {
  if (a != b) throw std::invalid_argument(std::string(what) + ": vectors of different lengths");
}

// Indices ordered by score, highest first (stable for equal scores).
std::vector<size_t> by_score_desc(const std::vector<double>& score) {
  std::vector<size_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  return idx;
}

// Calls fn(tp, fp) after each distinct threshold, highest first.
template <class Fn>
void for_each_threshold(const std::vector<double>& score, const std::vector<int>& y, Fn fn) {
  std::vector<size_t> idx = by_score_desc(score);
  double tp = 0, fp = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    (y[idx[i]] ? tp : fp) += 1;
    if (i + 1 == idx.size() || score[idx[i + 1]] != score[idx[i]]) fn(tp, fp);
  }
}

}  // namespace

double accuracy(const std::vector<int>& predicted, const std::vector<int>& y) {
  check_sizes(predicted.size(), y.size(), "accuracy");
  if (y.empty()) return kNaN;
  size_t ok = 0;
  for (size_t i = 0; i < y.size(); ++i) ok += (predicted[i] != 0) == (y[i] != 0);
  return static_cast<double>(ok) / static_cast<double>(y.size());
}

double balanced_accuracy(const std::vector<int>& predicted, const std::vector<int>& y) {
  check_sizes(predicted.size(), y.size(), "balanced_accuracy");
  double n[2] = {0, 0}, ok[2] = {0, 0};
  for (size_t i = 0; i < y.size(); ++i) {
    int c = y[i] != 0;
    n[c] += 1;
    ok[c] += (predicted[i] != 0) == (c != 0);
  }
  double sum = 0;
  int classes = 0;
  for (int c = 0; c < 2; ++c)
    if (n[c] > 0) {
      sum += ok[c] / n[c];
      ++classes;
    }
  return classes ? sum / classes : kNaN;
}

double roc_auc(const std::vector<double>& score, const std::vector<int>& y) {
  check_sizes(score.size(), y.size(), "roc_auc");
  std::vector<size_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0, pos = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && score[idx[j]] == score[idx[i]]) ++j;
    double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;  // 1-based
    for (size_t k = i; k < j; ++k)
      if (y[idx[k]]) {
        rank_sum += avg_rank;
        pos += 1;
      }
    i = j;
  }
  double neg = static_cast<double>(y.size()) - pos;
  if (pos == 0 || neg == 0) return kNaN;
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

double average_precision(const std::vector<double>& score, const std::vector<int>& y) {
  check_sizes(score.size(), y.size(), "average_precision");
  double pos = 0;
  for (int v : y) pos += v != 0;
  if (pos == 0) return kNaN;
  double ap = 0, prev_recall = 0;
  for_each_threshold(score, y, [&](double tp, double fp) {
    double recall = tp / pos, precision = tp / (tp + fp);
    ap += (recall - prev_recall) * precision;
    prev_recall = recall;
  });
  return ap;
}

double best_f1(const std::vector<double>& score, const std::vector<int>& y) {
  check_sizes(score.size(), y.size(), "best_f1");
  double pos = 0;
  for (int v : y) pos += v != 0;
  if (pos == 0) return 0;
  double best = 0;
  for_each_threshold(score, y, [&](double tp, double fp) {
    if (tp > 0) best = std::max(best, 2 * tp / (2 * tp + fp + (pos - tp)));
  });
  return best;
}

double positive_rate(const std::vector<int>& y) {
  if (y.empty()) return kNaN;
  double pos = 0;
  for (int v : y) pos += v != 0;
  return pos / static_cast<double>(y.size());
}

double percentile(std::vector<double> x, double q) {
  if (x.empty()) throw std::invalid_argument("percentile of no values");
  std::sort(x.begin(), x.end());
  size_t k = static_cast<size_t>(std::floor(q * static_cast<double>(x.size())));
  return x[std::min(k, x.size() - 1)];
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  check_sizes(a.size(), b.size(), "pearson");
  size_t n = a.size();
  if (n < 2) return 0;
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa <= 0 || sbb <= 0) return 0;
  return sab / std::sqrt(saa * sbb);
}

MeanSd mean_sd(const std::vector<double>& x) {
  MeanSd r;
  double sum = 0;
  for (double v : x)
    if (!std::isnan(v)) {
      sum += v;
      ++r.n;
    }
  if (r.n == 0) {
    r.mean = r.sd = kNaN;
    return r;
  }
  r.mean = sum / static_cast<double>(r.n);
  if (r.n < 2) return r;
  double ss = 0;
  for (double v : x)
    if (!std::isnan(v)) ss += (v - r.mean) * (v - r.mean);
  r.sd = std::sqrt(ss / static_cast<double>(r.n - 1));
  return r;
}

}  // namespace tracelm::downstream
