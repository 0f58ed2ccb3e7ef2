#include "ingest/graph_builder.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>

namespace tracelm {

namespace {
constexpr std::string_view kGraphRejectCodes[] = {
    "none",
    "no_usable_rows",
    "missing_root",
    "root_not_from_user",
    "parent_missing",
    "caller_mismatch",
    "missing_service",
    "too_deep",
    "finish_after_parent",
    "start_before_parent",
    "duplicate_graph",
};
static_assert(std::size(kGraphRejectCodes) == kNumGraphRejects);

GraphReject reject_for(Rule r, const Violation& v) {
  switch (r) {
    case Rule::kMissingRoot:
      return GraphReject::kMissingRoot;
    case Rule::kRootNotFromUser:
      return GraphReject::kRootNotFromUser;
    case Rule::kParentMissing:
      return GraphReject::kParentMissing;
    case Rule::kCallerMismatch:
      return GraphReject::kCallerMismatch;
    case Rule::kFinishAfterParent:
      return GraphReject::kFinishAfterParent;
    case Rule::kStartBeforeParent:
      return GraphReject::kStartBeforeParent;
    case Rule::kMissingField:
      return v.edge < 0 ? GraphReject::kMissingService : GraphReject::kNone;
    default:
      return GraphReject::kNone;  // cannot occur after row filtering
  }
}
}  // namespace

std::string_view graph_reject_code(GraphReject r) { return kGraphRejectCodes[static_cast<int>(r)]; }

BuiltTrace build_trace(const std::vector<SpillRow>& rows, const BuildOptions& opt) {
  BuiltTrace out;
  if (rows.empty()) return out;
  out.first_seq = rows.front().seq;
  out.graph.trace_id = std::string(rows.front().traceid);

  // One row per rpc id, the first in input order. Traces are small: a linear
  // scan beats a hash set up to a few dozen rows.
  std::vector<const SpillRow*> kept;
  kept.reserve(rows.size());
  std::unordered_set<std::string_view> ids;
  bool big = rows.size() > 48;
  for (const SpillRow& r : rows) {
    if (r.status != RowReject::kNone) continue;
    ++out.rows;
    if (!opt.keep_all) {
      bool dup = false;
      if (big) {
        dup = !ids.insert(r.rpc_id).second;
      } else {
        for (const SpillRow* k : kept) dup = dup || k->rpc_id == r.rpc_id;
      }
      if (dup) {
        ++out.duplicate_rows;
        continue;
      }
    }
    kept.push_back(&r);
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

namespace {
// A fast 64-bit hash of a byte string, 8 bytes at a time.
struct Hasher {
  uint64_t h;
  void bytes(std::string_view s) {
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      word(w);
    }
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    word(w ^ (static_cast<uint64_t>(s.size()) << 56));
  }
  void word(uint64_t w) {
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
};
}  // namespace

GraphDeduper::Key GraphDeduper::fingerprint(const CallGraph& g) {
  Hasher a{0x243f6a8885a308d3ull}, b{0x13198a2e03707344ull};
  auto mix = [&](std::string_view s) {
    a.bytes(s);
    b.bytes(s);
  };
  mix(g.service);
  for (const Edge& e : g.edges) {
    mix(e.id.str());
    mix(e.caller);
    mix(e.callee);
    uint64_t t[3] = {static_cast<uint64_t>(e.type), static_cast<uint64_t>(e.start_ms),
                     static_cast<uint64_t>(e.finish_ms)};
    for (uint64_t w : t) {
      a.word(w);
      b.word(w);
    }
  }
  return Key{a.h, b.h | 1};
}

bool GraphDeduper::seen(Key k) {
  size_t mask = slots_.size() - 1;
  for (size_t s = k.a & mask;; s = (s + 1) & mask) {
    if (slots_[s].b == 0) {
      slots_[s] = k;
      if (++size_ * 2 > slots_.size()) {  // grow at half full
        std::vector<Key> old(slots_.size() * 2);
        old.swap(slots_);
        mask = slots_.size() - 1;
        for (const Key& o : old) {
          if (o.b == 0) continue;
          size_t t = o.a & mask;
          while (slots_[t].b != 0) t = (t + 1) & mask;
          slots_[t] = o;
        }
      }
      return false;
    }
    if (slots_[s].a == k.a && slots_[s].b == k.b) return true;
  }
}

}  // namespace tracelm
