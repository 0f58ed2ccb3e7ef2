// Reading spans from the files tracing systems write: OTLP/JSON, Jaeger JSON,
// Zipkin v2 JSON and span tables (CSV). Formats are told apart by content.
//
// Contract:
//  - detect_span_format() looks at the first bytes of a (decompressed)
//    stream: '{'/'[' JSON is OTLP (resourceSpans), Jaeger (data / traceID +
//    spans) or Zipkin (an array of objects with traceId); a CSV header with a
//    trace id, a span id and a parent id column is a span table; an Alibaba
//    CallGraph header (rpc_id/rpcid, um, dm) is kAlibabaCsv.
//  - read_json_spans() reads one JSON stream: a single document (at most
//    max_document bytes; larger is an InputError, not an allocation), or one
//    document per line (OTLP collector file exporter; each line at most
//    max_document, streamed). Every span becomes a Span (resolved) handed to
//    on_span. A span missing its ids or times is counted in bad_spans by
//    reason and, when its trace id is known, handed to on_bad_span so that
//    its trace is rejected. A document that is not valid JSON, is nested
//    deeper than 64 levels or is none of the formats throws InputError with
//    FILE:LINE:COLUMN, the formats tried and what was found; a bad line of a
//    JSON Lines file is counted (bad_lines) and skipped.
//  - SpanTableReader maps a CSV header to span fields by name (built-in names
//    or a --columns spec), then parses rows; it never throws on a row: a bad
//    row is a reason code.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/spans/span.h"
#include "io/byte_source.h"

namespace tracelm {

// kOtherJson: JSON whose head names no span format (read_json_spans decides,
// and says what it found).
enum class SpanFormat : uint8_t {
  kUnknown = 0,
  kOtlpJson,
  kJaegerJson,
  kZipkinJson,
  kOtherJson,
  kSpanTable,
  kAlibabaCsv
};
std::string_view span_format_name(SpanFormat f);  // "otlp-json", "jaeger-json", ...

// `head`: the first bytes of a stream (a few KiB are enough).
SpanFormat detect_span_format(std::string_view head);

struct JsonReadStats {
  uint64_t documents = 0, bad_lines = 0;
  std::map<std::string, uint64_t> bad_spans;  // reason -> count
  std::string first_bad_line;                 // "file:line:col: message" of the first bad line
};

struct SpanSink {
  std::function<void(Span&&)> on_span;
  std::function<void(std::string_view trace_id, std::string_view reason)> on_bad_span;
};

void read_json_spans(ByteSource& src, size_t max_document, const SpanSink& sink,
                     JsonReadStats* stats);

// Column mapping of a span table. Each field holds a header name ("" =
// absent). Start and end times: integer epoch values whose unit is
// `start_unit` ("ns", "us", "ms", "s"; "auto" = by magnitude); a duration
// column (unit `duration_unit`) stands in for a missing end.
struct SpanColumns {
  std::string trace, span, parent, service, pod, operation, kind, start, end, duration;
  std::string start_unit = "auto", duration_unit = "us";
  // Parses "trace=TraceID,span=SpanID,...,duration_unit=us" over `base`, or a
  // preset name ("nezha": the TrainTicket / Online Boutique layout). Throws
  // std::invalid_argument naming the bad key.
  static SpanColumns parse(std::string_view spec, SpanColumns base);
  static SpanColumns parse(std::string_view spec);
  static SpanColumns preset(std::string_view name);  // throws on an unknown name
};

enum class SpanRowError : uint8_t {
  kNone = 0,
  kMalformed,     // bad quoting or a wrong field count
  kMissingId,     // empty trace or span id
  kFieldTooLong,  // an id, service or pod longer than 255 bytes
  kBadEncoding,   // not UTF-8
  kBadTime,       // a start/end/duration that is not an integer
  kCount
};
std::string_view span_row_error_code(SpanRowError e);

// A span-table row as parsed: the Span fields a table has (parent_id ""
// for a root; name at most 200 bytes), as views.
struct SpanTableRow {
  std::string_view trace_id, span_id, parent_id, service, name;
  SpanKind kind = SpanKind::kUnspecified;
  int64_t start_ns = 0, end_ns = 0;
};

class SpanTableReader {
 public:
  // Maps the header; throws std::invalid_argument with the missing columns,
  // the names tried and the header found.
  SpanTableReader(const std::vector<std::string_view>& header, const SpanColumns& cols);
  // Parses one row into `out` (views into `fields`/`scratch` are copied), resolved.
  SpanRowError parse(const std::vector<std::string_view>& fields, Span* out) const;
  // The same without copying: views into `fields` (and what they view).
  SpanRowError parse(const std::vector<std::string_view>& fields, SpanTableRow* out) const;
  size_t num_columns() const { return num_columns_; }
  // The trace id of a row ("" when the row has too few fields).
  std::string_view trace_of(const std::vector<std::string_view>& fields) const {
    return static_cast<size_t>(trace_) < fields.size() ? fields[trace_] : std::string_view();
  }
  bool derives_service_from_pod() const { return service_ < 0 && pod_ >= 0; }

 private:
  int trace_ = -1, span_ = -1, parent_ = -1, service_ = -1, pod_ = -1, op_ = -1, kind_ = -1;
  int start_ = -1, end_ = -1, duration_ = -1;
  int64_t start_mul_ = 0, dur_mul_ = 1000;  // to ns; start_mul_ 0 = by magnitude
  size_t num_columns_ = 0;
};

// Span kind from text: "server", "SPAN_KIND_SERVER", "2" (OTLP enum), ...
SpanKind parse_span_kind(std::string_view s);

}  // namespace tracelm
