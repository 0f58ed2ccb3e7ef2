// TraceSpill: groups raw rows by trace id with bounded memory.
//
// Rows of one trace are spread over a file and across files. TraceSpill keeps
// rows (a compact binary record of the needed fields) in one in-memory buffer
// in input order. When that buffer would exceed the memory budget, every row
// is routed instead to one of N partitions by a hash of its trace id, through
// small per-partition buffers appended to one temporary file per partition.
// Afterwards partitions are visited one at a time, so memory is bounded by
// the budget (or N small buffers) plus the largest partition.
//
// Contract:
//  - add() copies the row; the caller's views may die after it returns.
//  - for_each_partition() visits every partition once, in partition order,
//    with its rows grouped by trace: traces in order of their first row, rows
//    of a trace in input order. All rows of a trace are in one partition.
//    When nothing was spilled, all rows form a single partition.
//  - Temporary files live in a private directory under `tmp_dir` and are
//    removed as they are consumed and by the destructor. Not thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/alibaba_schema.h"

namespace tracelm {

// A row as stored: `status` != kNone marks a rejected row kept only so that
// its trace is accounted for (its other fields are empty).
struct SpillRow {
  uint64_t seq = 0;  // global input order
  int64_t timestamp_ms = 0, rt_ms = 0;
  CallType type = CallType::kHttp;
  RowReject status = RowReject::kNone;
  std::string_view traceid, service, rpc_id, um, dm;
};

class TraceSpill {
 public:
  struct Options {
    std::string tmp_dir;                       // default: $TMPDIR or /tmp
    size_t partitions = 256;                   // used once the budget is exceeded
    size_t memory_budget = size_t{256} << 20;  // bytes of rows held in memory
  };
  explicit TraceSpill(Options opt);
  ~TraceSpill();
  TraceSpill(const TraceSpill&) = delete;
  TraceSpill& operator=(const TraceSpill&) = delete;

  void add(uint64_t seq, const RawRow& row, RowReject status);
  // Reserves memory for about `bytes` of input (capped by the budget).
  void reserve_for_input(uint64_t bytes);
  bool spilled() const { return spilled_; }
  uint64_t spilled_bytes() const { return spilled_bytes_; }
  uint64_t stored_rows() const { return rows_; }

  // The rows of one partition grouped by trace (8 bytes per row, 4 per trace).
  class Partition {
   public:
    size_t num_traces() const { return begin_.empty() ? 0 : begin_.size() - 1; }
    // Decodes trace t's rows (input order) into out; views valid during the visit.
    void rows(size_t t, std::vector<SpillRow>& out) const;
    // Hints the CPU to fetch trace t's records (visiting is memory-bound).
    void prefetch(size_t t) const;

   private:
    friend class TraceSpill;
    std::vector<const char*> recs_;  // records, grouped by trace
    std::vector<uint32_t> begin_;    // trace t = recs_[begin_[t], begin_[t+1])
  };
  void for_each_partition(const std::function<void(const Partition&)>& fn);

 private:
  void spill_memory();
  void append(size_t p, const char* rec, size_t len);
  void flush(size_t p);
  std::string partition_path(size_t p) const;
  Options opt_;
  std::string dir_;                // created on first spill
  std::string mem_;                // all rows, before spilling
  std::vector<std::string> bufs_;  // per partition, after spilling
  std::vector<FILE*> files_;
  size_t part_buffer_ = 0;
  bool spilled_ = false;
  uint64_t spilled_bytes_ = 0, rows_ = 0;
};

uint64_t fnv1a64(std::string_view s);

}  // namespace tracelm
