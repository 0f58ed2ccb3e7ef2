// Generation with a trained model (docs/generation.md): recursive (layer by layer,
// the paper's method) and tabular (whole graphs, the GReaT-style baseline).
//
// Decoding is continuous batching over one ragged KV cache: up to `batch`
// sequences advance together, a sequence that finishes leaves the batch at
// once and a pending one joins (its prompt is prefilled and its keys and
// values are merged into the cache). For recursive generation the pending
// sequences are the layers of all graphs in flight (assembler.h).
//
// Constrained mode (the default) decodes every layer through a
// LayerConstraint (layer_constraint.h): the sampled token is checked first;
// only when its text breaks the layer's rules is the distribution masked to
// the tokens that keep it completable, and the token drawn again. Layers
// then parse and obey their conditions by construction. Unconstrained mode
// regenerates a failing layer up to `retries` times.
//
// Contract: deterministic for a seed, whatever the batch size: each
// sequence (a layer attempt) has its own sampler chain, seeded from the
// seed, the graph index, the layer's position in the graph and the attempt
// (up to floating-point differences between batch shapes, which the tests
// check do not change the tokens of a small model).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/call_graph.h"
#include "encode/condition_stats.h"
#include "generate/assembler.h"
#include "generate/layer_constraint.h"
#include "generate/sampler.h"
#include "model/cpu_kernels.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {

struct GeneratorOptions {
  SamplingParams sampling;
  int64_t batch = 16;       // sequences decoded together
  bool constrained = true;  // valid by construction
  // Constrained: destinations only from the training corpus's callees
  // (ModelBundle::names), when the model directory has them.
  bool known_names = true;
  // Constrained: a layer's destinations only from the callees its caller
  // calls in the training corpus (ModelBundle::callees_of), when the caller
  // has any there and the layer has no required call; else known_names
  // applies. Off by default: on the Alibaba split it moved popular-call KL
  // only from 3.20 to 3.11 (docs/generation.md), the model's loss there is
  // coverage of the real calls, not invented ones.
  bool known_calls = false;
  // Constrained: a layer opens subgraphs preferably under edges whose
  // destination calls others in the training corpus (ModelBundle::callers):
  // on TrainTicket, 16% of graphs gave a database (`sql`, a leaf in every
  // training graph) calls of its own. Any edge stays allowed when no such
  // one is left, so that every request still completes.
  bool known_callers = true;
  // Constrained: a subgraph line's num_edges at most the most calls below
  // its destination in the training corpus (ModelBundle::subtree_caps,
  // LayerSpec::subtree_caps), and large enough that the later lines can
  // hold the rest; a soft rule: when no value meets it, the plain values
  // stand, so every request still completes. Likewise at least the fewest
  // calls below one call to it in training (SubtreeSize::least). And with
  // known_layers, a layer whose unit states num_edges follows only those of
  // its caller's known layers whose callees' caps can hold the calls below
  // them (layers_holding), when some can: on TrainTicket the model sent a
  // 63-call request for ts-preserve-service to ts-travel-service (at most 50
  // calls below it in training), and the rest went under calls that never
  // had them (fan-out EMD 0.139 -> 0.077, docs/generation.md).
  bool known_sizes = true;
  // Constrained: a layer's destinations, in edge order, are one of the
  // sequences its caller's layers of that width had in training
  // (ModelBundle::layers, LayerSpec::layers), when it had any; not in a
  // split's item (see known_splits) or a layer with a required call. Soft
  // like the callers rule. A small model mixes two of a caller's patterns into a layer no
  // graph has (TrainTicket's cancel service); with the rule, TrainTicket's
  // popular-call KL fell from 0.0045 to 0.0027 (docs/generation.md), and
  // Alibaba's moved within its seed sd. A root layer's "caller" is its
  // service: its one call goes to one of the entry microservices the
  // service's training graphs of about its size had (entries_for), when the
  // service had any, else to one of any service's (ModelBundle::any_entry).
  bool known_layers = true;
  // Constrained, with known_layers: the root call goes to one entry drawn
  // among those its service's training graphs of about its size had, in
  // proportion to how many entered there (draw_entry), rather than to any
  // of them the model picks. At temperature 0.6 the model favoured a
  // service's most common entries: a service whose 1-call graphs enter at
  // dozens of microservices got a few of them (docs/generation.md).
  bool draw_entries = true;
  // Constrained, with known_layers: a split (a layer of more than 15 calls)
  // follows one of its caller's training splits, of its width when there is
  // one, drawn per split; each item takes the calls at its place
  // (split_item_names). Off by default: on the Alibaba split it copies the
  // training splits' callees exactly (in-degree EMD 0.055 -> 0.031 under
  // --like), but the held-out graphs' wide layers differ from training's
  // and popular-call KL rose from 0.778 to 0.800 (--like) and 0.893 to
  // 0.960 (open, x4) over 10 seeds (docs/generation.md).
  bool known_splits = false;
  // Constrained: an edge lasts at most its destination's longest call in the
  // training corpus (ModelBundle::durations, LayerSpec::durations). A small
  // model wrote calls of seconds under a long root to callees whose calls
  // never lasted 10 ms, and single graphs decided the response-time EMD.
  bool known_durations = true;
  // Constrained: an edge's type is one its caller used with its destination
  // in the training corpus, else one the destination was called with there
  // (ModelBundle::types, LayerSpec::types; the fixed phrase order writes the
  // destination first). A small model wrote 4% of its calls with a type
  // their callee never had (MS_28617 as rpc, a memcached).
  bool known_types = true;
  // Constrained: a subgraph line's num_current_edges (the width of the
  // layer under the call) is drawn, per line, among the widths the calls to
  // its destination had in training with a subtree size the line may still
  // take (else the nearest such sizes), in proportion to how many calls had
  // each (ModelBundle::shapes, LayerSpec::shapes, draw_shape), rather than
  // left to the model; when the callee has no shape of a width the line
  // allows, the model's pick stands. Not in a split. At
  // temperature 0.6 a small model wrote MS_63670's 5-call layer with 4
  // calls five times as often as training has it; with the draw, fan-out
  // (1-5 calls) comes out as in training samples (docs/generation.md).
  bool draw_widths = true;
  // Constrained, with known_layers: a layer's destinations follow one of
  // its known layers (of its width, holding its calls, with enough callers
  // for its subgraphs when some have), drawn in proportion to how many calls
  // to its node from its caller, with its size, made each in training (else
  // from any caller, or of any size: ModelBundle::priors.layer_counts,
  // draw_layer), rather than the one the model picks. At temperature 0.6 a
  // small model wrote MS_20664's minority layer (MS_68795, 27 of 140
  // training calls) in 4 of 115 calls, and MS_68795, a held-out heavy
  // hitter, fell out of the top 50 (docs/generation.md). Needs a stats.json
  // with layer_counts (session 17 on); else the model picks. Not in a split.
  bool draw_layers = true;
  // Prompts and answers in the instruction format (a model instruction-tuned
  // with `tracelm train --stage instruct`): the question states the
  // conditions in natural language, the answer carries the scratchpad.
  // Constrained decoding runs the InstructionConstraint (the recursive
  // automaton plus the scratchpad).
  bool instruction = false;
  int retries = 3;                  // new attempts for a layer that fails
  int64_t max_layer_tokens = 2048;  // generated tokens per layer (whole graph for tabular)
  int64_t max_layers = 256;         // per graph
  // libtorch threads while decoding (0: leave as is). Decode steps are small
  // matrix products; on 2 cores one thread was 4.6x faster than two
  // (bench/generate_bench.cc).
  int threads = 1;
  // CPU engine: decoding loops run in parallel, each on its own thread with
  // its own batch of `batch` sequences (0: one per hardware thread). The
  // graphs do not depend on it (each layer's sampling has its own seed).
  int decode_threads = 0;
  // The decoding engine: kCpu runs model/cpu_decoder.h (fp32 on the CPU:
  // preallocated per-sequence KV buffers, a few BLAS products per step);
  // kTorch runs the model's libtorch forward over a ragged KV cache (any
  // device). kAuto: kCpu for an fp32 model on the CPU, else kTorch.
  enum class Engine { kAuto, kCpu, kTorch };
  Engine engine = Engine::kAuto;
  // The CPU engine's product weights: fp32 (the model's exact forward) or
  // bf16 (model/cpu_kernels.h: about 1.3x graphs/s where the CPU has
  // AVX512-BF16; not the fp32 run's graphs, the same at any batch size).
  Precision precision = Precision::kF32;
  // Constrained: append the automaton's forced continuations without
  // sampling them (generate/jump_forward.h).
  bool jump_forward = true;
  // Constrained recursive units: an edge's phrases in one fixed order
  // (LayerSpec::fixed_order) rather than the order the model samples; their
  // heads become jump-forward text (about 1.25x graphs/s on the Alibaba
  // model, realism unchanged over 7 seeds: docs/generation.md).
  bool fixed_order = true;
  ConstraintLimits limits;
};

// Counters of one generate() call.
// What decides the graphs a run writes besides the model, the requests and
// the seed: sampling, the engine's precision, the phrase order and each
// rule of constrained decoding, as (name, value) pairs in a fixed order,
// e.g. ("temperature", "0.6"), ("known_types", "on"). A set's provenance
// carries them (eval/provenance.h).
std::vector<std::pair<std::string, std::string>> generator_settings(const GeneratorOptions& o);

struct GenerateStats {
  int64_t sequences = 0;      // layer attempts decoded
  int64_t tokens = 0;         // tokens generated (prompts excluded)
  int64_t prompt_tokens = 0;  // tokens prefilled
  int64_t masked_steps = 0;   // steps where the sampled token broke the constraint
  int64_t forward_calls = 0;
  int64_t forced_tokens = 0;  // of `tokens`: appended by jump-forward, not sampled
  // Wall seconds spent in the constraint's own work: checking the sampled
  // token, masking and redrawing, advancing the automaton.
  double constraint_seconds = 0;
  // CPU engine: wall seconds in the model's forward passes, and the part of
  // them in matrix products (BLAS).
  double model_seconds = 0, matmul_seconds = 0;  // summed over decoding threads
  void add(const GenerateStats& o);
};

// A trained model directory: a full model (config.json + model.safetensors)
// or a LoRA adapter whose adapter_config.json names its base directory.
struct ModelBundle {
  Llama model{nullptr};
  std::optional<Tokenizer> tokenizer;
  ConditionStats stats;
  CorpusPriors priors;  // services and sizes from stats.json
  // The callees of the training corpus that the automaton can write, sorted
  // (empty without statistics).
  std::shared_ptr<const std::vector<std::string>> names;
  // Per caller: the callees it calls in the training corpus (writable names
  // only, sorted).
  std::map<std::string, std::shared_ptr<const std::vector<std::string>>> callees_of;
  // The names that call others in the training corpus, sorted (empty
  // without statistics).
  std::shared_ptr<const std::vector<std::string>> callers;
  // (callee, most calls below one call to it in the training corpus), sorted
  // by name (CorpusPriors::subtree_max; empty for older stats.json files).
  std::shared_ptr<const std::vector<std::pair<std::string, SubtreeSize>>> subtree_caps;
  // (caller, width) -> the trie of its layers of that width in the training
  // corpus (CorpusPriors::layers, writable names only; empty for older
  // stats.json files).
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<const LayerTrie>> layers;
  // The one-call trie of every service's root callees in the training corpus
  // (CorpusPriors::entries, writable names only), for a service the corpus
  // does not have (null without entries); a known service's come from
  // entries_for(priors.entries, ...) per request.
  std::shared_ptr<const LayerTrie> any_entry;
  // (callee, its longest call in ms) in the training corpus, sorted by name
  // (CorpusPriors::durations; empty for older stats.json files).
  std::shared_ptr<const std::vector<std::pair<std::string, int64_t>>> durations;
  // Per callee, per caller: the types of their calls in the training corpus
  // (CorpusPriors::types; empty for older stats.json files).
  std::shared_ptr<const CallTypes> types;
  // Per callee: the (below, width) shapes of the subtrees under the calls
  // to it in the training corpus (CorpusPriors::shapes; empty for older
  // stats.json files).
  std::shared_ptr<const CallShapes> shapes;
};
ModelBundle load_model_bundle(const std::string& dir, const std::string& adapter = "");

class RecursiveGenerator {
 public:
  RecursiveGenerator(ModelBundle& bundle, GeneratorOptions opt) : b_(bundle), opt_(opt) {}
  // The root condition line for a request ("[GENERATE GRAPH]..."), drawing
  // open attributes from the training statistics with rng.
  std::string root_prompt(const GenerateRequest& r, Rng& rng) const;
  // Graphs for the requests, in order. `progress(done, complete)` is called
  // as graphs finish (done: finished graphs; complete: those without error).
  std::vector<GeneratedGraph> generate(const std::vector<GenerateRequest>& reqs, uint64_t seed,
                                       const std::function<void(size_t, size_t)>& progress = {});
  // Whole graphs in the tabular encoding ("[GENERATE GRAPH]attrs\n<edges>..."),
  // for a model trained on it. Unconstrained; a graph that does not decode
  // is retried up to `retries` times.
  std::vector<GeneratedGraph> generate_tabular(const std::vector<GenerateRequest>& reqs,
                                               uint64_t seed);
  const GenerateStats& stats() const { return stats_; }
  // The global index of reqs[0] (graph i is seeded from first + i), so that
  // a block of the requests generates what it would within all of them
  // (sharded.h: generation split across processes).
  void set_first_index(uint64_t first) { first_ = first; }

 private:
  ModelBundle& b_;
  GeneratorOptions opt_;
  GenerateStats stats_;
  uint64_t first_ = 0;
};

}  // namespace tracelm
