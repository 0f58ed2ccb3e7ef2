// A TraceVAE-style graph VAE (Xie et al., WWW'23) in libtorch: one call
// graph's structure and per-call latency, scored by negative log-likelihood
// (higher = more anomalous). docs/downstream.md, "Anomaly detection".
//
// Contract:
//  - to_vae_graph(g): one node per call (edge) of g; node type = callee + "/"
//    + call type; sibling calls of one type under one parent are merged into
//    one node (latency = their mean duration, as TraceVAE's merged spans);
//    nodes in BFS order, so every parent precedes its children. nullopt when
//    the result has fewer than 2 or more than max_nodes nodes (TraceVAE keeps
//    2..32), or when g has no root.
//  - GraphVae factorises p(G) = p(z) p(structure | z) p(z2 | z)
//    p(latency | z2, structure): structure = node count (categorical),
//    node types (categorical per position; id 0 = a type unseen in training),
//    upper-triangular adjacency (Bernoulli); latency = per-node Normal of the
//    latency normalised per type by the training set's mean and standard
//    deviation (the deviation floored at 1 ms, the data's resolution).
//    Encoders q(z | structure) and q(z2 | structure, latency) and the latency
//    decoder are graph convolutions over the dense (max_nodes x max_nodes)
//    normalised adjacency.
//  - train(): ELBO, Adam; `epochs` over all parameters, then
//    `latency_epochs` over the latency half only (TraceVAE's two phases).
//    Everything (init, batches, noise) follows the seed: two runs with the
//    same seed, data and thread count give the same model and scores.
//  - nll(): -log p(G) by importance sampling with K samples of (z, z2) from
//    q, clipped at 1e5 (as TraceVAE). Defined for any graph of to_vae_graph.
//  - Not thread-safe; one model per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/call_graph.h"

namespace tracelm::downstream {

struct VaeGraph {
  std::vector<std::string> type;  // node type key
  std::vector<int> parent;        // parent node (-1 for the root); parent < node
  std::vector<double> latency;    // ms
  size_t size() const { return type.size(); }
};

std::optional<VaeGraph> to_vae_graph(const CallGraph& g, size_t max_nodes = 32);

struct VaeConfig {
  int64_t max_nodes = 32;
  int64_t embed = 16, hidden = 64, layers = 2, z = 8, z2 = 8;
  int epochs = 30, latency_epochs = 10;
  int64_t batch = 64;
  double lr = 1e-3, weight_decay = 1e-4, clip_norm = 10;
  // TraceVAE's published dimensions (operation embedding 40, 4 graph layers
  // of 500, z and z2 of 10, 40 + 20 epochs).
  static VaeConfig published();
  static VaeConfig small() { return {}; }
};

class GraphVae {
 public:
  explicit GraphVae(VaeConfig cfg = {});
  ~GraphVae();
  GraphVae(GraphVae&&) noexcept;
  GraphVae& operator=(GraphVae&&) noexcept;

  // Learns the type vocabulary and latency normalisation from `graphs`,
  // then trains. Throws std::invalid_argument on an empty set.
  void train(const std::vector<VaeGraph>& graphs, uint64_t seed);
  std::vector<double> nll(const std::vector<VaeGraph>& graphs, int samples, uint64_t seed);
  double last_loss() const { return last_loss_; }  // mean negative ELBO of the last epoch

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  VaeConfig cfg_;
  double last_loss_ = 0;
};

}  // namespace tracelm::downstream
