// The model side of the downstream tasks (docs/tasks.md): fine-tuning a
// trained tracelm model (or the same architecture with random weights, the
// "no trace pre-training" baseline) on infilling questions with the existing
// instruction tuning, greedy answers, the frozen-model classifier head, and
// the evaluation that scores models and the frequency baseline in one run.
//
// This header is torch-free (plain types) so that the CLI can call it; the
// implementation (task_model.cc) is in the libtorch half.
//
// Contract:
//  - finetune_infill() feeds the train split's question/answer records to
//    train_model() (src/train) as instruction samples: the prompt is
//    task_prompt(question), the answer `answer + "\n"`, loss on the answer
//    only. It does not change the trainer.
//  - Answers are greedy (argmax) continuations of task_prompt(question),
//    stopped at the first newline or EOS, at most max_new_tokens tokens.
//  - The classifier is LlamaForSequenceClassification's: logits = W h, W
//    (2, C) without bias, h = final (normed) hidden state of the last token
//    of BOS + text (truncated to `context` tokens). The model is frozen; W
//    trains for `epochs` epochs with AdamW and a cosine schedule,
//    cross-entropy, clipping 1.0. The head directory holds head.safetensors
//    ("score.weight", F32) and head.json (the model directory, context,
//    task), so it runs on new records (classify()).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"
#include "tasks/task_data.h"

namespace tracelm {

struct TaskTrainOptions {
  double lr = 1e-4;  // paper (appendix A.1, Table 1)
  int64_t batch = 2;
  int epochs = 1;
  int64_t context = 1024;
  double time_budget_s = 0;   // 0: none
  bool full = false;          // full fine-tuning instead of LoRA (infilling)
  bool from_scratch = false;  // random weights of the model's architecture (baseline)
  uint64_t seed = 1;
  bool progress = true;
};

// Fine-tunes `model_dir` on the train-split infilling records into out_dir
// (a LoRA adapter or a full model, as `tracelm train --stage instruct`).
// from_scratch: writes the random-weight model to out_dir + "/init" first
// and fine-tunes that. Returns a one-line summary.
std::string finetune_infill(const std::vector<TaskRecord>& records, const std::string& model_dir,
                            const TaskTrainOptions& opt, const std::string& out_dir);

// Greedy answers of a model directory (full model or adapter) to records.
std::vector<std::string> infill_answers(const std::string& model_dir,
                                        const std::vector<const TaskRecord*>& records,
                                        int64_t max_new_tokens,
                                        const std::function<void(size_t)>& progress = {});

// Trains the classifier head on the train-split prediction records.
std::string train_classifier(const std::vector<TaskRecord>& records, const std::string& model_dir,
                             const TaskTrainOptions& opt, const std::string& out_dir);
// Labels of records from a head directory.
std::vector<int> classify(const std::string& head_dir,
                          const std::vector<const TaskRecord*>& records,
                          const std::function<void(size_t)>& progress = {});

// Synthetic graphs requested like `real` (for a synthetic training set of
// the prediction tasks): per real graph one request with its service, edges,
// depth and latency (so high-latency graphs are asked for as such) and, when
// the graph has a call that `rules` count rare for its service, that call.
// Constrained generation with the model of model_dir; a request whose graph
// fails or is invalid is retried with the next seed up to `retries` times.
// Returns the valid graphs in request order; *summary says how many.
std::vector<CallGraph> synthesize_like(const std::string& model_dir,
                                       const std::vector<CallGraph>& real, const TaskRules& rules,
                                       uint64_t seed, int retries, std::string* summary);

struct TaskEvalOptions {
  // (name, directory): fine-tuned infilling models or classifier heads.
  std::vector<std::pair<std::string, std::string>> models;
  std::vector<std::string> prior_corpora;  // graphs the frequency baseline also learns from
  int64_t max_new_tokens = 96;
  int64_t limit = 0;  // test records scored (0: all)
  // When set: each model's answers are written to DIR/NAME.answers.jsonl
  // ({"answer": ...} or {"label": ...} per test record, for tasks score).
  std::string answers_dir;
  bool progress = true;
};
// Scores every model and the frequency baseline on the test split; returns
// {"task", "n_train", "n_test", "results": [{"name", ...TaskScore...}]}.
nlohmann::json evaluate_tasks(const std::vector<TaskRecord>& records, const TaskEvalOptions& opt);

}  // namespace tracelm
