// Span ingestion: span files of any supported format (span_readers.h) to
// call graphs (span_graph.h), streaming, with bounded memory, every rejected
// span and trace counted by reason (docs/span-import.md).
//
// Contract:
//  - ingest_spans() reads every input (files; plain, gzip, bzip2, xz, zstd,
//    tar members), detects each stream's format by content, groups spans by
//    trace id through TraceSpill (memory: the budget plus the partitions
//    being built, one per graph-building thread; a JSON document is
//    additionally held whole, at most max_document bytes), builds one graph
//    per trace (on all cores) and hands each kept graph to on_graph, on the
//    calling thread, in a deterministic order (partition by partition,
//    traces in order of their first span; which partitions went to disk
//    does not change it).
//  - Labels (when windows are given): every graph gets the label of its start
//    time's window (LabelIndex), else `unlabelled`; with keep_labels set, the
//    others are counted in dropped_by_label and not handed on.
//  - Errors: an unreadable file, corrupt compression, a stream of no known
//    span format (with the formats tried and what was found), an unmappable
//    span-table header, a JSON document over max_document or not valid JSON
//    throw InputError naming FILE[:LINE[:COLUMN]]. Bad rows and spans are
//    counted, never thrown.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ingest/spans/labels.h"
#include "ingest/spans/span_graph.h"
#include "ingest/spans/span_readers.h"

namespace tracelm {

struct SpanIngestOptions {
  SpanGraphOptions graph;
  SpanColumns columns;                       // span tables (names tried when empty)
  size_t max_document = size_t{256} << 20;   // bytes of one JSON document
  std::string tmp_dir;                       // spill directory parent
  size_t memory_budget = size_t{256} << 20;  // bytes of span records held in memory
  size_t partitions = 256;
  size_t max_line = 64 << 10;  // span-table lines
  bool progress = false;
  // Threads reading span tables: 1 = rows read and parsed on the calling
  // thread; N > 1 = while the calling thread spills batch k, N - 1 other
  // threads parse batch k+1 (the calling thread helps once done) and one
  // more reads batch k+2 (2: both cores busy). The result is the same for
  // any value.
  size_t parse_threads = 2;
  std::vector<LabelWindow> labels;
  std::string unlabelled = "normal";
  std::vector<std::string> keep_labels;  // empty = keep all
};

inline constexpr int kNumSpanRowErrors = static_cast<int>(SpanRowError::kCount);

struct SpanIngestStats {
  uint64_t files = 0, streams = 0, bytes = 0;
  std::map<std::string, uint64_t> streams_by_format;
  uint64_t documents = 0, bad_json_lines = 0;
  std::string first_bad_json_line;
  uint64_t spans_read = 0;                                  // spans handed to grouping
  std::array<uint64_t, kNumSpanRowErrors> rows_rejected{};  // span-table rows
  std::map<std::string, uint64_t> bad_spans;                // JSON spans by reason
  uint64_t traces = 0;
  std::array<uint64_t, kNumSpanRejects> traces_rejected{};
  uint64_t graphs_kept = 0, calls = 0, zero_ms_calls = 0;
  uint64_t collapsed_spans = 0, duplicate_spans = 0, type_fallbacks = 0, peer_fallbacks = 0,
           clamped_calls = 0;
  std::map<std::string, uint64_t> graphs_by_label;
  uint64_t dropped_by_label = 0;
  uint64_t spilled_bytes = 0;
  double seconds = 0, read_seconds = 0;

  uint64_t traces_rejected_total() const;
  std::string to_text() const;
  std::string to_json() const;
};

struct SpanIngestCallbacks {
  std::function<void(CallGraph&&)> on_graph;                // required
  std::function<void(const SpanGraph&)> on_rejected_trace;  // optional
  // A span-table row dropped: file, line, reason, raw text.
  std::function<void(const std::string&, uint64_t, std::string_view, std::string_view)>
      on_rejected_row;
};

SpanIngestStats ingest_spans(const std::vector<std::string>& inputs, const SpanIngestOptions& opt,
                             const SpanIngestCallbacks& cb);

// The format of the first stream of a file (kUnknown for an empty file).
SpanFormat sniff_file_format(const std::string& path);

}  // namespace tracelm
