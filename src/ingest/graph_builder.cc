#include "ingest/graph_builder.h"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

namespace tracelm {

namespace {
constexpr std::string_view kGraphRejectCodes[] = {
    "none",           "no_usable_rows",  "missing_root",        "root_not_from_user",
    "parent_missing", "caller_mismatch", "missing_service",     "too_deep",
    "finish_after_parent", "start_before_parent", "duplicate_graph",
};
static_assert(std::size(kGraphRejectCodes) == kNumGraphRejects);

GraphReject reject_for(Rule r, const Violation& v) {
  switch (r) {
    case Rule::kMissingRoot: return GraphReject::kMissingRoot;
    case Rule::kRootNotFromUser: return GraphReject::kRootNotFromUser;
    case Rule::kParentMissing: return GraphReject::kParentMissing;
    case Rule::kCallerMismatch: return GraphReject::kCallerMismatch;
    case Rule::kFinishAfterParent: return GraphReject::kFinishAfterParent;
    case Rule::kStartBeforeParent: return GraphReject::kStartBeforeParent;
    case Rule::kMissingField: return v.edge < 0 ? GraphReject::kMissingService : GraphReject::kNone;
    default: return GraphReject::kNone;  // cannot occur after row filtering
  }
}
}  // namespace

std::string_view graph_reject_code(GraphReject r) { return kGraphRejectCodes[static_cast<int>(r)]; }

BuiltTrace build_trace(const std::vector<const SpillRow*>& rows, const BuildOptions& opt) {
  BuiltTrace out;
  if (rows.empty()) return out;
  out.first_seq = rows.front()->seq;
  out.graph.trace_id = std::string(rows.front()->traceid);

  std::unordered_set<std::string_view> ids;
  std::vector<const SpillRow*> kept;
  for (const SpillRow* r : rows) {
    if (r->status != RowReject::kNone) continue;
    ++out.rows;
    if (!opt.keep_all && !ids.insert(r->rpc_id).second) {
      ++out.duplicate_rows;
      continue;
    }
    kept.push_back(r);
  }
  if (kept.empty()) {
    out.reject = GraphReject::kNoUsableRows;
    return out;
  }
  int64_t t0 = kept.front()->timestamp_ms;
  for (const SpillRow* r : kept) t0 = std::min(t0, r->timestamp_ms);

  CallGraph& g = out.graph;
  g.edges.reserve(kept.size());
  const SpillRow* root = nullptr;
  for (const SpillRow* r : kept) {
    Edge e;
    e.id = *RpcId::parse(r->rpc_id);  // validated by parse_row
    e.caller = std::string(r->um);
    e.callee = std::string(r->dm);
    e.type = r->type;
    e.start_ms = r->timestamp_ms - t0;
    e.finish_ms = e.start_ms + r->rt_ms;
    if (!root && e.id.str() == "0") root = r;
    g.edges.push_back(std::move(e));
  }
  g.canonicalize();
  const SpillRow* svc = root ? root : kept.front();
  g.service = std::string(svc->service);
  if (g.service.empty() && root) g.service = std::string(root->dm);  // v2021: no service column
  if (opt.keep_all) return out;

  // Pick the rejection of highest precedence among the violations.
  std::vector<Violation> vs = validate(g);
  GraphReject best = GraphReject::kNone;
  const Violation* why = nullptr;
  for (const Violation& v : vs) {
    GraphReject gr = reject_for(v.rule, v);
    if (gr == GraphReject::kStartBeforeParent) {
      out.start_before_parent = true;
      if (!opt.strict) continue;
    }
    if (gr != GraphReject::kNone && (best == GraphReject::kNone || gr < best)) {
      best = gr;
      why = &v;
    }
  }
  int depth = g.depth();
  if (depth > opt.max_depth && (best == GraphReject::kNone || GraphReject::kTooDeep < best)) {
    best = GraphReject::kTooDeep;
    why = nullptr;
    out.detail = fmt::format("depth {} > {}", depth, opt.max_depth);
  }
  out.reject = best;
  if (why) out.detail = why->rpc_id.empty() ? why->detail : why->rpc_id + ": " + why->detail;
  return out;
}

bool GraphDeduper::seen(const CallGraph& g) {
  // Two independent 64-bit FNV-1a style hashes over a canonical serialization.
  uint64_t a = 1469598103934665603ull, b = 0x84222325cbf29ce4ull;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      a = (a ^ c) * 1099511628211ull;
      b = (b ^ c) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    a = (a ^ 0xff) * 1099511628211ull;  // field separator
    b = (b ^ 0xff) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
  };
  mix(g.service);
  for (const Edge& e : g.edges) {
    mix(e.id.str());
    mix(e.caller);
    mix(e.callee);
    mix(call_type_name(e.type));
    mix(std::to_string(e.start_ms));
    mix(std::to_string(e.finish_ms));
  }
  return !set_.insert(Key{a, b}).second;
}

}  // namespace tracelm
