// Subcommands of the `tracelm` program. Each add_* registers one subcommand
// (options with help text and defaults) on the app; its callback runs it by
// calling a named library function. Where each lives:
//   ingest validate stats export sample   cmd_data.cc
//   encode                                cmd_encode.cc
//   tokenizer                             cmd_tokenizer.cc
//   baseline fit|generate                 cmd_baseline.cc
//   baseline tvae train|generate          cmd_tvae.cc      (libtorch)
//   evaluate                              cmd_evaluate.cc
//   demo                                  cmd_demo.cc
//   train score merge                     cmd_train.cc     (libtorch)
//   generate                              cmd_generate.cc  (libtorch)
//   eval accuracy                         cmd_accuracy.cc  (libtorch)
//   labels                                cmd_spans.cc
//   tasks make|score|report|finetune|...  cmd_tasks.cc     (finetune, synthesize, eval: libtorch)
//   downstream critical|anomaly           cmd_downstream.cc (anomaly: libtorch)
// A callback returns normally on success and throws on failure: InputError
// (bad input; exit 2), ExitCode (a chosen status, e.g. invalid graphs found).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "core/call_graph.h"

namespace tracelm::cli {

struct ExitCode {
  int code;
};

void add_ingest(CLI::App& app);
void add_validate(CLI::App& app);
void add_stats(CLI::App& app);
void add_export(CLI::App& app);
void add_sample(CLI::App& app);
void add_demo(CLI::App& app);
void add_encode(CLI::App& app);
// The model commands, only in builds with libtorch (TRACELM_WITH_TORCH):
void add_model_commands(CLI::App& app);     // train, score, merge (cmd_train.cc)
void add_generate_commands(CLI::App& app);  // generate (cmd_generate.cc)
void add_eval_commands(CLI::App& app);      // eval accuracy (cmd_accuracy.cc)
// The model half of `tracelm demo`: trains a tiny model for a bounded time on
// train_path, generates n graphs, returns them (libtorch builds only).
std::vector<tracelm::CallGraph> demo_train_and_generate(const std::string& train_path,
                                                        const std::string& val_path,
                                                        const std::string& out_dir, double minutes,
                                                        int64_t n, uint64_t seed);
void add_tokenizer(CLI::App& app);
void add_baseline(CLI::App& app);
void add_baseline_tvae(CLI::App& baseline);  // `baseline tvae` (cmd_tvae.cc, libtorch)
void add_evaluate(CLI::App& app);
void add_tasks(CLI::App& app);       // `tasks` (make, score; finetune, eval with libtorch)
void add_downstream(CLI::App& app);  // `downstream critical|anomaly` (anomaly: libtorch)

}  // namespace tracelm::cli
