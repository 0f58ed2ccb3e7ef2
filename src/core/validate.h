// Structural rules of a call graph (docs/architecture.md, "Structural rules") and the validator.
//
// Contract:
//  - validate() never throws: an invalid graph is data. It returns every
//    violation found, each with a code and the edge it concerns.
//  - Works on graphs in any edge order (it indexes by id internally).
//  - Rules: root "0" present and called by USER; no duplicate ids; every
//    non-root edge's parent present; caller == parent's callee;
//    start <= finish; child start >= parent start; child finish <= parent
//    finish; start >= 0; no missing field (empty or a missing-data marker);
//    known type; a service id.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"

namespace tracelm {

enum class Rule : uint8_t {
  kEmptyGraph = 0,     // no edges at all
  kMissingRoot,        // no edge "0"
  kRootNotFromUser,    // edge "0" not called by USER
  kDuplicateId,        // two edges with the same rpc id
  kParentMissing,      // parent id absent (or a top-level id other than "0")
  kCallerMismatch,     // caller != callee of the parent edge
  kStartAfterFinish,   // start > finish
  kNegativeStart,      // start < 0
  kStartBeforeParent,  // child starts before its parent (clock skew in real data)
  kFinishAfterParent,  // child finishes after its parent
  kMissingField,       // empty service/caller/callee or a missing-data marker
  kUnknownType,        // type not one of http, rpc, mc, db, mq
  kCount
};
inline constexpr int kNumRules = static_cast<int>(Rule::kCount);

std::string_view rule_code(Rule r);         // stable snake_case code, e.g. "caller_mismatch"
std::string_view rule_description(Rule r);  // one line for humans

struct Violation {
  Rule rule;
  int64_t edge = -1;   // index into CallGraph::edges; -1 for graph-level rules
  std::string rpc_id;  // id of that edge ("" for graph-level rules)
  std::string detail;  // e.g. "start 3 < parent 0.1 start 5"
};

// Every violation of `g`: graph-level ones, then per edge in edge order.
std::vector<Violation> validate(const CallGraph& g);

// Severity. kStartBeforeParent is a warning: real data breaks it by 1-2 ms
// (clock skew at the root) in about 0.7% of graphs, and the paper's data kept
// them. Every other rule is an error. A graph is valid when it has no error;
// strictly valid when it has no violation at all.
inline bool is_warning(Rule r) { return r == Rule::kStartBeforeParent; }
bool is_valid(const std::vector<Violation>& vs, bool strict = false);

// True for strings that stand for missing data in Alibaba traces:
// "", "UNKNOWN", "UNAVAILABLE", "(?)", "?", "NAN"/"nan", "null".
bool is_missing_marker(std::string_view s);

// Per-rule counters over many graphs.
struct ValidationSummary {
  uint64_t graphs = 0;
  uint64_t valid_graphs = 0;                      // no error (warnings allowed)
  uint64_t strict_valid_graphs = 0;               // no violation at all
  std::array<uint64_t, kNumRules> violations{};   // count of violations per rule
  std::array<uint64_t, kNumRules> graphs_with{};  // graphs with >= 1 violation of the rule
  void add(const std::vector<Violation>& vs);
};

}  // namespace tracelm
