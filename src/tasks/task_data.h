// Downstream task data (paper §4.5, appendix D.4; docs/tasks.md): question /
// answer records for the two infilling tasks and text / label records for
// the two prediction tasks, made from a corpus of call graphs.
//
// Contract:
//  - make_tasks() is deterministic in (corpus, kind, options): the split is
//    drawn with Rng(seed); each graph's records are drawn with an Rng seeded
//    from (seed, corpus index), so a graph's records do not depend on the
//    other graphs.
//  - The split is by graph: every record of a graph lands in that graph's
//    split ("train", "val" or "test"); no graph is on two sides.
//  - Labels of the prediction tasks use TaskRules (per-service P90 latency,
//    per-service rare calls) computed from the train split's graphs only and
//    applied unchanged to every split; or, when given, rules from elsewhere
//    (a synthetic training set labelled with the real rules: every graph
//    then goes to the train split).
//  - Nothing is dropped silently: skipped layers and graphs are counted by
//    reason in TaskSet::skipped.
//  - Record files are JSON Lines; read_task_file() throws InputError naming
//    the file and line of a malformed record.
//  - Torch-free (data half).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"

namespace tracelm {

enum class TaskKind { kInfillAttribute, kInfillCall, kPredictLatency, kPredictUncommon };
std::string_view task_kind_name(TaskKind k);  // "infill-attribute", ...
std::optional<TaskKind> parse_task_kind(std::string_view s);
inline bool is_infill(TaskKind k) {
  return k == TaskKind::kInfillAttribute || k == TaskKind::kInfillCall;
}

inline constexpr std::string_view kMissing = "[MISSING]";

// Ground truth of a missing call (infill-call): what the correctness rules
// check.
struct CallTruth {
  std::string edge_id;  // last rpc id component
  std::string destination, type;
  int64_t start_ms = 0, finish_ms = 0;
  std::vector<std::pair<int64_t, int64_t>> children;  // (start, finish) of the child layer's calls
  std::optional<int64_t> limit;  // finish of the parent layer's parent call (none at the root)
  bool operator==(const CallTruth&) const = default;
};

struct TaskRecord {
  TaskKind task = TaskKind::kInfillAttribute;
  std::string split;    // "train", "val" or "test"
  std::string graph;    // the graph's trace id, or "#<corpus index>" when it has none
  std::string service;  // service id of the graph
  std::string caller;   // caller of the (parent) layer's calls: its start_node
  // Infilling: the prompt and the expected answer (one line, no newline).
  std::string question, answer;
  std::string attribute;          // infill-attribute: "type" or "destination"
  std::string known;              // infill-attribute: the value of the other attribute
  std::optional<CallTruth> call;  // infill-call
  // Prediction: the input text and its label (0 or 1).
  std::string text;
  int label = -1;
  bool operator==(const TaskRecord&) const = default;
};

nlohmann::json record_to_json(const TaskRecord& r);
// Throws InputError(file, line, what) on a malformed record.
TaskRecord record_from_json(const nlohmann::json& j, const std::string& file, uint64_t line);
std::vector<TaskRecord> read_task_file(const std::string& path);
void write_task_file(const std::string& path, const std::vector<TaskRecord>& records);

// Label rules from the training side (paper code: trace_to_cg_stats.py).
struct TaskRules {
  double percentile = 0.9;     // high latency: latency >= P_q of the service
  int64_t min_graphs = 10;     // a service needs this many train graphs for a threshold
  double rare_fraction = 0.1;  // a call is rare when in < this fraction of its service's graphs
  std::map<std::string, int64_t> threshold;  // service -> latency threshold (ms)
  // service -> (caller, type, callee) of its common calls: those in at least
  // rare_fraction of the service's train graphs. Every other call of a
  // known service is rare, also one never seen in training (fraction 0).
  std::map<std::string, std::set<std::array<std::string, 3>>> common;
  std::set<std::string> services;  // services of the train graphs

  // False for a service absent from the train graphs (nothing is known).
  bool is_rare(const std::string& service, const Edge& e) const;

  static TaskRules fit(const std::vector<const CallGraph*>& train, double percentile,
                       int64_t min_graphs, double rare_fraction);
  nlohmann::json to_json() const;
  static TaskRules from_json(const nlohmann::json& j, const std::string& file);
};
// Nearest-rank percentile of the paper code: sorted ascending, x[floor(q n)]
// clamped to n - 1. `xs` must not be empty.
int64_t nearest_rank(std::vector<int64_t> xs, double q);

struct TaskOptions {
  uint64_t seed = 1;
  // Graph fractions; negative: the task's default (infilling 0.2 train, 0
  // val, rest test; prediction 0.8 / 0.1 / 0.1).
  double train_fraction = -1, val_fraction = -1;
  // Records kept per split (0: all); negative: the paper's sizes for
  // infilling (1,200 / 6,000 attribute questions, 1,000 / 5,000 calls),
  // none for prediction.
  int64_t max_train = -1, max_test = -1;
  bool balance = true;          // prediction: 1:1 classes per split
  int64_t prefix_limit = 5;     // predict-uncommon: a rare call among the first N calls
  size_t max_layer_edges = 15;  // infilling: wider layers (the encoding's splits) are skipped
  double percentile = 0.9, rare_fraction = 0.1;
  int64_t min_graphs = 10;
};

struct TaskSet {
  std::vector<TaskRecord> records;  // in split order (train, val, test), graph order within
  TaskRules rules;
  std::vector<size_t> train_graphs, val_graphs, test_graphs;  // corpus indices
  std::map<std::string, int64_t> skipped;                     // reason -> count
};

TaskSet make_tasks(TaskKind kind, const std::vector<CallGraph>& corpus, const TaskOptions& opt,
                   const TaskRules* rules_from = nullptr);

// The text a language model sees for an infilling question, and what
// follows it: "### Question: " question "\n ### Answer: \n", answer "\n".
std::string task_prompt(const std::string& question);

}  // namespace tracelm
