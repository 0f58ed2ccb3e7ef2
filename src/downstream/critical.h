// The critical-component task of docs/downstream.md as a TaskSpec for
// run_experiment(): FIRM's features and labels (firm.h) from windows of
// graphs, one SVM per (app, training set, seed), tested on windows of the
// real test graphs.
//
// Contract:
//  - Thresholds Q99_m come from the real training pool of the seed and are
//    applied unchanged to every training set and to the test windows.
//  - Window size per pool: min(window, max(min_graphs, pool size / 2)), so
//    that small pools still give windows that differ.
//  - Test windows depend on the seed and the real test graphs only: every
//    training set of one (app, seed) is tested on the same samples.
//  - With standardize, features are z-scored with the training samples'
//    statistics (a constant feature is only centred).
//  - Metrics: accuracy (primary, the paper's), balanced accuracy; shown in
//    points; tolerance 1.5 points (the paper's "within 1.5 points").
#pragma once

#include <string>

#include "downstream/firm.h"
#include "downstream/protocol.h"

namespace tracelm::downstream {

struct CriticalOptions {
  FirmWindowOptions train{20, 200, 3};
  FirmWindowOptions test{20, 100, 3};
  std::string svm = "linear";  // "linear" (FIRM's default) or "rbf" (libsvm)
  // Standardise each feature by the training samples' mean and standard
  // deviation (applied unchanged to the test samples). FIRM's default is no
  // scaling; its script has a normalisation flag.
  bool standardize = false;
  size_t min_threshold_samples = 10;
};

TaskSpec critical_task(const CriticalOptions& opt);

}  // namespace tracelm::downstream
