// One writer for every command that writes call graphs (export, generate,
// baseline generate, demo): the format comes from a name or from the output
// path's extension, the same way everywhere, and graphs stream to the file
// (bounded memory), which appears atomically on close().
//
//   extension       name         format
//   .jsonl          jsonl        the corpus format (docs/corpus-format.md)
//   .csv            alibaba-csv  Alibaba v2022 CallGraph rows (export/alibaba_csv.h)
//   .otlp.json      otlp         one OTLP/JSON ExportTraceServiceRequest (export/otlp.h)
//   .otlp.jsonl     otlp-jsonl   one request per graph per line
//   .jaeger.json    jaeger       Jaeger UI JSON (export/jaeger.h)
//
// Contract: format_for_path() throws std::invalid_argument naming the path
// and the extensions it knows; a writer destroyed before close() leaves no
// file behind. "-" writes to stdout (format by name only). The trace formats
// (OTLP, Jaeger) refuse graphs that are not valid (core/validate.h; a span
// would end before it starts): write() returns false and counts them. Their
// span layout and timing: export/trace_layout.h, docs/export.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/call_graph.h"
#include "io/atomic_file.h"

namespace tracelm {

enum class GraphFormat { kCorpusJsonl, kAlibabaCsv, kOtlp, kOtlpJsonl, kJaeger };

GraphFormat format_for_path(std::string_view path);
GraphFormat format_for_name(std::string_view name);  // the names of the table above
std::string_view format_name(GraphFormat f);

struct GraphWriterOptions {
  // alibaba-csv: epoch milliseconds of each trace's start (default 0).
  // OTLP, Jaeger: the start of the first trace that has no start time of its
  // own (default kDefaultBaseEpochMs, export/trace_layout.h); such traces
  // follow at `rate` per second. A graph with start_unix_ns keeps its start.
  std::optional<int64_t> base_ms;
  double rate = 10;
};

class GraphWriter {
 public:
  GraphWriter(const std::string& path, GraphFormat format, GraphWriterOptions opt = {});
  // Format by the path's extension.
  explicit GraphWriter(const std::string& path, GraphWriterOptions opt = {});
  ~GraphWriter();
  bool write(const CallGraph& g);  // false: refused (counted)
  void close();
  uint64_t count() const { return n_; }
  uint64_t refused() const { return refused_; }
  GraphFormat format() const { return format_; }

 private:
  struct Encoders;
  void flush_if_large();
  AtomicFile file_;
  GraphFormat format_;
  int64_t base_ms_;
  std::unique_ptr<Encoders> enc_;
  std::string buf_;
  uint64_t n_ = 0, refused_ = 0;
};

// Writes all graphs to `path` (format by extension); returns how many.
uint64_t write_graphs(const std::string& path, const std::vector<CallGraph>& graphs);

// `tracelm export`: every graph of `input` (a corpus, or a CallGraph CSV
// cleaned first: corpus/graph_source.h) to `output` in `format`.
struct ExportCounts {
  uint64_t written = 0, refused = 0;
};
ExportCounts export_corpus(const std::string& input, const std::string& output, GraphFormat format,
                           const GraphWriterOptions& opt);

}  // namespace tracelm
