#include "ingest/spans/span_readers.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ingest/spans/span_graph.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "util/json_text.h"

namespace tracelm {

namespace {

using json = nlohmann::json;
constexpr int kMaxJsonDepth = 64;

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.front())) ||
                        s.front() == '\xef' || s.front() == '\xbb' || s.front() == '\xbf'))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool parse_i64(std::string_view s, int64_t* v) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!s.empty() && (digit(s.front()) || s.front() == '-') && digit(s.back())) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);  // nothing to trim
    if (ec == std::errc() && p == s.data() + s.size()) return true;
  }
  s = trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  if (ec == std::errc() && p == s.data() + s.size()) return true;
  // A decimal value (some tables write "1674981768697000000.0"): round.
  double d = 0;
  auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec2 != std::errc() || p2 != s.data() + s.size() || !(d > -9.2e18 && d < 9.2e18)) return false;
  *v = static_cast<int64_t>(d < 0 ? d - 0.5 : d + 0.5);
  return true;
}

// 1-based line and column of byte `off` in `text`.
std::pair<uint64_t, uint64_t> line_col(std::string_view text, size_t off) {
  off = std::min(off, text.size());
  uint64_t line = 1, col = 1;
  for (size_t i = 0; i < off; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

std::string describe(const json& j) {
  if (j.is_object()) {
    std::string keys;
    size_t k = 0;
    for (auto it = j.begin(); it != j.end() && k < 8; ++it, ++k) keys += (k ? ", " : "") + it.key();
    if (j.size() > 8) keys += ", ...";
    return "an object with keys {" + keys + "}";
  }
  if (j.is_array())
    return j.empty() ? "an empty array" : "an array of " + std::string(j[0].type_name()) + "s";
  return std::string("a JSON ") + j.type_name();
}

constexpr std::string_view kTried =
    "tried OTLP/JSON {\"resourceSpans\":[...]}, Jaeger JSON {\"data\":[{\"traceID\",\"spans\"}]}, "
    "Zipkin v2 JSON [{\"traceId\",\"id\",...}]";

// A JSON value as text for attributes: strings as is, numbers and bools printed.
std::string scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());
  return "";
}

// OTLP AnyValue {"stringValue": ...} (intValue may be a string) -> text.
std::string any_value_text(const json& v) {
  if (!v.is_object() || v.empty()) return "";
  for (const char* k : {"stringValue", "intValue", "boolValue", "doubleValue"}) {
    auto it = v.find(k);
    if (it != v.end()) return scalar_text(*it);
  }
  return "";  // arrayValue, kvlistValue, bytesValue: not used by the rule
}

// Integer from a JSON number or a decimal string (OTLP writes 64-bit ints as strings).
bool json_i64(const json& v, int64_t* out) {
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!(d > -9.2e18 && d < 9.2e18)) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  if (v.is_string()) return parse_i64(v.get_ref<const std::string&>(), out);
  return false;
}

std::string str_field(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : scalar_text(*it);
}

// An OTLP/JSON id: hex as the spec says; a protobuf-JSON base64 id is kept as text.
bool all_zero(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

class DocReader {
 public:
  DocReader(const SpanSink& sink, JsonReadStats* st) : sink_(sink), st_(st) {}

  void bad(std::string_view trace, const std::string& reason) {
    ++st_->bad_spans[reason];
    if (!trace.empty() && sink_.on_bad_span) sink_.on_bad_span(trace, reason);
  }

  void emit(Span&& s) {
    if (s.trace_id.empty() || s.span_id.empty()) return bad(s.trace_id, "missing_id");
    s.resolve();
    sink_.on_span(std::move(s));
  }

  // Returns false when `doc` is none of the formats.
  bool read(const json& doc) {
    if (doc.is_object() && doc.contains("resourceSpans")) return otlp(doc), true;
    if (doc.is_object() && doc.contains("data") && doc["data"].is_array()) {
      for (const json& t : doc["data"]) jaeger_trace(t);
      return true;
    }
    if (doc.is_object() && doc.contains("traceID") && doc.contains("spans"))
      return jaeger_trace(doc), true;
    if (doc.is_array() && (doc.empty() || (doc[0].is_object() && doc[0].contains("traceId"))))
      return zipkin(doc), true;
    // A Zipkin file of several traces: [[span, ...], [span, ...]].
    if (doc.is_array() && doc[0].is_array()) {
      for (const json& t : doc)
        if (t.is_array()) zipkin(t);
      return true;
    }
    return false;
  }

 private:
  void otlp(const json& doc) {
    const json& rss = doc["resourceSpans"];
    if (!rss.is_array()) return bad("", "bad_structure");
    for (const json& rs : rss) {
      if (!rs.is_object()) continue;
      std::string service;
      auto res = rs.find("resource");
      if (res != rs.end() && res->is_object() && res->contains("attributes") &&
          (*res)["attributes"].is_array())
        for (const json& a : (*res)["attributes"])
          if (a.is_object() && str_field(a, "key") == "service.name" && a.contains("value"))
            service = any_value_text(a["value"]);
      if (service.empty()) service = "unknown_service";
      for (const char* scope_key : {"scopeSpans", "instrumentationLibrarySpans"}) {
        auto ss = rs.find(scope_key);
        if (ss == rs.end() || !ss->is_array()) continue;
        for (const json& sc : *ss) {
          if (!sc.is_object() || !sc.contains("spans") || !sc["spans"].is_array()) continue;
          for (const json& js : sc["spans"]) otlp_span(js, service);
        }
      }
    }
  }

  void otlp_span(const json& js, const std::string& service) {
    if (!js.is_object()) return bad("", "bad_structure");
    Span s;
    s.trace_id = str_field(js, "traceId");
    s.span_id = str_field(js, "spanId");
    s.parent_id = str_field(js, "parentSpanId");
    if (all_zero(s.parent_id)) s.parent_id.clear();
    s.service = service;
    s.name = str_field(js, "name");
    if (auto k = js.find("kind"); k != js.end()) s.kind = parse_span_kind(scalar_text(*k));
    auto st = js.find("startTimeUnixNano"), en = js.find("endTimeUnixNano");
    if (st == js.end() || en == js.end() || !json_i64(*st, &s.start_ns) ||
        !json_i64(*en, &s.end_ns))
      return bad(s.trace_id, "bad_time");
    if (auto at = js.find("attributes"); at != js.end() && at->is_array())
      for (const json& a : *at)
        if (a.is_object() && a.contains("value"))
          s.set_attribute(str_field(a, "key"), any_value_text(a["value"]));
    emit(std::move(s));
  }

  void jaeger_trace(const json& t) {
    if (!t.is_object() || !t.contains("spans") || !t["spans"].is_array())
      return bad("", "bad_structure");
    std::unordered_map<std::string, std::string> proc;  // processID -> serviceName
    if (auto p = t.find("processes"); p != t.end() && p->is_object())
      for (auto it = p->begin(); it != p->end(); ++it)
        if (it->is_object()) proc[it.key()] = str_field(*it, "serviceName");
    for (const json& js : t["spans"]) {
      if (!js.is_object()) {
        bad("", "bad_structure");
        continue;
      }
      Span s;
      s.trace_id = str_field(js, "traceID");
      s.span_id = str_field(js, "spanID");
      s.name = str_field(js, "operationName");
      if (auto pr = js.find("process"); pr != js.end() && pr->is_object())
        s.service = str_field(*pr, "serviceName");
      if (s.service.empty()) {
        auto it = proc.find(str_field(js, "processID"));
        if (it != proc.end()) s.service = it->second;
      }
      if (s.service.empty()) s.service = "unknown_service";
      // Parent: the first CHILD_OF reference, else the first FOLLOWS_FROM.
      const json* parent_ref = nullptr;
      if (auto refs = js.find("references"); refs != js.end() && refs->is_array()) {
        for (const json& r : *refs)
          if (r.is_object() && str_field(r, "refType") == "CHILD_OF") {
            parent_ref = &r;
            break;
          }
        if (!parent_ref)
          for (const json& r : *refs)
            if (r.is_object()) {
              parent_ref = &r;
              break;
            }
      }
      if (parent_ref) {
        s.parent_id = str_field(*parent_ref, "spanID");
        std::string pt = str_field(*parent_ref, "traceID");
        if (!pt.empty() && pt != s.trace_id) s.parent_trace_id = pt;
      } else {
        s.parent_id = str_field(js, "parentSpanID");
      }
      if (all_zero(s.parent_id)) s.parent_id.clear();
      int64_t start_us = 0, dur_us = 0;
      auto st = js.find("startTime"), du = js.find("duration");
      if (st == js.end() || du == js.end() || !json_i64(*st, &start_us) ||
          !json_i64(*du, &dur_us) || start_us > INT64_MAX / 1000 || start_us < 0 ||
          dur_us > INT64_MAX / 1000 - start_us) {
        bad(s.trace_id, "bad_time");
        continue;
      }
      s.start_ns = start_us * 1000;
      s.end_ns = s.start_ns + dur_us * 1000;
      if (auto tags = js.find("tags"); tags != js.end() && tags->is_array())
        for (const json& tg : *tags) {
          if (!tg.is_object()) continue;
          std::string key = str_field(tg, "key");
          std::string val = tg.contains("value") ? scalar_text(tg["value"]) : "";
          if (key == "span.kind") {
            s.kind = parse_span_kind(val);
          } else {
            s.set_attribute(key, val);
          }
        }
      emit(std::move(s));
    }
  }

  void zipkin(const json& arr) {
    // Shared span ids (B3): a SERVER span with the id of its CLIENT span gets
    // its own id "<id>#server"; the server service's children follow it.
    std::unordered_map<std::string, std::string> shared;  // id -> server service
    for (const json& js : arr)
      if (js.is_object() && str_field(js, "kind") == "SERVER" && js.value("shared", false) &&
          js.contains("localEndpoint") && js["localEndpoint"].is_object())
        shared[str_field(js, "id")] = str_field(js["localEndpoint"], "serviceName");
    for (const json& js : arr) {
      if (!js.is_object()) {
        bad("", "bad_structure");
        continue;
      }
      Span s;
      s.trace_id = str_field(js, "traceId");
      s.span_id = str_field(js, "id");
      s.parent_id = str_field(js, "parentId");
      s.name = str_field(js, "name");
      std::string kind = str_field(js, "kind");
      s.kind = kind.empty() ? SpanKind::kUnspecified : parse_span_kind(kind);
      if (auto le = js.find("localEndpoint"); le != js.end() && le->is_object())
        s.service = str_field(*le, "serviceName");
      if (s.service.empty()) s.service = "unknown_service";
      if (auto re = js.find("remoteEndpoint"); re != js.end() && re->is_object()) {
        std::string rs = str_field(*re, "serviceName");
        if (!rs.empty()) s.peer_service = rs;
        std::string addr = str_field(*re, "ipv4");
        if (addr.empty()) addr = str_field(*re, "ipv6");
        if (!addr.empty()) s.server_address = addr;
      }
      bool is_shared_server = s.kind == SpanKind::kServer && js.value("shared", false);
      if (is_shared_server) {
        s.parent_id = s.span_id;
        s.span_id += "#server";
      } else if (auto it = shared.find(s.parent_id);
                 it != shared.end() && it->second == s.service && s.kind != SpanKind::kServer) {
        s.parent_id += "#server";
      }
      int64_t ts = 0, du = 0;
      auto t = js.find("timestamp");
      if (t == js.end() || !json_i64(*t, &ts) || ts < 0 || ts > INT64_MAX / 1000) {
        bad(s.trace_id, "bad_time");
        continue;
      }
      if (auto d = js.find("duration");
          d != js.end() && (!json_i64(*d, &du) || du < 0 || du > INT64_MAX / 1000 - ts)) {
        bad(s.trace_id, "bad_time");
        continue;
      }
      s.start_ns = ts * 1000;
      s.end_ns = s.start_ns + du * 1000;
      if (auto tags = js.find("tags"); tags != js.end() && tags->is_object())
        for (auto it = tags->begin(); it != tags->end(); ++it)
          s.set_attribute(it.key(), scalar_text(*it));
      emit(std::move(s));
    }
  }

  const SpanSink& sink_;
  JsonReadStats* st_;
};

// Parses `text` as one JSON document; on failure sets *err ("LINE:COL: msg").
std::optional<json> parse_doc(std::string_view text, uint64_t first_line, std::string* err) {
  if (json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    *err = fmt::format("{}:1: JSON nested deeper than {} levels", first_line, kMaxJsonDepth);
    return std::nullopt;
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    auto [l, c] = line_col(text, e.byte ? e.byte - 1 : 0);
    std::string what = e.what();
    size_t k = what.find("parse error");
    *err = fmt::format("{}:{}: not valid JSON: {}", first_line + l - 1, c,
                       k == std::string::npos ? what : what.substr(k));
    return std::nullopt;
  } catch (const json::exception& e) {  // e.g. a number beyond a double's range
    std::string what = e.what();
    size_t k = what.find(']');
    *err = fmt::format("{}: not valid JSON: {}", first_line,
                       k == std::string::npos ? what : what.substr(k + 2));
    return std::nullopt;
  }
}

}  // namespace

std::string_view span_format_name(SpanFormat f) {
  switch (f) {
    case SpanFormat::kOtlpJson:
      return "otlp-json";
    case SpanFormat::kJaegerJson:
      return "jaeger-json";
    case SpanFormat::kZipkinJson:
      return "zipkin-json";
    case SpanFormat::kOtherJson:
      return "json";
    case SpanFormat::kSpanTable:
      return "span-table";
    case SpanFormat::kAlibabaCsv:
      return "alibaba-csv";
    case SpanFormat::kUnknown:
      break;
  }
  return "unknown";
}

SpanFormat detect_span_format(std::string_view head) {
  std::string_view h = trim(head);
  if (h.empty()) return SpanFormat::kUnknown;
  if (h[0] == '{' || h[0] == '[') {
    if (h.find("\"resourceSpans\"") != std::string_view::npos) return SpanFormat::kOtlpJson;
    if (h[0] == '{' && (h.find("\"data\"") != std::string_view::npos ||
                        h.find("\"traceID\"") != std::string_view::npos))
      return SpanFormat::kJaegerJson;
    if (h[0] == '[' && h.find("\"traceId\"") != std::string_view::npos)
      return SpanFormat::kZipkinJson;
    return SpanFormat::kOtherJson;
  }
  std::string line = lower(h.substr(0, h.find('\n')));
  auto has = [&](std::initializer_list<std::string_view> names) {
    std::vector<std::string> cols;
    size_t p = 0;
    while (p <= line.size()) {
      size_t q = line.find(',', p);
      if (q == std::string::npos) q = line.size();
      std::string c(trim(std::string_view(line).substr(p, q - p)));
      if (c.size() >= 2 && c.front() == '"' && c.back() == '"') c = c.substr(1, c.size() - 2);
      cols.push_back(c);
      p = q + 1;
    }
    for (auto n : names)
      if (std::find(cols.begin(), cols.end(), n) != cols.end()) return true;
    return false;
  };
  if (has({"rpc_id", "rpcid"}) && has({"um"}) && has({"dm"})) return SpanFormat::kAlibabaCsv;
  if (has({"traceid", "trace_id", "trace id"}) && has({"spanid", "span_id", "span id"}) &&
      has({"parentid", "parent_id", "parentspanid", "parent_span_id", "parent id"}))
    return SpanFormat::kSpanTable;
  return SpanFormat::kUnknown;
}

void read_json_spans(ByteSource& src, size_t max_document, const SpanSink& sink,
                     JsonReadStats* stats) {
  JsonReadStats local;
  JsonReadStats* st = stats ? stats : &local;
  DocReader reader(sink, st);
  LineReader lines(src, max_document, size_t{1} << 20);
  std::string_view line;
  bool overlong = false;
  std::string err;
  auto too_big = [&](uint64_t at) {
    return InputError(src.name(), at,
                      fmt::format("a JSON document longer than {} MiB (--max-json-mb); split it "
                                  "(one document per line is streamed) or raise the limit",
                                  max_document >> 20));
  };
  // The first non-blank line decides: a complete document -> one per line.
  uint64_t first = 0;
  while (lines.next(&line, &overlong)) {
    if (overlong) throw too_big(lines.line_no());
    if (!trim(line).empty()) {
      first = lines.line_no();
      break;
    }
  }
  if (first == 0) throw InputError(src.name(), 0, "empty file: no JSON document");
  std::string buf(line);
  std::optional<json> doc = parse_doc(buf, first, &err);
  if (!doc) {
    // A document spread over lines: read it whole (bounded).
    while (lines.next(&line, &overlong)) {
      if (overlong || buf.size() + line.size() + 1 > max_document) throw too_big(lines.line_no());
      buf += '\n';
      buf += line;
    }
    doc = parse_doc(buf, first, &err);
    if (!doc) {  // err = "LINE:COL: message"
      size_t c2 = err.find(':', err.find(':') + 1);
      throw InputError(src.name() + ":" + err.substr(0, c2), 0, err.substr(c2 + 2));
    }
    buf.clear();
    buf.shrink_to_fit();
    if (!reader.read(*doc))
      throw InputError(src.name(), first,
                       fmt::format("not a span format: {}; found {}", kTried, describe(*doc)));
    ++st->documents;
    return;
  }
  if (!reader.read(*doc))
    throw InputError(src.name(), first,
                     fmt::format("not a span format: {}; found {}{}", kTried, describe(*doc),
                                 doc->is_object() && doc->contains("edges")
                                     ? " (a tracelm corpus line: it needs no ingesting)"
                                     : ""));
  ++st->documents;
  doc.reset();
  while (lines.next(&line, &overlong)) {
    if (trim(line).empty()) continue;
    err.clear();
    if (overlong) {
      err =
          fmt::format("{}:1: a JSON line longer than {} MiB", lines.line_no(), max_document >> 20);
    } else if (std::optional<json> d = parse_doc(line, lines.line_no(), &err)) {
      if (!reader.read(*d))
        err = fmt::format("{}:1: not a span format ({})", lines.line_no(), describe(*d));
    }
    if (!err.empty()) {
      ++st->bad_lines;
      if (st->first_bad_line.empty()) st->first_bad_line = src.name() + ":" + err;
      continue;
    }
    ++st->documents;
  }
}

// ---------------------------------------------------------------- span tables

std::string_view span_row_error_code(SpanRowError e) {
  switch (e) {
    case SpanRowError::kNone:
      return "none";
    case SpanRowError::kMalformed:
      return "malformed";
    case SpanRowError::kMissingId:
      return "missing_id";
    case SpanRowError::kFieldTooLong:
      return "field_too_long";
    case SpanRowError::kBadEncoding:
      return "bad_encoding";
    case SpanRowError::kBadTime:
      return "bad_time";
    case SpanRowError::kCount:
      break;
  }
  return "?";
}

SpanKind parse_span_kind(std::string_view s) {
  std::string k = lower(trim(s));
  if (k.rfind("span_kind_", 0) == 0) k = k.substr(10);
  if (k == "server" || k == "2") return SpanKind::kServer;
  if (k == "client" || k == "3") return SpanKind::kClient;
  if (k == "producer" || k == "4") return SpanKind::kProducer;
  if (k == "consumer" || k == "5") return SpanKind::kConsumer;
  if (k == "internal" || k == "1") return SpanKind::kInternal;
  return SpanKind::kUnspecified;
}

SpanColumns SpanColumns::preset(std::string_view name) {
  if (name == "nezha" || name == "trainticket" || name == "onlineboutique") {
    SpanColumns c;
    c.trace = "TraceID";
    c.span = "SpanID";
    c.parent = "ParentID";
    c.pod = "PodName";
    c.operation = "OperationName";
    c.start = "StartTimeUnixNano";
    c.end = "EndTimeUnixNano";
    c.duration = "Duration";
    c.start_unit = "ns";
    c.duration_unit = "us";
    return c;
  }
  throw std::invalid_argument("unknown column preset '" + std::string(name) +
                              "' (known: nezha = trainticket = onlineboutique)");
}

SpanColumns SpanColumns::parse(std::string_view spec) { return parse(spec, SpanColumns()); }

SpanColumns SpanColumns::parse(std::string_view spec, SpanColumns c) {
  spec = trim(spec);
  if (spec.find('=') == std::string_view::npos) return preset(spec);
  size_t p = 0;
  while (p < spec.size()) {
    size_t q = spec.find(',', p);
    if (q == std::string_view::npos) q = spec.size();
    std::string_view kv = trim(spec.substr(p, q - p));
    p = q + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos)
      throw std::invalid_argument("--columns: expected key=column, got '" + std::string(kv) + "'");
    std::string key(trim(kv.substr(0, eq)));
    std::string val(trim(kv.substr(eq + 1)));
    std::string* f = key == "trace"           ? &c.trace
                     : key == "span"          ? &c.span
                     : key == "parent"        ? &c.parent
                     : key == "service"       ? &c.service
                     : key == "pod"           ? &c.pod
                     : key == "operation"     ? &c.operation
                     : key == "kind"          ? &c.kind
                     : key == "start"         ? &c.start
                     : key == "end"           ? &c.end
                     : key == "duration"      ? &c.duration
                     : key == "start_unit"    ? &c.start_unit
                     : key == "duration_unit" ? &c.duration_unit
                                              : nullptr;
    if (key == "preset") {
      c = preset(val);
      continue;
    }
    if (!f)
      throw std::invalid_argument(
          "--columns: unknown key '" + key +
          "' (keys: trace, span, parent, service, pod, operation, kind, start, end, duration, "
          "start_unit, duration_unit, preset)");
    *f = val;
  }
  for (const std::string* u : {&c.start_unit, &c.duration_unit})
    if (*u != "ns" && *u != "us" && *u != "ms" && *u != "s" &&
        !(u == &c.start_unit && *u == "auto"))
      throw std::invalid_argument("--columns: unit '" + *u + "' is not ns, us, ms or s");
  return c;
}

namespace {

int64_t unit_mul(std::string_view u) {
  return u == "ns" ? 1 : u == "us" ? 1000 : u == "ms" ? 1000000 : u == "s" ? 1000000000 : 0;
}

}  // namespace

SpanTableReader::SpanTableReader(const std::vector<std::string_view>& header,
                                 const SpanColumns& cols) {
  num_columns_ = header.size();
  std::vector<std::string> names;
  for (auto h : header) {
    std::string n = lower(trim(h));
    names.push_back(n);
  }
  auto find = [&](const std::string& given, std::initializer_list<std::string_view> dflt) -> int {
    if (!given.empty()) {
      std::string g = lower(given);
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == g) return static_cast<int>(i);
      return -2;  // named but absent
    }
    for (auto d : dflt)
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == d) return static_cast<int>(i);
    return -1;
  };
  trace_ = find(cols.trace, {"traceid", "trace_id", "trace id"});
  span_ = find(cols.span, {"spanid", "span_id", "span id"});
  parent_ =
      find(cols.parent, {"parentid", "parent_id", "parentspanid", "parent_span_id", "parent id"});
  service_ = find(cols.service, {"service", "servicename", "service_name", "service.name"});
  pod_ = find(cols.pod, {"podname", "pod", "pod_name", "k8s.pod.name"});
  op_ = find(cols.operation,
             {"operationname", "operation", "operation_name", "spanname", "span_name", "name"});
  kind_ = find(cols.kind, {"kind", "spankind", "span_kind"});
  start_ = find(cols.start, {"starttimeunixnano", "start_time_unix_nano", "starttime", "start_time",
                             "start", "timestamp"});
  end_ = find(cols.end, {"endtimeunixnano", "end_time_unix_nano", "endtime", "end_time", "end"});
  duration_ = find(cols.duration, {"duration", "duration_us"});
  std::vector<std::string> missing;
  auto need = [&](int idx, std::string_view what, const std::string& given) {
    if (idx == -2) missing.push_back(std::string(what) + " (column '" + given + "' not in header)");
    if (idx == -1) missing.push_back(std::string(what));
  };
  need(trace_, "trace", cols.trace);
  need(span_, "span", cols.span);
  need(parent_, "parent", cols.parent);
  if (service_ < 0 && pod_ < 0)
    need(service_ < -1 ? service_ : pod_, "service or pod",
         cols.service.empty() ? cols.pod : cols.service);
  need(op_, "operation", cols.operation);
  need(start_, "start", cols.start);
  if (end_ < 0 && duration_ < 0)
    need(end_ < -1 ? end_ : duration_, "end or duration",
         cols.end.empty() ? cols.duration : cols.end);
  if (kind_ == -2) need(kind_, "kind", cols.kind);
  if (!missing.empty()) {
    std::string found;
    for (size_t i = 0; i < header.size(); ++i) found += (i ? ", " : "") + std::string(header[i]);
    std::string m;
    for (size_t i = 0; i < missing.size(); ++i) m += (i ? "; " : "") + missing[i];
    throw std::invalid_argument("span table header: cannot map " + m + "; found columns: " + found +
                                " (map them with --columns trace=...,span=...,parent=...,"
                                "service=...|pod=...,operation=...,start=...,end=...|duration=..."
                                " or --columns nezha)");
  }
  if (kind_ < 0) kind_ = -1;
  if (service_ < 0) service_ = -1;
  if (end_ < 0) end_ = -1;
  if (duration_ < 0) duration_ = -1;
  start_mul_ = unit_mul(cols.start_unit);  // 0 for "auto"
  dur_mul_ = unit_mul(cols.duration_unit);
}

SpanRowError SpanTableReader::parse(const std::vector<std::string_view>& f,
                                    SpanTableRow* row) const {
  if (f.size() != num_columns_) return SpanRowError::kMalformed;
  std::string_view trace = f[trace_], id = f[span_], parent = f[parent_];
  std::string_view service = service_ >= 0 ? f[service_] : service_from_pod(f[pod_]);
  std::string_view op = f[op_];
  if (trace.empty() || id.empty()) return SpanRowError::kMissingId;
  if (trace.size() > 255 || id.size() > 255 || parent.size() > 255 || service.size() > 255)
    return SpanRowError::kFieldTooLong;
  if (!is_valid_utf8(trace) || !is_valid_utf8(id) || !is_valid_utf8(parent) ||
      !is_valid_utf8(service) || !is_valid_utf8(op))
    return SpanRowError::kBadEncoding;
  int64_t start = 0, end = 0;
  if (!parse_i64(f[start_], &start)) return SpanRowError::kBadTime;
  int64_t smul = start_mul_;
  if (smul == 0) {  // by magnitude: epoch seconds .. nanoseconds
    int64_t a = start < 0 ? -start : start;
    smul = a >= 100000000000000000 ? 1
           : a >= 100000000000000  ? 1000
           : a >= 100000000000     ? 1000000
                                   : 1000000000;
  }
  if (start > INT64_MAX / smul || start < 0) return SpanRowError::kBadTime;
  start *= smul;
  if (end_ >= 0) {
    if (!parse_i64(f[end_], &end) || end < 0 || end > INT64_MAX / smul)
      return SpanRowError::kBadTime;
    end *= smul;
  } else {
    int64_t d = 0;
    if (!parse_i64(f[duration_], &d) || d < 0 || d > (INT64_MAX - start) / dur_mul_)
      return SpanRowError::kBadTime;
    end = start + d * dur_mul_;
  }
  row->trace_id = trace;
  row->span_id = id;
  std::string_view pl = trim(parent);
  if (pl == "root" || pl == "null" || pl == "None" || pl == "-" || all_zero(pl)) pl = {};
  row->parent_id = pl;
  row->service = service;
  row->name = op.substr(0, 200);
  row->kind = kind_ >= 0 ? parse_span_kind(f[kind_]) : SpanKind::kUnspecified;
  row->start_ns = start;
  row->end_ns = end;
  return SpanRowError::kNone;
}

SpanRowError SpanTableReader::parse(const std::vector<std::string_view>& f, Span* s) const {
  SpanTableRow row;
  SpanRowError err = parse(f, &row);
  if (err != SpanRowError::kNone) return err;
  s->trace_id.assign(row.trace_id);
  s->span_id.assign(row.span_id);
  s->parent_id.assign(row.parent_id);
  s->parent_trace_id.clear();
  s->service.assign(row.service);
  s->name.assign(row.name);
  s->kind = row.kind;
  s->start_ns = row.start_ns;
  s->end_ns = row.end_ns;
  s->resolved = false;
  s->resolve();
  return SpanRowError::kNone;
}

}  // namespace tracelm
