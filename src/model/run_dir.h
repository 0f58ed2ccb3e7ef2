// The files of a model directory, as leveldb's filename.h names the files of
// a database: one function per file, so that no stage spells a file name.
//
// A run directory (`tracelm train -o DIR`) holds either a full model
//   config.json  model.safetensors  tokenizer.model  stats.json  metrics.jsonl
// or a LoRA adapter (PEFT layout) over a base model named in its config
//   adapter_config.json  adapter_model.safetensors  tokenizer.model  stats.json  metrics.jsonl
// and, while training, checkpoint/ (the trainable tensors and the optimizer
// and data state; replaced atomically: checkpoint.tmp/ is written first,
// then renamed over checkpoint/, with checkpoint.old/ kept during the swap).
// A Hugging Face model directory has the first set (model.safetensors may
// be sharded: model.safetensors.index.json and its shards).
//
// stats.json: what generation needs to know of the training corpus
// (stats/trained_stats.h).
#pragma once

#include <string>

namespace tracelm::run_dir {

inline std::string config(const std::string& dir) { return dir + "/config.json"; }
inline std::string weights(const std::string& dir) { return dir + "/model.safetensors"; }
inline std::string adapter_config(const std::string& dir) { return dir + "/adapter_config.json"; }
inline std::string adapter_weights(const std::string& dir) {
  return dir + "/adapter_model.safetensors";
}
inline std::string tokenizer(const std::string& dir) { return dir + "/tokenizer.model"; }
inline std::string stats(const std::string& dir) { return dir + "/stats.json"; }
inline std::string metrics(const std::string& dir) { return dir + "/metrics.jsonl"; }
inline std::string checkpoint(const std::string& dir) { return dir + "/checkpoint"; }
inline std::string checkpoint_tmp(const std::string& dir) { return dir + "/checkpoint.tmp"; }
inline std::string checkpoint_old(const std::string& dir) { return dir + "/checkpoint.old"; }

}  // namespace tracelm::run_dir
