#include "export/otlp.h"

#include "util/json_text.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tracelm {

namespace trace_json {

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

}  // namespace

SpanIds assign_ids(const CallGraph& g, uint64_t index) {
  SpanIds ids;
  std::string key = fmt::format("{}\x1f{}", index, g.trace_id);
  uint64_t hi = hash_bytes(key, 1), lo = hash_bytes(key, 2);
  if (hi == 0 && lo == 0) lo = 1;
  ids.trace_id = fmt::format("{:016x}{:016x}", hi, lo);

  size_t n = g.edges.size();
  std::unordered_map<std::string_view, size_t> first;  // rpc id -> first edge with it
  first.reserve(n);
  for (size_t i = 0; i < n; ++i) first.emplace(g.edges[i].id.str(), i);
  std::unordered_map<std::string_view, uint64_t> seen;  // rpc id -> occurrences so far
  std::unordered_set<uint64_t> used;
  ids.span_ids.reserve(n);
  ids.parent.assign(n, kNoParent);
  for (size_t i = 0; i < n; ++i) {
    const RpcId& id = g.edges[i].id;
    uint64_t occurrence = seen[id.str()]++;
    std::string span_key = occurrence ? fmt::format("{}#{}", id.str(), occurrence) : id.str();
    uint64_t v = 0;
    for (uint64_t salt = 0;; ++salt) {
      v = hash_bytes(span_key, hi ^ mix64(lo + salt));
      if (v != 0 && used.insert(v).second) break;
    }
    ids.span_ids.push_back(fmt::format("{:016x}", v));
    if (auto p = id.parent()) {
      auto it = first.find(p->str());
      if (it != first.end()) ids.parent[i] = it->second;
    }
  }
  return ids;
}

std::string base_epoch_error(int64_t base_epoch_ms) {
  if (base_epoch_ms >= 0 && base_epoch_ms <= kMaxEpochMs) return "";
  return fmt::format("base epoch {} ms is outside [0, {}]", base_epoch_ms, kMaxEpochMs);
}

void check_base_epoch(int64_t base_epoch_ms) {
  if (std::string e = base_epoch_error(base_epoch_ms); !e.empty()) throw std::out_of_range(e);
}

void check_time_range(const CallGraph& g, uint64_t index, int64_t base_epoch_ms) {
  check_base_epoch(base_epoch_ms);
  for (const Edge& e : g.edges) {
    for (int64_t t : {e.start_ms, e.finish_ms}) {
      if (t < -base_epoch_ms || t > kMaxEpochMs - base_epoch_ms)
        throw std::out_of_range(
            fmt::format("graph {}{}: edge {} time {} ms + base {} ms is outside [0, {}] epoch ms",
                        index, g.trace_id.empty() ? "" : " (trace " + g.trace_id + ")", e.id.str(),
                        t, base_epoch_ms, kMaxEpochMs));
    }
  }
}

void append_string(std::string& out, std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
  if (!ascii && !is_valid_utf8(s)) {
    out += nlohmann::json(std::string(s))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  append_json_string(out, s);
}

void append_attributes(std::string& out, const CallGraph& g, const Edge& e,
                       AppendKeyValue append_kv) {
  append_kv(out, "rpc.id", e.id.str());
  out += ',';
  append_kv(out, "tracelm.caller", e.caller);
  out += ',';
  append_kv(out, "tracelm.callee", e.callee);
  out += ',';
  append_kv(out, "tracelm.type", call_type_name(e.type));
  out += ',';
  append_kv(out, "tracelm.service", g.service);
  if (!g.trace_id.empty()) {
    out += ',';
    append_kv(out, "tracelm.trace_id", g.trace_id);
  }
  if (e.type == CallType::kMc) {
    out += ',';
    append_kv(out, "db.system", "memcached");
  }
}

bool split_documents(std::string_view text, std::vector<std::string_view>* docs,
                     std::string* error) {
  int depth = 0;
  char open[kMaxTraceJsonDepth + 1];  // the brackets open at each depth
  bool in_str = false;
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_str) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (depth == 0) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
      if (c != '{' && c != '[') {
        *error = fmt::format("byte {}: expected a JSON object at the top level", i);
        return false;
      }
      begin = i;
    }
    if (c == '"') {
      in_str = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxTraceJsonDepth) {
        *error = fmt::format("byte {}: JSON nested deeper than {}", i, kMaxTraceJsonDepth);
        return false;
      }
      open[depth] = c;
    } else if (c == '}' || c == ']') {
      if (open[depth] != (c == '}' ? '{' : '[')) {
        *error = fmt::format("byte {}: '{}' closes '{}'", i, c, open[depth]);
        return false;
      }
      if (--depth == 0) docs->push_back(text.substr(begin, i + 1 - begin));
    }
  }
  if (depth != 0 || in_str) {
    *error = "truncated JSON (unbalanced brackets or an unterminated string)";
    return false;
  }
  return true;
}

bool normalize_hex_id(std::string_view s, size_t digits, std::string* out) {
  if (s.size() != digits) return false;
  out->clear();
  bool nonzero = false;
  for (char c : s) {
    char l = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) return false;
    nonzero |= l != '0';
    out->push_back(l);
  }
  return nonzero;
}

bool SpanFields::known(std::string_view key) {
  return key == "rpc.id" || key == "tracelm.caller" || key == "tracelm.callee" ||
         key == "tracelm.type" || key == "tracelm.service" || key == "tracelm.trace_id";
}

bool SpanFields::set(std::string_view key, std::string value) {
  auto put = [&](std::string& field, bool& has) {
    if (has) return false;
    field = std::move(value);
    has = true;
    return true;
  };
  if (key == "rpc.id") return put(rpc_id, has_rpc_id);
  if (key == "tracelm.caller") return put(caller, has_caller);
  if (key == "tracelm.callee") return put(callee, has_callee);
  if (key == "tracelm.type") return put(type, has_type);
  if (key == "tracelm.service") return put(service, has_service);
  if (key == "tracelm.trace_id") return put(trace_id, has_trace_id);
  return true;
}

bool add_span(GraphBuilder& b, const SpanFields& f, const std::string& span_id, int64_t start_ms,
              int64_t finish_ms, const std::string& where, std::string* error) {
  auto fail = [&](const std::string& msg) {
    *error = where + ": " + msg;
    return false;
  };
  if (!f.has_rpc_id) return fail("missing attribute \"rpc.id\"");
  if (!f.has_caller) return fail("missing attribute \"tracelm.caller\"");
  if (!f.has_callee) return fail("missing attribute \"tracelm.callee\"");
  if (!f.has_type) return fail("missing attribute \"tracelm.type\"");
  if (!f.has_service) return fail("missing attribute \"tracelm.service\"");
  auto id = RpcId::parse(f.rpc_id);
  if (!id) return fail("rpc.id \"" + f.rpc_id.substr(0, 40) + "\" is not dot-decimal");
  if (b.span_ids.empty()) {
    b.graph.service = f.service;
    b.graph.trace_id = f.trace_id;
    b.has_trace_id = f.has_trace_id;
  } else {
    if (f.service != b.graph.service)
      return fail("tracelm.service \"" + f.service.substr(0, 40) +
                  "\" differs from the trace's \"" + b.graph.service.substr(0, 40) + "\"");
    if (f.has_trace_id != b.has_trace_id || f.trace_id != b.graph.trace_id)
      return fail("tracelm.trace_id differs from the other spans of the trace");
  }
  if (!b.span_ids.insert(span_id).second) return fail("spanId repeats within the trace");
  Edge e;
  e.id = std::move(*id);
  e.caller = f.caller;
  e.callee = f.callee;
  e.type = parse_call_type(f.type).value_or(CallType::kUnknown);
  e.start_ms = start_ms;
  e.finish_ms = finish_ms;
  b.graph.edges.push_back(std::move(e));
  return true;
}

CallGraph finish_graph(GraphBuilder&& b) {
  CallGraph g = std::move(b.graph);
  std::sort(g.edges.begin(), g.edges.end(), [](const Edge& x, const Edge& y) {
    if (x.id != y.id) return x.id < y.id;
    return std::tie(x.start_ms, x.finish_ms, x.caller, x.callee, x.type) <
           std::tie(y.start_ms, y.finish_ms, y.caller, y.callee, y.type);
  });
  return g;
}

bool TraceReader::read(std::string_view text, const ReadDoc& read_doc,
                       std::vector<CallGraph>* graphs, std::string* error) {
  std::string scratch;
  error_ = error ? error : &scratch;
  prefix_.clear();
  builders_.clear();
  by_trace_.clear();
  bool ok = [&] {
    if (std::string e = base_epoch_error(base_); !e.empty()) return fail(e);
    std::vector<std::string_view> docs;
    if (!split_documents(text, &docs, error_)) return false;
    for (size_t d = 0; d < docs.size(); ++d) {
      prefix_ = docs.size() > 1 ? fmt::format("{} {}: ", label_, d + 1) : "";
      const nlohmann::json j =
          nlohmann::json::parse(docs[d].begin(), docs[d].end(), nullptr, false);
      if (j.is_discarded()) return fail("not valid JSON");
      if (!read_doc(j, *this)) return false;
    }
    return true;
  }();
  error_ = nullptr;
  if (!ok) return false;
  graphs->reserve(graphs->size() + builders_.size());
  for (auto& b : builders_) graphs->push_back(finish_graph(std::move(b)));
  builders_.clear();
  by_trace_.clear();
  return true;
}

bool TraceReader::fail(const std::string& msg) {
  *error_ = prefix_ + msg;
  return false;
}

bool TraceReader::add_span(const std::string& trace_hex, const SpanFields& f,
                           const std::string& span_id, int64_t start_ms, int64_t finish_ms,
                           const std::string& where) {
  auto [it, fresh] = by_trace_.emplace(trace_hex, builders_.size());
  if (fresh) builders_.emplace_back();
  return trace_json::add_span(builders_[it->second], f, span_id, start_ms, finish_ms,
                              prefix_ + where, error_);
}

bool TraceReader::read_fields(
    const nlohmann::json& span, const char* list_key, const char* noun, const char* value_kind,
    const std::function<const nlohmann::json*(const nlohmann::json&)>& value_of,
    const std::string& where, SpanFields* f) {
  auto list = span.find(list_key);
  if (list == span.end() || list->is_null()) return true;
  if (!list->is_array()) return fail(fmt::format("{}: \"{}\" must be an array", where, list_key));
  for (const nlohmann::json& a : *list) {
    auto key = a.is_object() ? a.find("key") : a.end();
    if (!a.is_object() || key == a.end() || !key->is_string())
      return fail(fmt::format("{}: each {} must be an object with a string \"key\"", where, noun));
    const std::string& k = key->get_ref<const std::string&>();
    if (!SpanFields::known(k)) continue;  // a known key is short: safe to quote
    const nlohmann::json* v = value_of(a);
    if (!v || !v->is_string())
      return fail(fmt::format("{}: {} \"{}\" must have {}", where, noun, k, value_kind));
    if (!f->set(k, v->get<std::string>()))
      return fail(fmt::format("{}: {} \"{}\" repeats", where, noun, k));
  }
  return true;
}

}  // namespace trace_json

namespace {

using trace_json::append_string;

int span_kind(CallType t) {
  switch (t) {
    case CallType::kHttp:
    case CallType::kRpc:
    case CallType::kDb:
    case CallType::kMc:
      return 2;  // SPAN_KIND_SERVER
    case CallType::kMq:
      return 5;  // SPAN_KIND_CONSUMER
    default:
      return 1;  // SPAN_KIND_INTERNAL
  }
}

void append_attr(std::string& out, std::string_view key, std::string_view value) {
  out += "{\"key\":";
  append_string(out, key);
  out += ",\"value\":{\"stringValue\":";
  append_string(out, value);
  out += "}}";
}

void append_span(std::string& out, const CallGraph& g, size_t i, const trace_json::SpanIds& ids,
                 int64_t base) {
  const Edge& e = g.edges[i];
  out += "{\"traceId\":\"";
  out += ids.trace_id;
  out += "\",\"spanId\":\"";
  out += ids.span_ids[i];
  out += '"';
  if (ids.parent[i] != trace_json::kNoParent) {
    out += ",\"parentSpanId\":\"";
    out += ids.span_ids[ids.parent[i]];
    out += '"';
  }
  out += ",\"name\":";
  append_string(out, fmt::format("{} {}->{}", call_type_name(e.type), e.caller, e.callee));
  fmt::format_to(std::back_inserter(out),
                 ",\"kind\":{},\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\","
                 "\"attributes\":[",
                 span_kind(e.type), (base + e.start_ms) * 1'000'000,
                 (base + e.finish_ms) * 1'000'000);
  trace_json::append_attributes(out, g, e, append_attr);
  out += "]}";
}

// Decimal string (or JSON integer) of nanoseconds in [0, 2^63 - 1].
bool read_nanos(const nlohmann::json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    *out = s;
    return true;
  }
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  uint64_t u = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), u);
  if (ec != std::errc() || p != s.data() + s.size() ||
      u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return false;
  *out = static_cast<int64_t>(u);
  return true;
}

}  // namespace

OtlpJsonWriter::OtlpJsonWriter(int64_t base_epoch_ms, Mode mode)
    : base_(base_epoch_ms), mode_(mode) {
  trace_json::check_base_epoch(base_);
}

void OtlpJsonWriter::add(const CallGraph& g, std::string& out) {
  uint64_t index = index_++;
  if (g.edges.empty()) return;
  trace_json::check_time_range(g, index, base_);
  trace_json::SpanIds ids = trace_json::assign_ids(g, index);
  if (mode_ == Mode::kLines) {
    out += "{\"resourceSpans\":[";
  } else {
    if (!started_) out += "{\"resourceSpans\":[";
    started_ = true;
    if (any_) out += ',';
    any_ = true;
  }
  // Edges grouped by callee, in order of first appearance.
  std::vector<std::vector<size_t>> groups;
  std::unordered_map<std::string_view, size_t> group_of;
  for (size_t i = 0; i < g.edges.size(); ++i) {
    auto [it, fresh] = group_of.emplace(g.edges[i].callee, groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  for (size_t k = 0; k < groups.size(); ++k) {
    if (k) out += ',';
    out += "{\"resource\":{\"attributes\":[";
    append_attr(out, "service.name", g.edges[groups[k][0]].callee);
    out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tracelm\"},\"spans\":[";
    for (size_t j = 0; j < groups[k].size(); ++j) {
      if (j) out += ',';
      append_span(out, g, groups[k][j], ids, base_);
    }
    out += "]}]}";
  }
  if (mode_ == Mode::kLines) out += "]}\n";
}

void OtlpJsonWriter::finish(std::string& out) {
  if (mode_ == Mode::kLines || finished_) return;
  finished_ = true;
  if (!started_) out += "{\"resourceSpans\":[";
  out += "]}";
}

std::string to_otlp_json(const std::vector<CallGraph>& graphs, int64_t base_epoch_ms) {
  OtlpJsonWriter w(base_epoch_ms, OtlpJsonWriter::Mode::kOneRequest);
  std::string out;
  for (const CallGraph& g : graphs) w.add(g, out);
  w.finish(out);
  return out;
}

std::string to_otlp_json_lines(const std::vector<CallGraph>& graphs, int64_t base_epoch_ms) {
  OtlpJsonWriter w(base_epoch_ms, OtlpJsonWriter::Mode::kLines);
  std::string out;
  for (const CallGraph& g : graphs) w.add(g, out);
  w.finish(out);
  return out;
}

bool parse_otlp_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                     int64_t base_epoch_ms) {
  std::string trace_hex, span_hex, parent_hex;
  auto read_doc = [&](const nlohmann::json& j, trace_json::TraceReader& r) {
    auto rss = j.is_object() ? j.find("resourceSpans") : j.end();
    if (!j.is_object() || rss == j.end() || !rss->is_array())
      return r.fail("expected {\"resourceSpans\":[...]} (an OTLP ExportTraceServiceRequest)");
    for (size_t i = 0; i < rss->size(); ++i) {
      const nlohmann::json& rs = (*rss)[i];
      std::string rs_where = fmt::format("resourceSpans[{}]", i);
      if (!rs.is_object()) return r.fail(rs_where + ": expected an object");
      if (auto res = rs.find("resource"); res != rs.end() && !res->is_object())
        return r.fail(rs_where + ": \"resource\" must be an object");
      auto sss = rs.find("scopeSpans");
      if (sss == rs.end()) continue;  // protobuf JSON omits empty lists
      if (!sss->is_array()) return r.fail(rs_where + ": \"scopeSpans\" must be an array");
      for (size_t s = 0; s < sss->size(); ++s) {
        const nlohmann::json& ss = (*sss)[s];
        std::string ss_where = fmt::format("{}.scopeSpans[{}]", rs_where, s);
        if (!ss.is_object()) return r.fail(ss_where + ": expected an object");
        auto spans = ss.find("spans");
        if (spans == ss.end()) continue;
        if (!spans->is_array()) return r.fail(ss_where + ": \"spans\" must be an array");
        for (size_t k = 0; k < spans->size(); ++k) {
          const nlohmann::json& sp = (*spans)[k];
          std::string where = fmt::format("{}.spans[{}]", ss_where, k);
          if (!sp.is_object()) return r.fail(where + ": expected an object");
          auto sid = sp.find("spanId");
          if (sid == sp.end() || !sid->is_string() ||
              !trace_json::normalize_hex_id(sid->get_ref<const std::string&>(), 16, &span_hex))
            return r.fail(where + ": \"spanId\" must be 16 hex digits, not all zero");
          where += " (spanId " + span_hex + ")";
          auto tid = sp.find("traceId");
          if (tid == sp.end() || !tid->is_string() ||
              !trace_json::normalize_hex_id(tid->get_ref<const std::string&>(), 32, &trace_hex))
            return r.fail(where + ": \"traceId\" must be 32 hex digits, not all zero");
          if (auto p = sp.find("parentSpanId"); p != sp.end()) {
            if (!p->is_string() ||
                (!p->get_ref<const std::string&>().empty() &&
                 !trace_json::normalize_hex_id(p->get_ref<const std::string&>(), 16, &parent_hex)))
              return r.fail(where + ": \"parentSpanId\" must be empty or 16 hex digits");
          }
          if (auto n = sp.find("name"); n != sp.end() && !n->is_string())
            return r.fail(where + ": \"name\" must be a string");
          if (auto n = sp.find("kind"); n != sp.end() && !n->is_number_integer() && !n->is_string())
            return r.fail(where + ": \"kind\" must be an enum (integer or name)");
          int64_t start_ns = 0, end_ns = 0;
          auto st = sp.find("startTimeUnixNano");
          if (st == sp.end() || !read_nanos(*st, &start_ns))
            return r.fail(where +
                          ": \"startTimeUnixNano\" must be a decimal string of nanoseconds "
                          "(0 to 2^63-1)");
          auto en = sp.find("endTimeUnixNano");
          if (en == sp.end() || !read_nanos(*en, &end_ns))
            return r.fail(where +
                          ": \"endTimeUnixNano\" must be a decimal string of nanoseconds "
                          "(0 to 2^63-1)");
          trace_json::SpanFields f;
          auto string_value = [](const nlohmann::json& a) -> const nlohmann::json* {
            auto val = a.find("value");
            if (val == a.end() || !val->is_object()) return nullptr;
            auto sv = val->find("stringValue");
            return sv == val->end() ? nullptr : &*sv;
          };
          if (!r.read_fields(sp, "attributes", "attribute", "a stringValue", string_value, where,
                             &f))
            return false;
          if (!r.add_span(trace_hex, f, span_hex, start_ns / 1'000'000 - r.base_epoch_ms(),
                          end_ns / 1'000'000 - r.base_epoch_ms(), where))
            return false;
        }
      }
    }
    return true;
  };
  return trace_json::TraceReader(base_epoch_ms, "request").read(text, read_doc, graphs, error);
}

}  // namespace tracelm
