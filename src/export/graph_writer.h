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
// file behind. "-" writes to stdout (format by name only).
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
  // Epoch milliseconds of each trace's start; default 0 for alibaba-csv and
  // kDefaultBaseEpochMs (export/otlp.h) for OTLP and Jaeger.
  std::optional<int64_t> base_ms;
};

class GraphWriter {
 public:
  GraphWriter(const std::string& path, GraphFormat format, GraphWriterOptions opt = {});
  // Format by the path's extension.
  explicit GraphWriter(const std::string& path, GraphWriterOptions opt = {});
  ~GraphWriter();
  void write(const CallGraph& g);
  void close();
  uint64_t count() const { return n_; }
  GraphFormat format() const { return format_; }

 private:
  struct Encoders;
  void flush_if_large();
  AtomicFile file_;
  GraphFormat format_;
  int64_t base_ms_;
  std::unique_ptr<Encoders> enc_;
  std::string buf_;
  uint64_t n_ = 0;
};

// Writes all graphs to `path` (format by extension); returns how many.
uint64_t write_graphs(const std::string& path, const std::vector<CallGraph>& graphs);

}  // namespace tracelm
