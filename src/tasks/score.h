// Scoring of downstream task answers (docs/tasks.md) and the most-frequent-
// value baseline.
//
// Contract:
//  - An answer is the text a model wrote after the prompt; only its first
//    line counts, trimmed of spaces. Nothing throws on a malformed answer:
//    it is scored as unparseable (calls) or wrong (attributes).
//  - infill-attribute: exact match of the value, overall and per attribute.
//  - infill-call: the paper's rule (the edge parses, destination and type
//    equal the truth, start <= finish) and a strict rule (also: the interval
//    holds every call of the child layer, and ends no later than the parent
//    layer's parent call, when there is one).
//  - prediction: accuracy of 0/1 labels (and the positive rate of truth and
//    predictions, and balanced accuracy).
//  - FrequencyBaseline learns from train records (the questions with their
//    answers filled in) and, optionally, from whole graphs; it answers with
//    the most frequent value for the context: destination per (service,
//    caller, type), type per (service, caller, destination), the missing
//    call's (destination, type) per (service, caller) among calls that have
//    children, each falling back to the context without the service, then to
//    the overall most frequent value; labels per service, then overall. Ties
//    go to the smaller value (deterministic).
//  - Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"
#include "encode/text_format.h"
#include "tasks/task_data.h"

namespace tracelm {

// The first line of a model's answer, trimmed of spaces.
std::string answer_line(std::string_view answer);

bool attribute_correct(const TaskRecord& r, std::string_view answer);

struct CallCheck {
  bool parsed = false;             // the answer is one edge in the recursive encoding
  bool destination = false;        // destination equals the truth
  bool type = false;               // type equals the truth
  bool ordered = false;            // start <= finish
  bool contains_children = false;  // start <= every child start, finish >= every child finish
  bool within_limit = false;       // finish <= the parent layer's limit (true when none)
  bool paper() const { return parsed && destination && type && ordered; }
  bool strict() const { return paper() && contains_children && within_limit; }
};
CallCheck check_call(const CallTruth& truth, std::string_view answer);

struct TaskScore {
  std::string task;
  int64_t n = 0, correct = 0;
  // infill-attribute: attribute -> (n, correct)
  std::map<std::string, std::pair<int64_t, int64_t>> per_attribute;
  // infill-call
  int64_t parsed = 0, strict = 0;
  // prediction
  int64_t true_positive = 0, false_positive = 0, true_negative = 0, false_negative = 0;
  double accuracy() const { return n ? static_cast<double>(correct) / static_cast<double>(n) : 0; }
  double balanced_accuracy() const;
  nlohmann::json to_json() const;
};

// Scores answers (infilling) for `records`, answers[i] for records[i].
TaskScore score_answers(const std::vector<const TaskRecord*>& records,
                        const std::vector<std::string>& answers);
// Scores 0/1 predictions (prediction tasks).
TaskScore score_labels(const std::vector<const TaskRecord*>& records,
                       const std::vector<int>& predictions);

// One layer of a question: its header attributes, its edges, and which
// edge is the missing one (-1: none). parse_question() reads the layers of
// an infilling question (with [MISSING] kept); false on malformed text.
struct QuestionLayer {
  std::string start_node, service, caller;
  std::vector<EdgeText> edges;  // the missing call of infill-call is absent here
  int missing = -1;             // infill-call: position of "([MISSING])" among the lines
};
bool parse_question(std::string_view question, std::vector<QuestionLayer>* out);

class FrequencyBaseline {
 public:
  // Learns from a train record (infill: question with the answer filled in;
  // prediction: its label per service).
  void add_record(const TaskRecord& r);
  // Learns from every call of a graph (e.g. the graphs a model was trained on).
  void add_graph(const CallGraph& g);
  // The baseline's answer for an infilling record.
  std::string answer(const TaskRecord& r) const;
  // The baseline's label for a prediction record.
  int predict(const TaskRecord& r) const;

 private:
  using Counts = std::map<std::string, int64_t>;
  void add_call(const std::string& service, const std::string& caller, const std::string& type,
                const std::string& dest, bool has_children);
  static std::string best(const Counts& c);
  std::map<std::string, Counts> dest_, type_, call_, label_;  // context key -> value counts
};

// The records of one split, in file order, at most `limit` (0: all).
std::vector<const TaskRecord*> split_records(const std::vector<TaskRecord>& records,
                                             std::string_view split, int64_t limit = 0);

// The frequency baseline learnt from the train split (and `prior` graphs),
// scored on the test split (at most `limit` records).
TaskScore frequency_baseline_score(const std::vector<TaskRecord>& records,
                                   const std::vector<CallGraph>& prior, int64_t limit = 0);

// A results object: {"task", "n_train", "n_test", "results": [{"name", score...}]}.
nlohmann::json task_results(const std::vector<TaskRecord>& records,
                            const std::vector<std::pair<std::string, TaskScore>>& scores);
// The results as a text table: one row per name (accuracy, and per attribute
// or strict accuracy or balanced accuracy).
std::string format_task_table(const nlohmann::json& results);

}  // namespace tracelm
