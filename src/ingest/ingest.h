// Ingestion: Alibaba CallGraph CSV files (plain, compressed, tar archives)
// to clean call graphs (docs/preprocessing.md), streaming with bounded memory.
//
// Contract:
//  - ingest() reads every input (paths; globs are expanded by expand_inputs),
//    applies the preprocessing rules, and hands each kept graph to
//    on_graph, in a deterministic order: input order of each trace's first
//    row when the rows fit in the memory budget; otherwise partition by
//    partition (each in first-row order).
//  - Nothing is lost silently: every rejected row and trace is counted by
//    reason in IngestStats and, when the callbacks are set, reported.
//  - Malformed files (unreadable, no header, corrupt compression) throw
//    InputError naming the file and line. Malformed rows are counted.
//  - Memory: O(memory_budget + largest partition + the de-duplication set).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/call_graph.h"
#include "ingest/alibaba_schema.h"
#include "ingest/graph_builder.h"

namespace tracelm {

struct IngestOptions {
  BuildOptions build;
  std::string tmp_dir;                       // spill directory parent ("" = $TMPDIR or /tmp)
  size_t memory_budget = size_t{256} << 20;  // bytes of rows held before spilling
  size_t partitions = 256;
  size_t max_line = 64 << 10;  // longer lines are rejected as line_too_long
  bool progress = false;       // progress lines on stderr
  size_t threads = 0;          // graph-building threads (0 = hardware threads)
};

struct IngestStats {
  uint64_t files = 0, streams = 0, skipped_members = 0;
  uint64_t bytes = 0;  // uncompressed bytes read
  uint64_t rows_read = 0;
  std::array<uint64_t, kNumRowRejects> rows_rejected{};
  uint64_t rows_duplicate_rpc_id = 0;  // rule 2: a second row for one rpc id
  uint64_t traces = 0;
  std::array<uint64_t, kNumGraphRejects> graphs_rejected{};
  uint64_t graphs_kept = 0, edges_kept = 0;
  uint64_t kept_start_before_parent = 0;  // kept graphs with the clock-skew violation
  uint64_t spilled_bytes = 0;
  double seconds = 0;       // total
  double read_seconds = 0;  // phase 1: reading, parsing, partitioning rows

  uint64_t rows_rejected_total() const;
  uint64_t graphs_rejected_total() const;
  std::string to_text() const;  // human-readable report, one count per line
  std::string to_json() const;  // the same counts as a JSON object
};

struct RejectedRow {
  std::string file;
  uint64_t line;
  RowReject reason;
  std::string_view text;  // the raw line (truncated for overlong lines)
};

struct IngestCallbacks {
  std::function<void(CallGraph&&)> on_graph;                 // required
  std::function<void(const BuiltTrace&)> on_rejected_trace;  // optional
  std::function<void(const RejectedRow&)> on_rejected_row;   // optional
};

IngestStats ingest(const std::vector<std::string>& inputs, const IngestOptions& opt,
                   const IngestCallbacks& cb);

// Bytes of the input files (for progress; a file that cannot be stat'ed counts 0).
uint64_t total_size(const std::vector<std::string>& inputs);

// Expands shell-style globs ("data/CallGraph_*.tar.gz"); a pattern matching
// nothing, or a missing plain path, throws InputError.
std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns);

// Deterministic train/validation split by trace id: true for about `fraction`
// of trace ids, the same ones in every run.
bool is_validation(std::string_view trace_id, double fraction);

}  // namespace tracelm
