#include "export/trace_layout.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

namespace tracelm {

namespace {

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// FNV-1a over the bytes, seeded and finalized: stable across platforms.
uint64_t hash_bytes(std::string_view s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h ^ s.size());
}

constexpr std::string_view kHttpMethods[] = {"GET",  "POST",    "PUT",   "DELETE", "PATCH",
                                             "HEAD", "OPTIONS", "TRACE", "CONNECT"};

bool lower_in(std::string_view s, std::initializer_list<std::string_view> names) {
  std::string l(s);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view n : names)
    if (l == n) return true;
  return false;
}

// The operation as a name: '|' back to '/', "POST_/x" -> "POST /x".
std::string display_operation(std::string_view op) {
  std::string d(op);
  for (char& c : d)
    if (c == '|') c = '/';
  for (std::string_view m : kHttpMethods)
    if (d.size() > m.size() + 1 && d.compare(0, m.size(), m) == 0 && d[m.size()] == '_' &&
        d[m.size() + 1] == '/') {
      d[m.size()] = ' ';
      break;
    }
  return d;
}

// "pkg.Service/Method" (a gRPC method).
bool is_grpc_method(std::string_view name) {
  size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= name.size()) return false;
  std::string_view svc = name.substr(0, slash), method = name.substr(slash + 1);
  auto word = [](std::string_view w) {
    for (char c : w)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') return false;
    return true;
  };
  return svc.find('.') != std::string_view::npos && word(svc) && word(method) &&
         std::isalpha(static_cast<unsigned char>(svc[0]));
}

std::string db_system(CallType t, std::string_view callee) {
  if (t == CallType::kMc)
    return lower_in(callee, {"redis", "memcached", "valkey"}) ? std::string(callee) : "memcached";
  if (lower_in(callee, {"mongodb", "mysql", "postgresql", "mariadb", "cassandra", "sqlite",
                        "elasticsearch", "clickhouse", "oracle.db", "microsoft.sql_server"}))
    return std::string(callee);
  return "other_sql";
}

}  // namespace

std::string_view out_kind_name(OutKind k) {
  switch (k) {
    case OutKind::kInternal:
      return "internal";
    case OutKind::kServer:
      return "server";
    case OutKind::kClient:
      return "client";
    case OutKind::kProducer:
      return "producer";
    case OutKind::kConsumer:
      return "consumer";
  }
  return "internal";
}

std::pair<std::string_view, std::string_view> split_node(std::string_view node) {
  size_t h = node.find('#');
  if (h == std::string_view::npos) return {node, {}};
  return {node.substr(0, h), node.substr(h + 1)};
}

int64_t trace_start_ns(const CallGraph& g, uint64_t k, const TraceTiming& t) {
  if (g.start_unix_ns != 0) return g.start_unix_ns;
  if (!(t.rate > 0) || !std::isfinite(t.rate))
    throw std::invalid_argument(fmt::format("trace rate {} per second: expected > 0", t.rate));
  if (t.start_ms < 0 || t.start_ms > kMaxEpochMs)
    throw std::out_of_range(
        fmt::format("start {} epoch ms is outside [0, {}]", t.start_ms, kMaxEpochMs));
  double offset = std::round(static_cast<double>(k) * 1e9 / t.rate);
  double start = static_cast<double>(t.start_ms) * 1e6 + offset;
  if (start > 9.2e18)
    throw std::out_of_range(
        fmt::format("trace {} would start after the year 2262 (start {} ms, "
                    "rate {} per second)",
                    k, t.start_ms, t.rate));
  return t.start_ms * 1'000'000 + static_cast<int64_t>(offset);
}

namespace {

// The semantic-convention attributes of a call's spans (docs/export.md):
// those both halves carry, and those of the client or the server half only.
struct CallAttributes {
  std::vector<std::pair<std::string_view, std::string>> both, client, server;
};
CallAttributes call_attributes(CallType type, const std::string& op, std::string_view callee_svc) {
  CallAttributes a;
  switch (type) {
    case CallType::kHttp: {
      std::string method = "_OTHER", route;
      size_t sp = op.find(' ');
      for (std::string_view m : kHttpMethods)
        if (sp != std::string::npos && std::string_view(op).substr(0, sp) == m) {
          method = std::string(m);
          if (op.compare(sp + 1, 1, "/") == 0) route = op.substr(sp + 1);
        }
      if (route.empty() && !op.empty() && op[0] == '/') route = op;
      a.both.emplace_back("http.request.method", method);
      if (!route.empty()) a.server.emplace_back("http.route", route);
      a.client.emplace_back("server.address", std::string(callee_svc));
      break;
    }
    case CallType::kRpc:
      a.both.emplace_back("rpc.system.name", is_grpc_method(op) ? "grpc" : "_OTHER");
      if (!op.empty()) a.both.emplace_back("rpc.method", op);
      a.client.emplace_back("server.address", std::string(callee_svc));
      break;
    case CallType::kDb:
    case CallType::kMc:
      a.both.emplace_back("db.system.name", db_system(type, callee_svc));
      a.client.emplace_back("peer.service", std::string(callee_svc));
      break;
    case CallType::kMq:
      a.both.emplace_back("messaging.system", "_OTHER");
      a.both.emplace_back("messaging.destination.name", std::string(callee_svc));
      a.client.emplace_back("messaging.operation.type", "send");
      a.server.emplace_back("messaging.operation.type", "process");
      break;
    case CallType::kUnknown:
      break;
  }
  return a;
}

}  // namespace

TraceLayout lay_out_trace(const CallGraph& g, uint64_t k, const TraceTiming& t) {
  const int64_t t0 = trace_start_ns(g, k, t);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  auto at = [&](const Edge& e, int64_t ms) {
    if (ms < -(t0 / 1'000'000) || ms > (kMax - t0) / 1'000'000)
      throw std::out_of_range(fmt::format(
          "graph {}{}: edge {} time {} ms after the trace start {} ns is outside [0, 2^63-1] ns", k,
          g.trace_id.empty() ? "" : " (trace " + g.trace_id + ")", e.id.str(), ms, t0));
    return t0 + ms * 1'000'000;
  };

  TraceLayout L;
  std::string key = fmt::format("{}\x1f{}", k, g.trace_id);
  uint64_t hi = hash_bytes(key, 1), lo = hash_bytes(key, 2);
  if (hi == 0 && lo == 0) lo = 1;
  L.trace_id = fmt::format("{:016x}{:016x}", hi, lo);

  const size_t n = g.edges.size();
  std::unordered_map<std::string_view, size_t> first;  // rpc id -> first edge with it
  std::unordered_set<std::string_view> has_children;   // rpc ids that are some edge's parent
  std::vector<std::string> parent_ids(n);
  first.reserve(n);
  for (size_t i = 0; i < n; ++i) first.emplace(g.edges[i].id.str(), i);
  for (size_t i = 0; i < n; ++i)
    if (auto p = g.edges[i].id.parent()) parent_ids[i] = p->str();
  for (size_t i = 0; i < n; ++i)
    if (g.edges[i].id.parent()) has_children.insert(parent_ids[i]);

  std::unordered_map<std::string_view, uint64_t> seen;  // rpc id -> occurrences so far
  std::unordered_set<uint64_t> used;
  auto span_id = [&](const std::string& span_key) {
    uint64_t v = 0;
    for (uint64_t salt = 0;; ++salt) {
      v = hash_bytes(span_key, hi ^ mix64(lo + salt));
      if (v != 0 && used.insert(v).second) break;
    }
    return fmt::format("{:016x}", v);
  };
  std::unordered_map<std::string, size_t> service_index;
  auto place = [&](OutSpan&& s) {
    auto [it, fresh] = service_index.emplace(s.service, L.services.size());
    if (fresh) {
      L.services.push_back(s.service);
      L.spans_of_service.emplace_back();
    }
    L.spans_of_service[it->second].push_back(L.spans.size());
    L.spans.push_back(std::move(s));
    return L.spans.size() - 1;
  };

  // Edge -> the index of its callee-side span (spans are made in edge order:
  // one for the root and for a db/mc call without children, else two).
  auto is_root = [](const Edge& e) { return e.caller == kUserNode && e.id.is_top_level(); };
  auto is_store = [&](const Edge& e) {
    return (e.type == CallType::kDb || e.type == CallType::kMc) && !is_root(e) &&
           !has_children.count(e.id.str());
  };
  std::vector<size_t> callee_span(n);
  for (size_t i = 0, next = 0; i < n; ++i) {
    next += (is_root(g.edges[i]) || is_store(g.edges[i])) ? 1 : 2;
    callee_span[i] = next - 1;
  }
  bool root_seen = false;
  L.spans.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    const Edge& e = g.edges[i];
    const std::string_view type = call_type_name(e.type);
    auto [callee_svc, callee_op] = split_node(e.callee);
    auto [caller_svc, caller_op] = split_node(e.caller);
    (void)caller_op;
    const std::string op = display_operation(callee_op);
    const std::string name = op.empty() ? fmt::format("{} {}", type, callee_svc) : op;
    const bool root = is_root(e);
    const bool first_root = root && !root_seen;
    root_seen |= root;
    const bool store = is_store(e);
    const bool mq = e.type == CallType::kMq;
    size_t parent = kNoParentSpan;
    if (!parent_ids[i].empty())
      if (auto it = first.find(parent_ids[i]); it != first.end()) parent = callee_span[it->second];
    uint64_t occurrence = seen[e.id.str()]++;
    std::string span_key = occurrence ? fmt::format("{}#{}", e.id.str(), occurrence) : e.id.str();
    const int64_t s_ns = at(e, e.start_ms), e_ns = at(e, e.finish_ms);

    const CallAttributes ca = call_attributes(e.type, op, callee_svc);
    auto attributes = [&](bool client, bool carries_call) {
      std::vector<std::pair<std::string_view, std::string>> a = ca.both;
      for (auto& kv : client ? ca.client : ca.server) a.push_back(kv);
      a.emplace_back("tracelm.type", std::string(type));
      if (carries_call) a.emplace_back("tracelm.rpc_id", e.id.str());
      if (carries_call && first_root) {
        a.emplace_back("tracelm.service", g.service);
        if (!g.trace_id.empty()) a.emplace_back("tracelm.trace_id", g.trace_id);
      }
      return a;
    };

    if (!root) {  // the caller's half
      OutSpan c;
      c.edge = i;
      c.kind = mq ? OutKind::kProducer : OutKind::kClient;
      c.service = std::string(caller_svc);
      c.name = name;
      c.span_id = span_id(store ? span_key : span_key + "/client");
      c.parent = parent;
      c.start_ns = s_ns;
      c.end_ns = e_ns;
      c.attributes = attributes(true, store);
      size_t ci = place(std::move(c));
      if (store) continue;
      parent = ci;
    }
    OutSpan s;
    s.edge = i;
    s.kind = mq ? OutKind::kConsumer : OutKind::kServer;
    s.service = std::string(callee_svc);
    s.name = name;
    s.span_id = span_id(span_key);
    s.parent = parent;
    s.start_ns = s_ns;
    s.end_ns = e_ns;
    s.attributes = attributes(false, true);
    place(std::move(s));
  }
  return L;
}

}  // namespace tracelm
