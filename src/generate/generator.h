// Recursive generation (system.md §4): from a request, the root layer's
// conditions; each generated layer's <subgraph> blocks become new pending
// layers; pending layers of all graphs in flight are decoded together in
// batches over the KV cache; edges are assembled with full dot-decimal ids.
//
// This is the unconstrained generator: a layer whose text does not parse, or
// breaks the layer rules checked here, is generated again (up to `retries`
// times) and the graph fails after that. Constrained decoding (valid by
// construction) builds on it.
//
// Contract: deterministic for a seed, whatever the batch size (each layer
// attempt has its own sampler chain seeded from the seed, the graph index,
// the layer's position in the graph and the attempt number).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/call_graph.h"
#include "encode/condition_stats.h"
#include "encode/recursive.h"
#include "generate/sampler.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {

struct GenerateRequest {
  std::optional<std::string> service;  // drawn from the training services when absent
  std::optional<int64_t> num_edges, depth, latency;
};

struct GeneratorOptions {
  SamplingParams sampling;
  int64_t batch = 16;              // layers decoded together
  int retries = 3;                 // new attempts for a layer that fails
  int64_t max_layer_tokens = 768;  // generated tokens per layer
  int64_t max_layers = 256;        // per graph
};

struct GeneratedGraph {
  CallGraph graph;
  bool complete = false;  // every layer generated and parsed
  int64_t layers = 0, attempts = 0;
  std::string error;  // why the graph failed, when it did
};

// A trained model directory: a full model (config.json + model.safetensors)
// or a LoRA adapter whose adapter_config.json names its base directory.
struct ModelBundle {
  Llama model{nullptr};
  std::optional<Tokenizer> tokenizer;
  ConditionStats stats;
  std::vector<std::pair<std::string, uint64_t>> services;  // (service, graphs) from stats.json
};
ModelBundle load_model_bundle(const std::string& dir, const std::string& adapter = "");

class RecursiveGenerator {
 public:
  RecursiveGenerator(ModelBundle& bundle, GeneratorOptions opt) : b_(bundle), opt_(opt) {}
  // The root condition line for a request ("[GENERATE GRAPH]..."), drawing
  // open attributes from the training statistics with rng.
  std::string root_prompt(const GenerateRequest& r, Rng& rng) const;
  std::vector<GeneratedGraph> generate(const std::vector<GenerateRequest>& reqs, uint64_t seed);

 private:
  ModelBundle& b_;
  GeneratorOptions opt_;
};

}  // namespace tracelm
