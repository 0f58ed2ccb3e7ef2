#include "export/jaeger.h"

#include <fmt/format.h>

namespace tracelm {

namespace {

using trace_json::append_string;

void append_tag(std::string& out, std::string_view key, std::string_view value) {
  out += "{\"key\":";
  append_string(out, key);
  out += ",\"type\":\"string\",\"value\":";
  append_string(out, value);
  out += '}';
}

}  // namespace

JaegerJsonWriter::JaegerJsonWriter(TraceTiming timing) : timing_(timing) {
  trace_start_ns(CallGraph{}, 0, timing_);  // checks the timing
}

void JaegerJsonWriter::add(const CallGraph& g, std::string& out) {
  uint64_t index = index_++;
  if (g.edges.empty()) return;
  TraceLayout L = lay_out_trace(g, index, timing_);
  if (!started_) out += "{\"data\":[";
  started_ = true;
  if (any_) out += ',';
  any_ = true;

  std::vector<size_t> process_of(L.spans.size());
  for (size_t k = 0; k < L.services.size(); ++k)
    for (size_t i : L.spans_of_service[k]) process_of[i] = k + 1;
  out += "{\"traceID\":\"";
  out += L.trace_id;
  out += "\",\"spans\":[";
  for (size_t i = 0; i < L.spans.size(); ++i) {
    const OutSpan& s = L.spans[i];
    if (i) out += ',';
    out += "{\"traceID\":\"";
    out += L.trace_id;
    out += "\",\"spanID\":\"";
    out += s.span_id;
    out += "\",\"operationName\":";
    append_string(out, s.name);
    out += ",\"references\":[";
    if (s.parent != kNoParentSpan) {
      out += "{\"refType\":\"CHILD_OF\",\"traceID\":\"";
      out += L.trace_id;
      out += "\",\"spanID\":\"";
      out += L.spans[s.parent].span_id;
      out += "\"}";
    }
    // Jaeger times are microseconds; tracelm's are whole milliseconds on a
    // nanosecond start, so the start rounds down and the duration is exact
    // for starts on a microsecond.
    int64_t start_us = s.start_ns / 1000, end_us = s.end_ns / 1000;
    fmt::format_to(std::back_inserter(out), "],\"startTime\":{},\"duration\":{},\"tags\":[",
                   start_us, end_us - start_us);
    for (const auto& [key, value] : s.attributes) {
      append_tag(out, key, value);
      out += ',';
    }
    append_tag(out, "span.kind", out_kind_name(s.kind));
    fmt::format_to(std::back_inserter(out),
                   "],\"logs\":[],\"processID\":\"p{}\",\"warnings\":null,\"flags\":1}}",
                   process_of[i]);
  }
  out += "],\"processes\":{";
  for (size_t k = 0; k < L.services.size(); ++k) {
    if (k) out += ',';
    fmt::format_to(std::back_inserter(out), "\"p{}\":{{\"serviceName\":", k + 1);
    append_string(out, L.services[k]);
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

std::string to_jaeger_json(const std::vector<CallGraph>& graphs, const TraceTiming& timing) {
  JaegerJsonWriter w(timing);
  std::string out;
  for (const CallGraph& g : graphs) w.add(g, out);
  w.finish(out);
  return out;
}

bool parse_jaeger_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                       NodeMode node) {
  return trace_json::parse_trace_text(text, "jaeger-json", graphs, error, node);
}

}  // namespace tracelm
