#include "ingest/spans/span_graph.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <unordered_map>

#include <fmt/format.h>

namespace tracelm {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view first_word(std::string_view s) { return s.substr(0, s.find(' ')); }

bool is_sql_name(std::string_view name) {
  std::string_view w = first_word(name);
  for (std::string_view v :
       {"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT", "CALL"})
    if (w == v) return true;
  return starts_with(name, "sql.");
}

bool is_http_method(std::string_view w) {
  for (std::string_view m : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
    if (w == m) return true;
  return false;
}

// "pkg.Service/Method", "/pkg.Service/Method", "grpc.pkg.Service/Method".
bool is_grpc_method(std::string_view name) {
  if (!name.empty() && name[0] == '/') name.remove_prefix(1);
  size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= name.size()) return false;
  std::string_view svc = name.substr(0, slash), method = name.substr(slash + 1);
  if (svc.find('.') == std::string_view::npos) return false;
  auto word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  };
  return std::all_of(svc.begin(), svc.end(), word) &&
         std::all_of(method.begin(), method.end(), word) &&
         std::isalpha(static_cast<unsigned char>(svc[0]));
}

// The storage family a kind-less span's name implies ("" when none).
std::string_view storage_family(const Span& s) {
  if (is_sql_name(s.name)) return "sql";
  if (starts_with(s.name, "Redis") || starts_with(s.name, "redis")) return "redis";
  if (starts_with(s.name, "Mmc") || starts_with(s.name, "Memcached") ||
      starts_with(s.name, "memcached"))
    return "memcached";
  if (starts_with(s.name, "Mongo") || starts_with(s.name, "mongo")) return "mongodb";
  return "";
}

bool is_cache_system(std::string_view db) {
  for (std::string_view c : {"redis", "memcached", "valkey", "hazelcast", "couchbase", "geode",
                             "coherence", "ignite", "aerospike", "keydb", "dragonfly"})
    if (iequals(db, c)) return true;
  return false;
}

bool is_client_kind(SpanKind k) { return k == SpanKind::kClient || k == SpanKind::kProducer; }
bool is_server_kind(SpanKind k) { return k == SpanKind::kServer || k == SpanKind::kConsumer; }

// Children lists of a forest in one array (children of i, in index order).
class Children {
 public:
  explicit Children(const std::vector<size_t>& parent) : off_(parent.size() + 1, 0) {
    for (size_t p : parent)
      if (p != static_cast<size_t>(-1)) ++off_[p + 1];
    for (size_t i = 1; i < off_.size(); ++i) off_[i] += off_[i - 1];
    list_.resize(off_.back());
    std::vector<size_t> fill(off_.begin(), off_.end() - 1);
    for (size_t i = 0; i < parent.size(); ++i)
      if (parent[i] != static_cast<size_t>(-1)) list_[fill[parent[i]]++] = i;
  }
  std::span<size_t> operator[](size_t i) { return {list_.data() + off_[i], off_[i + 1] - off_[i]}; }

 private:
  std::vector<size_t> off_, list_;
};

// Span id -> index into the unique spans (the first span of each id), an
// open-addressing table without allocation per entry.
class IdIndex {
 public:
  static constexpr size_t kNone = static_cast<size_t>(-1);
  explicit IdIndex(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slot_.assign(cap, kNone);
  }
  // Adds `id` as span `index` unless present; true when added.
  bool insert(std::string_view id, size_t index, const std::vector<const Span*>& sp) {
    for (size_t s = hash(id);; s = (s + 1) & (slot_.size() - 1)) {
      if (slot_[s] == kNone) {
        slot_[s] = index;
        return true;
      }
      if (sp[slot_[s]]->span_id == id) return false;
    }
  }
  size_t find(std::string_view id, const std::vector<const Span*>& sp) const {
    for (size_t s = hash(id);; s = (s + 1) & (slot_.size() - 1)) {
      if (slot_[s] == kNone) return kNone;
      if (sp[slot_[s]]->span_id == id) return slot_[s];
    }
  }

 private:
  size_t hash(std::string_view id) const {
    return std::hash<std::string_view>()(id) & (slot_.size() - 1);
  }
  std::vector<size_t> slot_;
};

struct Call {
  size_t parent = static_cast<size_t>(-1);
  std::string callee;
  CallType type = CallType::kHttp;
  int64_t s = 0, e = 0;
  size_t span = 0;  // the callee-side span (the client span for a peer call)
  size_t order = 0;
  int depth = 1;
};

}  // namespace

std::string_view span_kind_name(SpanKind k) {
  switch (k) {
    case SpanKind::kUnspecified:
      return "unspecified";
    case SpanKind::kInternal:
      return "internal";
    case SpanKind::kServer:
      return "server";
    case SpanKind::kClient:
      return "client";
    case SpanKind::kProducer:
      return "producer";
    case SpanKind::kConsumer:
      return "consumer";
  }
  return "unspecified";
}

bool Span::set_attribute(std::string_view key, std::string_view value) {
  if (key == "tracelm.rpc_id" || key == "rpc.id") {
    rpc_id_attr = value;
  } else if (key == "tracelm.type") {
    type_attr = value;
  } else if (key == "tracelm.service") {
    service_attr = value;
  } else if (key == "tracelm.trace_id") {
    trace_id_attr = value;
  } else if (key == "db.system.name" || key == "db.system" || key == "db.type") {
    if (db_system.empty() || key == "db.system.name") db_system = value;
  } else if (key == "rpc.system.name" || key == "rpc.system") {
    if (rpc_system.empty() || key == "rpc.system.name") rpc_system = value;
  } else if (key == "component") {
    if (iequals(value, "grpc") || iequals(value, "thrift") || iequals(value, "dubbo")) {
      if (rpc_system.empty()) rpc_system = value;
    } else if (iequals(value, "net/http") || iequals(value, "http") || iequals(value, "nginx")) {
      has_http = true;
    }
  } else if (key == "http.request.method" || key == "http.method") {
    if (http_method.empty() || key == "http.request.method") http_method = value;
    has_http = true;
  } else if (starts_with(key, "http.") || key == "url.full" || key == "url.path") {
    has_http = true;
  } else if (key == "messaging.system") {
    messaging_system = value;
  } else if (key == "messaging.destination.name" || key == "messaging.destination") {
    if (messaging_destination.empty() || key == "messaging.destination.name")
      messaging_destination = value;
  } else if (key == "peer.service") {
    peer_service = value;
  } else if (key == "server.address" || key == "net.peer.name" || key == "peer.hostname") {
    if (server_address.empty() || key == "server.address") server_address = value;
  } else {
    return false;
  }
  return true;
}

void Span::resolve() {
  resolved = true;
  hint = span_call_type(*this).value_or(CallType::kUnknown);
  if (auto t = parse_call_type(type_attr)) hint = *t;
  peer.clear();
  if (is_client_kind(kind)) {
    for (const std::string* v :
         {&peer_service, &db_system, &messaging_destination, &server_address, &messaging_system})
      if (!v->empty()) {
        peer = *v;
        break;
      }
  } else if (kind == SpanKind::kUnspecified) {
    peer = db_system.empty() ? std::string(storage_family(*this)) : db_system;
  }
}

const SpanResolveCache::Resolved& SpanResolveCache::resolve(SpanKind kind, std::string_view name,
                                                            bool* hit) {
  key_.assign(1, static_cast<char>(kind));
  key_ += name;
  auto it = by_key_.find(key_);
  if (hit) *hit = it != by_key_.end();
  if (it != by_key_.end()) return it->second;
  scratch_.kind = kind;
  scratch_.name.assign(name);
  scratch_.resolve();
  Resolved r{scratch_.hint, scratch_.peer};
  if (by_key_.size() >= kMaxEntries) {
    last_ = std::move(r);
    return last_;
  }
  return by_key_.emplace(key_, std::move(r)).first->second;
}

bool SpanResolveCache::resolve(Span& s) {
  const bool plain = s.db_system.empty() && s.rpc_system.empty() && s.http_method.empty() &&
                     s.messaging_system.empty() && s.messaging_destination.empty() &&
                     s.peer_service.empty() && s.server_address.empty() && !s.has_http &&
                     s.type_attr.empty();
  if (!plain) {
    s.resolve();
    return false;
  }
  bool hit = false;
  const Resolved& r = resolve(s.kind, s.name, &hit);
  s.resolved = true;
  s.hint = r.hint;
  s.peer = r.peer;
  return hit;
}

std::string_view span_reject_code(SpanReject r) {
  switch (r) {
    case SpanReject::kNone:
      return "none";
    case SpanReject::kBadSpan:
      return "bad_span";
    case SpanReject::kTooManySpans:
      return "too_many_spans";
    case SpanReject::kParentInOtherTrace:
      return "parent_in_other_trace";
    case SpanReject::kEndBeforeStart:
      return "end_before_start";
    case SpanReject::kTimeOutOfRange:
      return "time_out_of_range";
    case SpanReject::kOrphan:
      return "orphan_span";
    case SpanReject::kSeveralRoots:
      return "several_roots";
    case SpanReject::kCycle:
      return "cycle";
    case SpanReject::kClockSkew:
      return "clock_skew";
    case SpanReject::kOutlivesParent:
      return "outlives_parent";
    case SpanReject::kTooDeep:
      return "too_deep";
    case SpanReject::kCount:
      break;
  }
  return "?";
}

std::string plain_node_name(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case ' ':
        o += '_';
        break;
      case ',':
        o += ';';
        break;
      case '/':
        o += '|';
        break;
      case ':':
        o += '.';
        break;
      case '(':
        o += '[';
        break;
      case ')':
        o += ']';
        break;
      case '<':
        o += '{';
        break;
      case '>':
        o += '}';
        break;
      case '#':
        o += '_';
        break;
      default:
        o += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    }
  }
  if (o.empty()) o = "?";
  if (o.size() > 255) o.resize(255);
  return o;
}

std::string_view service_from_pod(std::string_view pod) {
  size_t a = pod.rfind('-');
  if (a == std::string_view::npos || a == 0) return pod;
  size_t b = pod.rfind('-', a - 1);
  if (b == std::string_view::npos || b == 0) return pod;
  return pod.substr(0, b);
}

std::optional<CallType> span_call_type(const Span& s) {
  if (s.kind == SpanKind::kProducer || s.kind == SpanKind::kConsumer ||
      !s.messaging_system.empty() || !s.messaging_destination.empty())
    return CallType::kMq;
  if (!s.db_system.empty()) return is_cache_system(s.db_system) ? CallType::kMc : CallType::kDb;
  if (!s.rpc_system.empty()) return CallType::kRpc;
  if (s.has_http || !s.http_method.empty()) return CallType::kHttp;
  std::string_view fam = storage_family(s);
  if (fam == "sql" || fam == "mongodb") return CallType::kDb;
  if (!fam.empty()) return CallType::kMc;
  if (is_grpc_method(s.name)) return CallType::kRpc;
  std::string_view w = first_word(s.name);
  if (starts_with(s.name, "HTTP ") || is_http_method(w) || starts_with(s.name, "/"))
    return CallType::kHttp;
  return std::nullopt;
}

SpanGraph build_span_graph(std::span<Span> spans, const SpanGraphOptions& opt) {
  SpanGraph r;
  r.spans = spans.size();
  if (!spans.empty()) r.graph.trace_id = spans[0].trace_id;
  auto reject = [&](SpanReject why, std::string detail) {
    r.reject = why;
    r.detail = std::move(detail);
    r.graph.edges.clear();
    return std::move(r);
  };
  if (spans.size() > opt.max_spans)
    return reject(SpanReject::kTooManySpans,
                  fmt::format("{} spans > limit {}", spans.size(), opt.max_spans));
  // Unique spans (first of each id), in input order.
  std::vector<const Span*> sp;
  sp.reserve(spans.size());
  IdIndex by_id(spans.size());
  for (const Span& s : spans) {
    if (by_id.insert(s.span_id, sp.size(), sp)) {
      sp.push_back(&s);
    } else {
      ++r.duplicate_spans;
    }
  }
  const size_t n = sp.size();
  for (Span& s : spans)
    if (!s.resolved) s.resolve();
  for (const Span* s : sp)
    if (!s->parent_trace_id.empty())
      return reject(SpanReject::kParentInOtherTrace,
                    fmt::format("span {} has parent {} in trace {}", s->span_id, s->parent_id,
                                s->parent_trace_id));
  // Every time difference below (call times, clock skew, ms from the root)
  // must fit int64, and the exporters write Unix times in [0, 2^63-1] ns:
  // the trace's times are bounded first.
  {
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (const Span* s : sp) {
      lo = std::min({lo, s->start_ns, s->end_ns});
      hi = std::max({hi, s->start_ns, s->end_ns});
    }
    constexpr int64_t kMaxExtentNs = int64_t{1} << 62;
    int64_t extent = 0;
    if (n > 0 && (lo < 0 || __builtin_sub_overflow(hi, lo, &extent) || extent > kMaxExtentNs))
      return reject(SpanReject::kTimeOutOfRange,
                    fmt::format("span times from {} to {} ns: before the Unix epoch or "
                                "covering more than 2^62 ns",
                                lo, hi));
  }
  for (const Span* s : sp)
    if (s->end_ns < s->start_ns)
      return reject(SpanReject::kEndBeforeStart,
                    fmt::format("span {} ({}) ends {} ns before it starts", s->span_id, s->name,
                                s->start_ns - s->end_ns));
  std::vector<size_t> parent(n, static_cast<size_t>(-1));
  size_t root = static_cast<size_t>(-1), roots = 0;
  for (size_t i = 0; i < n; ++i) {
    if (sp[i]->parent_id.empty()) {
      if (roots++ == 0) root = i;
      continue;
    }
    size_t it = by_id.find(sp[i]->parent_id, sp);
    if (it == IdIndex::kNone)
      return reject(SpanReject::kOrphan,
                    fmt::format("span {} ({}): parent {} not in the trace", sp[i]->span_id,
                                sp[i]->name, sp[i]->parent_id));
    parent[i] = it;
  }
  if (roots > 1)
    return reject(SpanReject::kSeveralRoots, fmt::format("{} spans without a parent", roots));
  if (roots == 0) return reject(SpanReject::kCycle, "every span has a parent (no root)");
  // Children in start order (ties: input order).
  Children kids(parent);
  for (size_t i = 0; i < n; ++i)
    if (auto k = kids[i]; k.size() > 1)
      std::stable_sort(k.begin(), k.end(),
                       [&](size_t a, size_t b) { return sp[a]->start_ns < sp[b]->start_ns; });
  {  // reachability from the root
    std::vector<size_t> stack{root};
    size_t reached = 0;
    while (!stack.empty()) {
      size_t i = stack.back();
      stack.pop_back();
      ++reached;
      for (size_t c : kids[i]) stack.push_back(c);
      if (reached > n) break;
    }
    if (reached != n)
      return reject(SpanReject::kCycle,
                    fmt::format("{} of {} spans not reachable from the root", n - reached, n));
  }
  auto svc = [&](size_t i) -> const std::string& { return sp[i]->service; };
  auto cross = [&](size_t p, size_t c) {
    // A server span always begins a call (a self-call when its parent is in
    // the same service).
    return svc(c) != svc(p) || is_server_kind(sp[c]->kind);
  };
  std::vector<uint32_t> n_cross(n, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t c : kids[i]) n_cross[i] += cross(i, c);
  auto is_client = [&](size_t i) {
    if (is_client_kind(sp[i]->kind)) return true;
    // Without kinds: a span inside its service (its parent is in the same
    // service) whose children are all in other services.
    return sp[i]->kind == SpanKind::kUnspecified && !kids[i].empty() &&
           n_cross[i] == kids[i].size() && parent[i] != static_cast<size_t>(-1) &&
           svc(parent[i]) == svc(i);
  };
  auto peer_of = [&](size_t i) -> std::optional<std::string> {  // nullopt: not a peer call
    if (n_cross[i] != 0) return std::nullopt;
    const Span& s = *sp[i];
    if (!s.peer.empty()) return s.peer;
    if (!is_client_kind(s.kind)) return std::nullopt;
    ++r.peer_fallbacks;
    return std::string("external");
  };
  auto node = [&](const std::string& service, const Span& s) {
    return opt.node == NodeMode::kService
               ? plain_node_name(service)
               : plain_node_name(service) + "#" + plain_node_name(s.name);
  };
  auto type_of = [&](const Span* client, const Span& callee) {
    std::optional<CallType> t;
    if (client && client->hint != CallType::kUnknown) t = client->hint;
    if (!t && callee.hint != CallType::kUnknown) t = callee.hint;
    if (!t) {
      ++r.type_fallbacks;
      t = opt.fallback_type;
    }
    return *t;
  };
  auto subtree_size = [&](size_t i) {
    size_t cnt = 0;
    std::vector<size_t> st{i};
    while (!st.empty()) {
      size_t x = st.back();
      st.pop_back();
      ++cnt;
      for (size_t c : kids[x]) st.push_back(c);
    }
    return cnt;
  };

  std::vector<Call> calls;
  {
    Call c;
    c.callee = node(svc(root), *sp[root]);
    c.type = type_of(nullptr, *sp[root]);
    c.s = sp[root]->start_ns;
    c.e = sp[root]->end_ns;
    c.span = root;
    calls.push_back(std::move(c));
  }
  std::vector<std::pair<size_t, size_t>> stack{{root, 0}};  // (span, call it belongs to)
  while (!stack.empty()) {
    auto [s, ci] = stack.back();
    stack.pop_back();
    for (size_t x : kids[s]) {
      Call c;
      c.parent = ci;
      c.order = calls.size();
      c.depth = calls[ci].depth + 1;
      if (cross(s, x)) {
        bool client = is_client(s);
        const Span& cs = *sp[s];
        const Span& xs = *sp[x];
        if (client && n_cross[s] == 1) {
          c.s = cs.start_ns;
          c.e = cs.end_ns;
          if (cs.kind == SpanKind::kProducer || xs.kind == SpanKind::kConsumer)
            c.e = std::max(cs.end_ns, xs.end_ns);
        } else {
          c.s = xs.start_ns;
          c.e = xs.end_ns;
        }
        c.callee = node(svc(x), xs);
        c.type = type_of(client ? &cs : nullptr, xs);
        c.span = x;
        calls.push_back(std::move(c));
        stack.emplace_back(x, calls.size() - 1);
      } else if (auto peer = peer_of(x)) {
        const Span& xs = *sp[x];
        c.s = xs.start_ns;
        c.e = xs.end_ns;
        c.callee = node(*peer, xs);
        c.type = type_of(nullptr, xs);
        c.span = x;
        calls.push_back(std::move(c));
        r.collapsed_spans += subtree_size(x) - 1;
      } else {
        ++r.collapsed_spans;
        stack.emplace_back(x, ci);
      }
    }
  }
  // Calls are created parents first. Clock skew, depth.
  for (size_t i = 1; i < calls.size(); ++i) {
    Call& c = calls[i];
    const Call& p = calls[c.parent];
    if (c.depth > opt.max_depth)
      return reject(SpanReject::kTooDeep, fmt::format("calls nested deeper than {} (span {})",
                                                      opt.max_depth, sp[c.span]->span_id));
    if (c.s < p.s) {
      if (p.s - c.s > opt.skew_tolerance_ns)
        return reject(SpanReject::kClockSkew,
                      fmt::format("call to {} (span {}) starts {} us before its caller's call",
                                  c.callee, sp[c.span]->span_id, (p.s - c.s) / 1000));
      c.s = p.s;
      c.e = std::max(c.e, c.s);
      ++r.clamped_calls;
    }
    if (c.e > p.e) {
      if (c.e - p.e > opt.skew_tolerance_ns)
        return reject(SpanReject::kOutlivesParent,
                      fmt::format("call to {} (span {}) ends {} us after its caller's call",
                                  c.callee, sp[c.span]->span_id, (c.e - p.e) / 1000));
      c.e = p.e;
      c.s = std::min(c.s, c.e);
      ++r.clamped_calls;
    }
  }
  // Rpc ids: children of each call by start time (ties: creation order).
  std::vector<std::vector<size_t>> ckids(calls.size());
  for (size_t i = 1; i < calls.size(); ++i) ckids[calls[i].parent].push_back(i);
  std::vector<RpcId> ids(calls.size());
  const int64_t t0 = calls[0].s;
  auto to_ms = [&](int64_t t) { return (t - t0 + 500000) / 1000000; };  // t >= t0
  CallGraph& g = r.graph;
  g.start_unix_ns = t0;
  g.edges.reserve(calls.size());
  // tracelm's own exports carry the rpc ids: keep them when every call has
  // one, they are distinct and each is a child of its parent call's id.
  bool attr_ids = true;
  {
    std::unordered_map<std::string_view, size_t> seen;
    for (size_t i = 0; i < calls.size() && attr_ids; ++i) {
      auto id = RpcId::parse(sp[calls[i].span]->rpc_id_attr);
      if (!id || !seen.emplace(sp[calls[i].span]->rpc_id_attr, i).second ||
          (i == 0 ? !id->is_top_level() : id->parent() != ids[calls[i].parent])) {
        attr_ids = false;
        break;
      }
      ids[i] = *id;
    }
    if (!attr_ids) std::fill(ids.begin(), ids.end(), RpcId());
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    auto& k = ckids[i];
    std::stable_sort(k.begin(), k.end(), [&](size_t a, size_t b) {
      if (calls[a].s != calls[b].s) return calls[a].s < calls[b].s;
      return sp[calls[a].span]->start_ns < sp[calls[b].span]->start_ns;
    });
    if (!attr_ids)
      for (size_t j = 0; j < k.size(); ++j) ids[k[j]] = ids[i].child(j + 1);
  }
  // Edges in canonical order: numbered ids in pre-order (parents first,
  // children by number) are already sorted, and sorting is then skipped;
  // ids from attributes are sorted below.
  std::vector<size_t> order;
  order.reserve(calls.size());
  if (attr_ids) {
    for (size_t i = 0; i < calls.size(); ++i) order.push_back(i);
  } else {
    std::vector<size_t> todo{0};
    while (!todo.empty()) {
      size_t i = todo.back();
      todo.pop_back();
      order.push_back(i);
      for (auto it = ckids[i].rbegin(); it != ckids[i].rend(); ++it) todo.push_back(*it);
    }
  }
  for (size_t i : order) {
    Edge e;
    e.id = ids[i];
    e.caller = i == 0 ? std::string(kUserNode) : calls[calls[i].parent].callee;
    e.callee = calls[i].callee;
    e.type = calls[i].type;
    e.start_ms = to_ms(calls[i].s);
    e.finish_ms = to_ms(calls[i].e);
    r.zero_ms_calls += e.start_ms == e.finish_ms;
    g.edges.push_back(std::move(e));
  }
  // Entry point: the root operation, or when it names nothing (a catch-all
  // route such as "/*"), the callee operation of the root's first call.
  const Span* entry = sp[root];
  auto has_letter = [](std::string_view s) {
    return std::any_of(s.begin(), s.end(),
                       [](char ch) { return std::isalpha(static_cast<unsigned char>(ch)); });
  };
  if (!has_letter(entry->name) && !ckids[0].empty()) entry = sp[calls[ckids[0][0]].span];
  if (entry == sp[root]) {
    g.service = plain_node_name(svc(root)) + "#" + plain_node_name(entry->name);
  } else {
    const std::string& callee = calls[ckids[0][0]].callee;
    g.service =
        opt.node == NodeMode::kOperation ? callee : callee + "#" + plain_node_name(entry->name);
  }
  if (!sp[root]->service_attr.empty()) g.service = sp[root]->service_attr;
  if (!sp[root]->trace_id_attr.empty()) g.trace_id = sp[root]->trace_id_attr;
  if (!g.is_canonical()) g.canonicalize();
  return r;
}

}  // namespace tracelm
