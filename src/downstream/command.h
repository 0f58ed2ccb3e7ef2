// The body of `tracelm downstream critical|anomaly`: load the real corpus and
// the named training sets, run the experiment (protocol.h), print the table,
// write the JSON and the HTML report.
//
// Contract:
//  - The real training pool is always the first training set, named "real",
//    whether or not `train` names it; other sets keep the given order. Two
//    sets with one name are an InputError.
//  - Files are read with load_labeled_graphs() (corpus with optional labels,
//    or Alibaba CSV). A training set with no graph is an InputError.
//  - json_path "-" writes to stdout; files are written atomically.
//  - Returns the result; the table goes to stdout unless quiet.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "downstream/protocol.h"

namespace tracelm::downstream {

struct CommandFiles {
  std::string real;                // --real
  std::vector<std::string> train;  // --train NAME=FILE (and "real")
  std::string json, report;        // outputs, empty = none
  bool quiet = false;
};

// Loads the training sets named in files.train ("real" first).
std::vector<TrainingSource> load_training_sources(const std::vector<std::string>& specs);

// make_task builds the task once the real corpus is loaded (e.g. to choose
// the label source from it).
using TaskFactory = std::function<TaskSpec(const std::vector<LabeledGraph>& real)>;
ExperimentResult run_downstream_command(const TaskFactory& make_task, const CommandFiles& files,
                                        const ExperimentOptions& opt);

// The body of `tracelm downstream pool`: writes the real training pool of one
// seed (real_training_pool(): the graphs the "real" source trains on, app by
// app) as a corpus, e.g. the normal training graphs a generator is trained
// on and asked to imitate (`generate --like`). Under the time split the pool
// is the same for every seed. Returns what was written and why the rest was
// left out.
struct PoolSummary {
  size_t real_graphs = 0;  // graphs in the real corpus
  size_t app_graphs = 0;   // of them, in an app (valid, >= min_edges calls)
  size_t pool_graphs = 0;  // of them, in the seed's training pool
  size_t not_normal = 0;   // pool graphs left out by normal_only
  size_t written = 0;
  std::vector<App> apps;
  std::vector<std::string> split_notes;  // per app (describe_split)
};
PoolSummary write_real_training_pool(const std::string& real_path, const ExperimentOptions& opt,
                                     uint64_t seed, bool normal_only, const std::string& out_path);

// Reads a JSON file written by run_downstream_command (--json); InputError
// naming the file when it cannot be read or is not such a result.
ExperimentResult read_experiment_result(const std::string& path);

}  // namespace tracelm::downstream
