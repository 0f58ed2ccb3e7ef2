// The instruction (SFT) format (docs/encodings.md §4): one sample per unit
// of a graph, a question (the requirement and natural-language conditions)
// and an answer (the unit with the intermediate-instruction scratchpad).
//
// Contract:
//  - encode_instruction() is deterministic for a given Rng state. Without
//    ConditionStats the rare-call and high-latency sentences are never
//    emitted (they need corpus statistics).
//  - The scratchpad uses the unit's true num_edges and remaining_depth, as
//    the reference does, even when the requirement dropped them.
//  - parse_instruction() never throws, never recurses, allocates O(input).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "encode/condition_stats.h"
#include "encode/recursive.h"

namespace tracelm {

inline constexpr std::string_view kQuestionHead =
    "### Question: You are a trace generator that creates traces based on given requirements.";
inline constexpr std::string_view kAnswerHead = " ### Answer: ";

struct InstructionOptions {
  RecursiveOptions recursive;            // shuffles and root drops
  double p_keep_sentence = 0.9;          // each applicable standard sentence
  double p_rare_sentence = 0.5;          // a rare call of the layer, when it has one
  double p_distribution_sentence = 0.5;  // "latencies based on distributions" (root, no latency)
};

struct InstructionSample {
  std::string question;  // ends with "\n\n ### Answer: \n"
  std::string answer;    // ends with "</layer>\n" or "</split>\n"
};

// One sample per unit, in pre-order.
std::vector<InstructionSample> encode_instruction(const CallGraph& g, const ConditionStats* stats,
                                                  const InstructionOptions& opt, Rng& rng);

// The question text for a requirement line and sentences (layer samples have
// a "Conditions:" header; split samples do not).
std::string format_question(const std::string& requirement_line,
                            const std::vector<std::string>& sentences, bool split);

// The natural-language conditions of a generation request, for a model
// tuned on this format: every sentence of the inventory that applies to the
// requirement `req` (docs/encodings.md §4.3), none dropped, in the
// inventory's order. `root`: the graph's first unit; `split`: more than 15
// edges (the split sentences). `rare_call` (e.g. {"MS_1","MS_2","rpc"}),
// when not empty, adds "Include an edge from ... type"; `high_latency` adds
// "Build a call graph with high latency" at a root without a latency.
std::vector<std::string> request_sentences(const Attributes& req, bool root, bool split,
                                           const std::array<std::string, 3>& rare_call,
                                           bool high_latency);

// The answer's scratchpad lines after "</edges>" (layer) or "<split>" (split),
// ending with "finish generation" + close tag, computed from the unit body.
// `destinations[i]` is the destination of body edge i (for "copy start_node").
std::vector<std::string> scratchpad_lines(const ParsedUnit& unit, Rng* shuffle);

struct ParsedInstruction {
  Attributes requirements;
  std::vector<std::string> sentences;
  ParsedUnit unit;
  std::vector<std::string> scratchpad;  // answer lines after </edges> (or <split>), as written
};
bool parse_instruction(std::string_view text, ParsedInstruction* out, ParseError* err,
                       size_t* consumed = nullptr);

// Decodes the samples of one whole graph (concatenated, in pre-order, as
// encode_instruction() writes them) back into the graph.
bool decode_instruction_graph(std::string_view text, CallGraph* out, ParseError* err);

}  // namespace tracelm
