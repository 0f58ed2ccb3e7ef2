// TraceSpill: groups raw rows by trace id with bounded memory.
//
// Rows of one trace are spread over a file and across files. TraceSpill
// routes each row to one of N partitions by a hash of its trace id; rows are
// buffered in memory and, when the buffers exceed the memory budget, appended
// to one temporary file per partition. Afterwards partitions are visited one
// at a time, so memory is bounded by the budget plus the largest partition.
//
// Contract:
//  - add() copies the row; the caller's views may die after it returns.
//  - for_each_partition() visits every partition once, in partition order;
//    all rows of a trace are in the same partition. When nothing was spilled,
//    all rows form a single visit (one partition), keeping input order.
//  - Temporary files live in a private directory under `tmp_dir` and are
//    removed by the destructor. Not thread-safe.
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
    std::string tmp_dir;                  // default: $TMPDIR or /tmp
    size_t partitions = 256;              // used once the budget is exceeded
    size_t memory_budget = size_t{256} << 20;  // bytes of buffered rows
  };
  explicit TraceSpill(Options opt);
  ~TraceSpill();
  TraceSpill(const TraceSpill&) = delete;
  TraceSpill& operator=(const TraceSpill&) = delete;

  void add(uint64_t seq, const RawRow& row, RowReject status);
  bool spilled() const { return spilled_; }
  uint64_t spilled_bytes() const { return spilled_bytes_; }
  uint64_t stored_rows() const { return rows_; }

  // fn(rows) per partition; rows are in input order within the partition and
  // their views are valid during the call only.
  void for_each_partition(const std::function<void(std::vector<SpillRow>& rows)>& fn);

 private:
  void flush_all();
  std::string partition_path(size_t p) const;
  Options opt_;
  std::string dir_;  // created on first spill
  std::vector<std::string> buffers_;
  std::vector<FILE*> files_;
  size_t buffered_ = 0;
  bool spilled_ = false;
  uint64_t spilled_bytes_ = 0, rows_ = 0;
};

uint64_t fnv1a64(std::string_view s);

}  // namespace tracelm
