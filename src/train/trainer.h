// Training of the Llama model on encoded call graphs (paper §3; docs/architecture.md, "Training"):
// pre-training (causal LM on packed sequences of encoded graphs) and
// instruction tuning (loss only on the answer), with LoRA on a base model or
// full training (from scratch with a preset, or full fine-tuning).
//
// Contract:
//  - Deterministic for a given seed and thread count: the data order of
//    epoch e comes from Rng(seed + e), encodings are redrawn every epoch
//    (fresh phrase/attribute shuffles and drops), dropout uses libtorch's
//    generator, whose state is checkpointed.
//  - Checkpoints (every save_every steps and at the end) are written to a
//    temporary directory and renamed into place: a killed run leaves the
//    previous checkpoint. resume continues from it and reaches the same loss
//    at the same step as an uninterrupted run (tested).
//  - Pre-training records are not packed across: each encoded graph
//    (tabular) or each unit of the recursive encoding (condition line +
//    layer, as generation produces it) is its own BOS ... EOS sequence.
//  - Pre-encoded text (TrainData from an EncodedText, as `tracelm encode`
//    writes it) gives the same records: recursive text is cut into the same
//    units, so a model sees the same kind of sequences either way; text is
//    not redrawn per epoch (only the order of its graphs or samples).
//  - Device (TrainConfig::device, model/device.h): on a GPU the frozen weights
//    and activations are bfloat16, the trainable parameters (LoRA, or all in
//    full training) and the AdamW state float32; on the CPU float32 throughout.
//  - Data parallel (TrainConfig::sync, distributed.h): every rank draws the
//    same epoch order and runs forward/backward on its own contiguous share of
//    each global batch; the trainable gradients (and the loss and token sums)
//    are summed over the ranks after backward, so every step is the
//    one-process step on the same global batch up to floating-point rounding
//    (tested). Rank 0 alone writes the tokenizer, metrics, checkpoints and the
//    model; a checkpoint holds global state only, so --resume works with
//    another number of ranks. Dropout masks (LoRA dropout) differ per rank.
//  - The output directory holds what generation needs: the model (or the
//    adapter plus a reference to its base), tokenizer.model, stats.json
//    (corpus statistics and the rare-call/high-latency statistics), and
//    metrics.jsonl (one JSON object per logged step).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "encode/condition_stats.h"
#include "encode/instruction.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {

// The collective operations data-parallel training needs (distributed.h
// implements them over c10d; null TrainConfig::sync: one process). Tensors may
// live on any device; every rank must call each operation in the same order.
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Sums every tensor over the ranks, in place.
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // Every rank receives `root`'s values, in place.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  virtual void barrier() = 0;
};

struct TrainConfig {
  std::string stage = "pretrain";    // "pretrain" or "instruct"
  std::string format = "recursive";  // pretrain encoding: "recursive" or "tabular"
  int64_t context = 512;             // tokens per sequence
  int64_t micro_batch = 8;           // sequences per forward/backward
  int64_t batch = 64;                // sequences per optimizer step (gradient accumulation)
  double lr = 3e-4;                  // peak learning rate (instruct default 1e-4)
  double min_lr_ratio = 0.1;         // cosine decays to lr * min_lr_ratio
  double weight_decay = 0.1;         // on matrices only
  int64_t warmup = 400;              // steps (capped at 10% of the run)
  double grad_clip = 1.0;
  int epochs = 1;
  int64_t max_steps = 0;     // 0: as many as the epochs give
  int64_t stop_after = 0;    // stop early at this step (simulates a kill; schedule unchanged)
  double time_budget_s = 0;  // stop (and save) after this many seconds; 0: none
  // On resume with a time budget: fit the cosine's length anew to this run's
  // budget (a finished run continued for longer) instead of keeping the
  // checkpoint's fitted length.
  bool refit_schedule = false;
  int64_t eval_every = 50;   // validation loss every N steps (0: only at the end)
  int64_t save_every = 100;  // checkpoint every N steps
  int64_t log_every = 10;
  uint64_t seed = 1;
  bool shuffle = true;  // phrase/attribute shuffles (off: canonical text, e.g. to test overfitting)
  double p_drop = 0.1, p_drop_latency = 0.5;
  double instruction_fraction = 0.05;  // instruct: fraction of graphs used
  bool lora = true;                    // with a base model: LoRA (else full fine-tuning)
  LoraConfig lora_config;
  bool progress = true;
  std::string device = "cpu";    // "cpu", "cuda" or "cuda:N" (model/device.h)
  GradientSync* sync = nullptr;  // data parallel across processes (not owned); null: one process
};

// The learning-rate schedule: linear warm-up over `warmup` steps to `peak`,
// then a cosine decay to peak * min_ratio at step `steps` (and flat after),
// as nanoGPT's get_lr.
struct Schedule {
  double peak = 3e-4, min_ratio = 0.1;
  int64_t warmup = 0, steps = 1;
};
double cosine_lr(int64_t step, const Schedule& s);

// Where a run stands: what a checkpoint holds besides tensors.
struct TrainState {
  int64_t step = 0, epoch = 0;
  int64_t cursor = 0;  // next sequence of the epoch
  int64_t total = 0;   // steps the run will take
  Schedule schedule;
  bool schedule_fitted = false;  // schedule.steps fitted to a time budget (kept on resume)
  double first_val_loss = 0;
};

// A checkpoint directory: weights.safetensors (the trainable parameters,
// float32), optimizer.pt, rng.pt (the generator of the model's device) and
// state.json. save_checkpoint writes DIR.tmp and renames it into place, so a
// killed run leaves the previous checkpoint whole. load_checkpoint returns
// false when DIR holds none, and loads tensors onto the model's device.
void save_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& opt,
                     const TrainState& state);
bool load_checkpoint(const std::string& dir, Llama& model, torch::optim::Optimizer& opt,
                     TrainState* state);

// What to start from.
struct TrainStart {
  std::string base_dir;     // a Hugging Face model directory (with tokenizer.model)
  std::string adapter_dir;  // optional: continue this LoRA adapter (instruct after pretrain)
  std::string preset;       // from scratch: "tiny", "small" or "base" (needs a tokenizer)
  std::string tokenizer;    // from scratch: tokenizer.model (trained on the corpus if empty)
  // A tokenizer trained here keeps the corpus's most frequent callee names
  // whole: up to this many names become user-defined pieces ("MS_48488" and
  // " MS_48488"), so that the model writes a name as one token instead of
  // digit by digit (0: none, names split as any text). On the Alibaba split
  // (small preset, 20 min) it cut popular-call KL from 3.34 to 2.75 (docs/generation.md).
  int64_t name_tokens = 1000;
};

// The `n` most frequent callee names of the graphs (ties by name), as the
// pieces a tokenizer keeps whole: each name, and the name after a space.
std::vector<std::string> name_symbols(const std::vector<CallGraph>& graphs, int64_t n);

// Process-wide (glibc malloc): large blocks come from the heap and freed
// memory stays there, so that each training step reuses the previous step's
// activations instead of mapping fresh pages and faulting them in (about a
// sixth of a base-preset step otherwise). The process keeps its peak memory
// until it exits. train_model() calls it; idempotent.
void retain_freed_memory();

LlamaConfig preset_config(const std::string& name, int64_t vocab_size, int64_t context);

// The demo's quick run of the tiny preset: context 256, batch 16, lr 2e-3,
// bounded by `seconds` of training rather than by epochs.
TrainConfig quick_train_config(double seconds, uint64_t seed);

// The cosine schedule's length for a run that a time budget will stop:
// `step` steps took `elapsed_s` of `budget_s`; the steps the remaining time
// allows at that pace, in [step + 1, total]. `total` when there is no budget
// or nothing measured yet. train_model() fits it once, after
// kScheduleFitStep steps, so that a time-budgeted run decays its learning
// rate before the budget stops it (and keeps it in the checkpoint, so
// --resume follows the same schedule).
int64_t time_fitted_steps(int64_t total, int64_t step, double elapsed_s, double budget_s);
inline constexpr int64_t kScheduleFitStep = 20;

// Pre-encoded training text (docs/encodings.md), cut into training records.
struct EncodedText {
  std::string format;  // "recursive", "tabular" or "instruction"
  // recursive: the units of each graph (condition line + body, the first one
  // starting with "[GENERATE GRAPH]"), as encode_recursive_units() gives
  // them; tabular: one record per graph.
  std::vector<std::vector<std::string>> graphs;
  std::vector<InstructionSample> samples;  // instruction
  std::vector<CallGraph> decoded;          // recursive, tabular: the graphs the text holds
};
// Parses text written by `tracelm encode` (plain text, not --jsonl); the
// format is recognized from the first record. Every record is decoded;
// malformed text throws InputError(name, line, what).
EncodedText parse_encoded_text(std::string_view text, const std::string& name);
EncodedText read_encoded_text(const std::string& path);

// One training sequence: tokens, and the first index whose token is a target.
struct TrainSequence {
  std::vector<int32_t> tokens;
  int32_t loss_from = 1;
  bool operator==(const TrainSequence&) const = default;
};

// The sequences training sees, epoch by epoch: graphs encoded on the fly, or
// pre-encoded text. Pre-training: every record (recursive unit, tabular
// graph) is BOS text EOS, cut into context + 1 windows when longer; instruct:
// BOS question answer EOS with targets from the answer on, truncated to
// context + 1. Keeps references to its arguments.
class TrainData {
 public:
  // `stats`: the rare-call/high-latency statistics of instruction samples.
  TrainData(const std::vector<CallGraph>& graphs, const ConditionStats* stats, const Tokenizer& tok,
            const TrainConfig& cfg);
  TrainData(const EncodedText& text, const Tokenizer& tok, const TrainConfig& cfg);
  // Deterministic in (seed, epoch): graph order (and instruct sample order)
  // shuffled with one Rng; on the fly, encodings drawn from the same Rng.
  std::vector<TrainSequence> epoch(uint64_t seed, int64_t epoch) const;

 private:
  const std::vector<CallGraph>* graphs_ = nullptr;
  const EncodedText* text_ = nullptr;
  const Tokenizer& tok_;
  const TrainConfig& cfg_;
  const ConditionStats* stats_ = nullptr;
  std::vector<size_t> chosen_;  // graphs (or text graphs) used
};

struct TrainResult {
  int64_t steps = 0;
  double final_loss = 0, final_val_loss = 0, first_val_loss = 0;
  double tokens_per_s = 0;
  std::string output_dir;
};

// Trains on `train` (validation loss on `val`), writing into out_dir.
TrainResult train_model(const std::vector<CallGraph>& train, const std::vector<CallGraph>& val,
                        const TrainStart& start, const TrainConfig& cfg, const std::string& out_dir,
                        bool resume = false);

// Trains on pre-encoded text (`val` may be empty). stats.json: from `corpus`
// when given, else from the graphs the text holds (recursive, tabular), else
// (instruction text) the adapter's stats.json; a warning says which.
TrainResult train_model(const EncodedText& train, const EncodedText& val,
                        const std::vector<CallGraph>& corpus, const TrainStart& start,
                        const TrainConfig& cfg, const std::string& out_dir, bool resume = false);

}  // namespace tracelm
