#include "export/otlp.h"

#include <algorithm>
#include <exception>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ingest/spans/span_graph.h"
#include "ingest/spans/span_readers.h"
#include "io/byte_source.h"
#include "util/json_text.h"

namespace tracelm {

namespace trace_json {

void append_string(std::string& out, std::string_view s) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
  if (!ascii && !is_valid_utf8(s)) {
    out += nlohmann::json(std::string(s))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  append_json_string(out, s);
}

bool parse_trace_text(std::string_view text, std::string_view want, std::vector<CallGraph>* graphs,
                      std::string* error, NodeMode node) {
  std::string scratch;
  std::string& err = error ? *error : scratch;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return true;
  SpanFormat f = detect_span_format(text.substr(0, 4096));
  if (f != SpanFormat::kOtherJson && span_format_name(f) != want) {
    err = fmt::format("expected {}, found {}", want, span_format_name(f));
    return false;
  }
  std::vector<std::vector<Span>> traces;
  std::unordered_map<std::string, size_t> trace_of;
  std::string bad;
  SpanSink sink;
  sink.on_span = [&](Span&& s) {
    auto [it, fresh] = trace_of.emplace(s.trace_id, traces.size());
    if (fresh) traces.emplace_back();
    traces[it->second].push_back(std::move(s));
  };
  sink.on_bad_span = [&](std::string_view trace, std::string_view reason) {
    if (bad.empty()) bad = fmt::format("trace {}: a bad span ({})", trace, reason);
  };
  JsonReadStats st;
  try {
    auto src = memory_source("text", std::string(text));
    read_json_spans(*src, text.size() + 1, sink, &st);
  } catch (const std::exception& e) {
    err = e.what();
    return false;
  }
  if (st.bad_lines) {
    err = st.first_bad_line;
    return false;
  }
  if (!st.bad_spans.empty()) {
    err = bad.empty() ? fmt::format("a bad span ({})", st.bad_spans.begin()->first) : bad;
    return false;
  }
  for (auto& spans : traces) {
    SpanGraphOptions opt;
    opt.node = node;
    SpanGraph sg = build_span_graph(spans, opt);
    if (sg.reject != SpanReject::kNone) {
      err = fmt::format("trace {} rejected: {}: {}", spans.empty() ? "" : spans[0].trace_id,
                        span_reject_code(sg.reject), sg.detail);
      return false;
    }
    graphs->push_back(std::move(sg.graph));
  }
  return true;
}

}  // namespace trace_json

namespace {

using trace_json::append_string;

void append_attr(std::string& out, std::string_view key, std::string_view value) {
  out += "{\"key\":";
  append_string(out, key);
  out += ",\"value\":{\"stringValue\":";
  append_string(out, value);
  out += "}}";
}

void append_span(std::string& out, const TraceLayout& L, const OutSpan& s) {
  out += "{\"traceId\":\"";
  out += L.trace_id;
  out += "\",\"spanId\":\"";
  out += s.span_id;
  out += '"';
  if (s.parent != kNoParentSpan) {
    out += ",\"parentSpanId\":\"";
    out += L.spans[s.parent].span_id;
    out += '"';
  }
  out += ",\"name\":";
  append_string(out, s.name);
  fmt::format_to(std::back_inserter(out),
                 ",\"kind\":{},\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\","
                 "\"attributes\":[",
                 static_cast<int>(s.kind), s.start_ns, s.end_ns);
  for (size_t a = 0; a < s.attributes.size(); ++a) {
    if (a) out += ',';
    append_attr(out, s.attributes[a].first, s.attributes[a].second);
  }
  out += "]}";
}

}  // namespace

OtlpJsonWriter::OtlpJsonWriter(TraceTiming timing, Mode mode) : timing_(timing), mode_(mode) {
  trace_start_ns(CallGraph{}, 0, timing_);  // checks the timing
}

void OtlpJsonWriter::add(const CallGraph& g, std::string& out) {
  uint64_t index = index_++;
  if (g.edges.empty()) return;
  TraceLayout L = lay_out_trace(g, index, timing_);
  if (mode_ == Mode::kLines) {
    out += "{\"resourceSpans\":[";
  } else {
    if (!started_) out += "{\"resourceSpans\":[";
    started_ = true;
    if (any_) out += ',';
    any_ = true;
  }
  for (size_t k = 0; k < L.services.size(); ++k) {
    if (k) out += ',';
    out += "{\"resource\":{\"attributes\":[";
    append_attr(out, "service.name", L.services[k]);
    out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tracelm\"},\"spans\":[";
    const auto& idx = L.spans_of_service[k];
    for (size_t j = 0; j < idx.size(); ++j) {
      if (j) out += ',';
      append_span(out, L, L.spans[idx[j]]);
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

std::string to_otlp_json(const std::vector<CallGraph>& graphs, const TraceTiming& timing) {
  OtlpJsonWriter w(timing, OtlpJsonWriter::Mode::kOneRequest);
  std::string out;
  for (const CallGraph& g : graphs) w.add(g, out);
  w.finish(out);
  return out;
}

std::string to_otlp_json_lines(const std::vector<CallGraph>& graphs, const TraceTiming& timing) {
  OtlpJsonWriter w(timing, OtlpJsonWriter::Mode::kLines);
  std::string out;
  for (const CallGraph& g : graphs) w.add(g, out);
  w.finish(out);
  return out;
}

bool parse_otlp_json(std::string_view text, std::vector<CallGraph>* graphs, std::string* error,
                     NodeMode node) {
  return trace_json::parse_trace_text(text, "otlp-json", graphs, error, node);
}

}  // namespace tracelm
