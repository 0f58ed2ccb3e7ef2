#include "core/validate.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

namespace tracelm {

namespace {
struct RuleInfo {
  std::string_view code, description;
};
constexpr RuleInfo kRules[] = {
    {"empty_graph", "the graph has no edges"},
    {"missing_root", "no root edge 0"},
    {"root_not_from_user", "the root edge 0 is not called by USER"},
    {"duplicate_id", "two edges share one rpc id"},
    {"parent_missing", "the parent edge of an edge is absent"},
    {"caller_mismatch", "an edge's caller differs from its parent's callee"},
    {"start_after_finish", "an edge starts after it finishes"},
    {"negative_start", "an edge starts before the trace (start < 0)"},
    {"start_before_parent", "an edge starts before its parent edge"},
    {"finish_after_parent", "an edge finishes after its parent edge"},
    {"missing_field", "a field is empty or a missing-data marker"},
    {"unknown_type", "an edge's type is not http, rpc, mc, db or mq"},
};
static_assert(std::size(kRules) == kNumRules);
}  // namespace

std::string_view rule_code(Rule r) { return kRules[static_cast<int>(r)].code; }
std::string_view rule_description(Rule r) { return kRules[static_cast<int>(r)].description; }

bool is_missing_marker(std::string_view s) {
  return s.empty() || s == "UNKNOWN" || s == "UNAVAILABLE" || s == "(?)" || s == "?" ||
         s == "NAN" || s == "nan" || s == "NaN" || s == "null" || s == "NULL";
}

std::vector<Violation> validate(const CallGraph& g) {
  std::vector<Violation> out;
  auto add = [&](Rule r, int64_t edge, std::string detail) {
    out.push_back({r, edge, edge >= 0 ? g.edges[edge].id.str() : std::string(), std::move(detail)});
  };
  if (g.edges.empty()) {
    add(Rule::kEmptyGraph, -1, "");
    return out;
  }
  if (is_missing_marker(g.service)) add(Rule::kMissingField, -1, "service id missing");

  std::unordered_map<std::string_view, size_t> by_id;
  by_id.reserve(g.edges.size() * 2);
  for (size_t i = 0; i < g.edges.size(); ++i) {
    auto [it, fresh] = by_id.emplace(g.edges[i].id.str(), i);
    if (!fresh) add(Rule::kDuplicateId, i, fmt::format("same id as edge #{}", it->second));
  }
  if (!by_id.count("0")) add(Rule::kMissingRoot, -1, "");

  for (size_t i = 0; i < g.edges.size(); ++i) {
    const Edge& e = g.edges[i];
    if (is_missing_marker(e.caller)) add(Rule::kMissingField, i, "caller missing");
    if (is_missing_marker(e.callee)) add(Rule::kMissingField, i, "callee missing");
    if (e.type == CallType::kUnknown) add(Rule::kUnknownType, i, "");
    if (e.start_ms < 0) add(Rule::kNegativeStart, i, fmt::format("start {}", e.start_ms));
    if (e.start_ms > e.finish_ms)
      add(Rule::kStartAfterFinish, i, fmt::format("start {} > finish {}", e.start_ms, e.finish_ms));
    if (e.id.is_top_level()) {
      if (e.id.str() != "0") {
        add(Rule::kParentMissing, i, "top-level id other than 0");
      } else if (e.caller != kUserNode) {
        add(Rule::kRootNotFromUser, i, fmt::format("caller {}", e.caller));
      }
      continue;
    }
    std::string pid = e.id.parent()->str();
    auto it = by_id.find(pid);
    if (it == by_id.end()) {
      add(Rule::kParentMissing, i, fmt::format("no edge {}", pid));
      continue;
    }
    const Edge& p = g.edges[it->second];
    if (e.caller != p.callee)
      add(Rule::kCallerMismatch, i,
          fmt::format("caller {} != parent {} callee {}", e.caller, pid, p.callee));
    if (e.start_ms < p.start_ms)
      add(Rule::kStartBeforeParent, i,
          fmt::format("start {} < parent {} start {}", e.start_ms, pid, p.start_ms));
    if (e.finish_ms > p.finish_ms)
      add(Rule::kFinishAfterParent, i,
          fmt::format("finish {} > parent {} finish {}", e.finish_ms, pid, p.finish_ms));
  }
  return out;
}

bool is_valid(const std::vector<Violation>& vs, bool strict) {
  for (const Violation& v : vs)
    if (strict || !is_warning(v.rule)) return false;
  return true;
}

void ValidationSummary::add(const std::vector<Violation>& vs) {
  ++graphs;
  if (is_valid(vs)) ++valid_graphs;
  if (vs.empty()) ++strict_valid_graphs;
  std::array<bool, kNumRules> seen{};
  for (const Violation& v : vs) {
    int r = static_cast<int>(v.rule);
    ++violations[r];
    if (!seen[r]) ++graphs_with[r];
    seen[r] = true;
  }
}

}  // namespace tracelm
