// Scores of the downstream tasks (docs/downstream.md): classifier accuracy,
// ROC AUC, average precision, and the small statistics they need.
//
// Contract:
//  - Labels are 0 (negative) or 1 (positive); `score` is "higher = more
//    positive". Vectors of one call have equal lengths (std::invalid_argument
//    otherwise).
//  - roc_auc() is the Mann-Whitney statistic with average ranks for ties: a
//    tie between a positive and a negative counts one half. NaN when either
//    class is absent.
//  - average_precision() is sum_k (R_k - R_{k-1}) * P_k over the distinct
//    score thresholds, from the highest down (tied scores form one threshold,
//    as scikit-learn's average_precision_score). NaN without positives.
//  - best_f1() is the largest F1 over those thresholds (0 without positives).
//  - balanced_accuracy() is the mean recall of the classes present.
//  - percentile() is nearest-rank: sorted x[floor(q * n)], clamped to n - 1.
//  - pearson() is 0 when either vector has zero variance.
//  - Pure functions, no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tracelm::downstream {

double accuracy(const std::vector<int>& predicted, const std::vector<int>& y);
double balanced_accuracy(const std::vector<int>& predicted, const std::vector<int>& y);
double roc_auc(const std::vector<double>& score, const std::vector<int>& y);
double average_precision(const std::vector<double>& score, const std::vector<int>& y);
double best_f1(const std::vector<double>& score, const std::vector<int>& y);
double positive_rate(const std::vector<int>& y);

double percentile(std::vector<double> x, double q);  // x non-empty
double pearson(const std::vector<double>& a, const std::vector<double>& b);

struct MeanSd {
  double mean = 0, sd = 0;  // sd: sample standard deviation (n - 1); 0 for n < 2
  size_t n = 0;             // values that were finite
};
MeanSd mean_sd(const std::vector<double>& x);  // NaN values are skipped

}  // namespace tracelm::downstream
