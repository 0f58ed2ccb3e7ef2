#include "export/jaeger.h"

#include <limits>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tracelm {

namespace {

using trace_json::append_string;

std::string_view span_kind(CallType t) {
  switch (t) {
    case CallType::kHttp:
    case CallType::kRpc:
    case CallType::kDb:
    case CallType::kMc:
      return "server";
    case CallType::kMq:
      return "consumer";
    default:
      return "internal";
  }
}

void append_tag(std::string& out, std::string_view key, std::string_view value) {
  out += "{\"key\":";
  append_string(out, key);
  out += ",\"type\":\"string\",\"value\":";
  append_string(out, value);
  out += '}';
}

// A JSON integer in [lo, hi].
bool read_int(const nlohmann::json& v, int64_t lo, int64_t hi, int64_t* out) {
  int64_t x;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else {
    return false;
  }
  if (x < lo || x > hi) return false;
  *out = x;
  return true;
}

// 16 or 32 hex digits (Jaeger writes 64-bit trace ids as 16), as 32 lowercase.
bool normalize_trace_id(std::string_view s, std::string* out) {
  if (s.size() == 16) {
    std::string low;
    if (!trace_json::normalize_hex_id(s, 16, &low)) return false;
    *out = std::string(16, '0') + low;
    return true;
  }
  return trace_json::normalize_hex_id(s, 32, out);
}

}  // namespace

JaegerJsonWriter::JaegerJsonWriter(int64_t base_epoch_ms) : base_(base_epoch_ms) {
  trace_json::check_base_epoch(base_);
}

void JaegerJsonWriter::add(const CallGraph& g, std::string& out) {
  uint64_t index = index_++;
  if (g.edges.empty()) return;
  trace_json::check_time_range(g, index, base_);
  trace_json::SpanIds ids = trace_json::assign_ids(g, index);
  if (!started_) out += "{\"data\":[";
  started_ = true;
  if (any_) out += ',';
  any_ = true;

  std::vector<std::string_view> services;  // process k+1 -> callee
  std::unordered_map<std::string_view, size_t> process_of;
  out += "{\"traceID\":\"";
  out += ids.trace_id;
  out += "\",\"spans\":[";
  for (size_t i = 0; i < g.edges.size(); ++i) {
    const Edge& e = g.edges[i];
    auto [it, fresh] = process_of.emplace(e.callee, services.size() + 1);
    if (fresh) services.push_back(e.callee);
    if (i) out += ',';
    out += "{\"traceID\":\"";
    out += ids.trace_id;
    out += "\",\"spanID\":\"";
    out += ids.span_ids[i];
    out += "\",\"operationName\":";
    append_string(out, fmt::format("{} {}->{}", call_type_name(e.type), e.caller, e.callee));
    out += ",\"references\":[";
    if (ids.parent[i] != trace_json::kNoParent) {
      out += "{\"refType\":\"CHILD_OF\",\"traceID\":\"";
      out += ids.trace_id;
      out += "\",\"spanID\":\"";
      out += ids.span_ids[ids.parent[i]];
      out += "\"}";
    }
    fmt::format_to(std::back_inserter(out), "],\"startTime\":{},\"duration\":{},\"tags\":[",
                   (base_ + e.start_ms) * 1000, (e.finish_ms - e.start_ms) * 1000);
    trace_json::append_attributes(out, g, e, append_tag);
    out += ',';
    append_tag(out, "span.kind", span_kind(e.type));
    fmt::format_to(std::back_inserter(out),
                   "],\"logs\":[],\"processID\":\"p{}\",\"warnings\":null,\"flags\":1}}",
                   it->second);
  }
  out += "],\"processes\":{";
  for (size_t k = 0; k < services.size(); ++k) {
    if (k) out += ',';
    fmt::format_to(std::back_inserter(out), "\"p{}\":{{\"serviceName\":", k + 1);
    append_string(out, services[k]);
    out += ",\"tags\":[]}";
  }
  out += "},\"warnings\":null}";
}

void JaegerJsonWriter::finish(std::string& out) {
  if (finished_) return;
  finished_ = true;
  if (!started_) out += "{\"data\":[";
  out += "],\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}";
}

std::string to_jaeger_json(const std::vector<CallGraph>& graphs, int64_t base_epoch_ms) {
  JaegerJsonWriter w(base_epoch_ms);
  std::string out;
  for (const CallGraph& g : graphs) w.add(g, out);
  w.finish(out);
  return out;
}

bool parse_jaeger_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                       int64_t base_epoch_ms) {
  std::string trace_hex, span_trace_hex, span_hex;
  constexpr int64_t kMaxUs = kMaxEpochMs * 1000 + 999;
  auto read_doc = [&](const nlohmann::json& j, trace_json::TraceReader& r) {
    auto data = j.is_object() ? j.find("data") : j.end();
    if (!j.is_object() || data == j.end() || !data->is_array())
      return r.fail("expected {\"data\":[...]} (Jaeger JSON traces)");
    for (size_t t = 0; t < data->size(); ++t) {
      const nlohmann::json& tr = (*data)[t];
      std::string tr_where = fmt::format("data[{}]", t);
      if (!tr.is_object()) return r.fail(tr_where + ": expected an object");
      auto tid = tr.find("traceID");
      if (tid == tr.end() || !tid->is_string() ||
          !normalize_trace_id(tid->get_ref<const std::string&>(), &trace_hex))
        return r.fail(tr_where + ": \"traceID\" must be 16 or 32 hex digits, not all zero");
      if (auto p = tr.find("processes"); p != tr.end() && !p->is_object())
        return r.fail(tr_where + ": \"processes\" must be an object");
      auto spans = tr.find("spans");
      if (spans == tr.end()) continue;
      if (!spans->is_array()) return r.fail(tr_where + ": \"spans\" must be an array");
      for (size_t k = 0; k < spans->size(); ++k) {
        const nlohmann::json& sp = (*spans)[k];
        std::string where = fmt::format("{}.spans[{}]", tr_where, k);
        if (!sp.is_object()) return r.fail(where + ": expected an object");
        auto sid = sp.find("spanID");
        if (sid == sp.end() || !sid->is_string() ||
            !trace_json::normalize_hex_id(sid->get_ref<const std::string&>(), 16, &span_hex))
          return r.fail(where + ": \"spanID\" must be 16 hex digits, not all zero");
        where += " (spanID " + span_hex + ")";
        if (auto st = sp.find("traceID"); st != sp.end()) {
          if (!st->is_string() ||
              !normalize_trace_id(st->get_ref<const std::string&>(), &span_trace_hex) ||
              span_trace_hex != trace_hex)
            return r.fail(where + ": \"traceID\" differs from the trace's");
        }
        if (auto ref = sp.find("references");
            ref != sp.end() && !ref->is_array() && !ref->is_null())
          return r.fail(where + ": \"references\" must be an array");
        if (auto n = sp.find("operationName"); n != sp.end() && !n->is_string())
          return r.fail(where + ": \"operationName\" must be a string");
        if (auto n = sp.find("processID"); n != sp.end() && !n->is_string())
          return r.fail(where + ": \"processID\" must be a string");
        int64_t start_us = 0, duration_us = 0;
        auto st = sp.find("startTime");
        if (st == sp.end() || !read_int(*st, 0, kMaxUs, &start_us))
          return r.fail(
              where +
              fmt::format(": \"startTime\" must be an integer of microseconds in [0, {}]", kMaxUs));
        auto du = sp.find("duration");
        if (du == sp.end() || !read_int(*du, -kMaxUs, kMaxUs, &duration_us) ||
            start_us + duration_us < 0 || start_us + duration_us > kMaxUs)
          return r.fail(where + ": \"duration\" must be an integer of microseconds ending in [0, " +
                        std::to_string(kMaxUs) + "]");
        trace_json::SpanFields f;
        auto tag_value = [](const nlohmann::json& a) -> const nlohmann::json* {
          auto val = a.find("value");
          return val == a.end() ? nullptr : &*val;
        };
        if (!r.read_fields(sp, "tags", "tag", "a string value", tag_value, where, &f)) return false;
        if (!r.add_span(trace_hex, f, span_hex, start_us / 1000 - r.base_epoch_ms(),
                        (start_us + duration_us) / 1000 - r.base_epoch_ms(), where))
          return false;
      }
    }
    return true;
  };
  return trace_json::TraceReader(base_epoch_ms, "document").read(text, read_doc, graphs, error);
}

}  // namespace tracelm
