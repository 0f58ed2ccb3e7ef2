// The bookkeeping of recursive generation (docs/generation.md), without the model:
// requests become root prompts, generated unit bodies become edges with full
// dot-decimal ids, and each "<subgraph>" line becomes a pending layer job.
// The generator (generator.h) decodes jobs with the model; tests drive the
// same assembler with the constraint automaton alone.
//
// Contract:
//  - Jobs come out FIFO, so a graph's layers are produced roughly in
//    pre-order and many graphs' layers interleave in one batch.
//  - finish() never throws on bad text: a layer that does not parse or
//    breaks the announced conditions is retried (up to `retries` times),
//    then its graph fails with the reason.
//  - A graph is complete when every layer was generated; take() canonicalizes
//    the edges (pre-order).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/call_graph.h"
#include "encode/recursive.h"
#include "encode/text_format.h"
#include "generate/layer_constraint.h"
#include "stats/trained_stats.h"  // CorpusPriors
#include "util/rng.h"

namespace tracelm {

// A call the user wants in the graph (--rare-call MS_a,MS_b,T).
struct CallRequest {
  std::string caller, callee, type;  // type empty: any
  // Parses "CALLER,CALLEE[,TYPE]"; nullopt (with a message) when malformed.
  static std::optional<CallRequest> parse(const std::string& text, std::string* error);
};

struct GenerateRequest {
  std::optional<std::string> service;  // drawn from the training services when absent
  std::optional<int64_t> num_edges, depth, latency;
  // Instruction format, no latency given: "Build a call graph with high
  // latency" (recursive prompts carry a high latency value instead).
  bool high_latency = false;
  // The graph must contain this call. A caller of USER makes it the root
  // call; any other caller becomes the service's entry microservice (the
  // root call's callee) and the call one level below it, so the graph has
  // depth >= 2 (the only place a recursive layer can be steered to: a
  // layer's caller is fixed by its parent edge).
  std::optional<CallRequest> call;
};

// True when g has an edge caller -> callee of the type (any type when empty).
bool has_call(const CallGraph& g, const CallRequest& c);

// The root layer's conditions for a request. Open attributes (service,
// number of edges, depth, latency) are copied from one training graph drawn
// uniformly among those that agree with the attributes the request fixes
// (CorpusPriors::roots: their joint distribution). Without such a graph (or
// stats from before version 2), an open service is drawn from the priors'
// services, an open number of edges from their size distribution
// (restricted to sizes >= the requested depth), and depth and latency are
// left out for the model to choose. Throws
// std::invalid_argument for requests no graph can meet (e.g. depth > edges)
// or when no service can be chosen.
LayerConditions root_conditions(const GenerateRequest& r, const CorpusPriors& priors, Rng& rng);

struct GeneratedGraph {
  CallGraph graph;
  bool complete = false;  // every layer generated and parsed
  int64_t layers = 0, attempts = 0, tokens = 0;
  std::string error;  // why the graph failed, when it did
};

// One unit to generate.
struct LayerJob {
  size_t graph = 0;                     // index of the graph
  std::string prompt;                   // condition line, with "\n"
  std::string prefix;                   // full id of the parent edge ("" at the root)
  std::string start_node;               // caller of the layer's edges
  Attributes announced;                 // the conditions the prompt states
  std::optional<RequiredCall> require;  // a call the unit must contain
  bool item = false;                    // a part of a split (some of a wide layer's calls)
  // An item: its split's width and where the item starts in it (e.g. 91
  // and 18 for the second item of a 91-call layer whose first has 18
  // calls), the outermost split's when splits nest; 0 when the split's
  // conditions did not state them.
  int64_t split_width = 0, split_offset = 0;
  uint64_t split_key = 0;  // an item: its (outermost) split's key
  // Where the unit sits in its graph's tree: 0 at the root, and
  // mix(parent's key, i + 1) for the parent's i-th subgraph. The decoding
  // seed derives from it (with the attempt), so a graph does not depend on
  // the order in which a batch finishes its layers.
  uint64_t key = 0;
  int attempt = 0;
};

// The instruction-format question for a unit to generate: its conditions
// and the natural-language sentences that apply (request_sentences).
std::string instruction_prompt(const LayerJob& j, const GenerateRequest& r);

class GraphAssembler {
 public:
  // `instruction`: finish() reads instruction answers (docs/encodings.md
  // §4), parsed together with the job's prompt (the question), which the
  // caller sets before decoding; otherwise recursive unit bodies.
  GraphAssembler(size_t graphs, int retries, int64_t max_layers, bool instruction = false);
  // The root unit of graph i: "[GENERATE GRAPH]" + conditions (+ the
  // request's call, as the root's requirement).
  void add_root(size_t graph, const LayerConditions& c,
                const std::optional<CallRequest>& call = std::nullopt);
  bool empty() const { return pending_.empty(); }
  size_t pending() const { return pending_.size(); }
  LayerJob pop();
  // The generated body of a job ("<layer>...</layer>" or a split), and the
  // tokens it took.
  void finish(LayerJob job, std::string text, int64_t tokens = 0);
  // The job could not be generated (e.g. token budget): retry or fail.
  void fail(LayerJob job, const std::string& why, int64_t tokens = 0);
  const GeneratedGraph& graph(size_t i) const { return out_[i]; }
  std::vector<GeneratedGraph> take();

 private:
  void retry_or_fail(LayerJob job, const std::string& why);
  std::vector<GeneratedGraph> out_;
  std::vector<int64_t> layers_;  // units queued per graph, for max_layers
  std::deque<LayerJob> pending_;
  int retries_;
  int64_t max_layers_;
  bool instruction_;
};

}  // namespace tracelm
