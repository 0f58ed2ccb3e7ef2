// TraceSpill: groups raw rows by trace id with bounded memory.
//
// Rows of one trace are spread over a file and across files. TraceSpill keeps
// rows as compact binary records (the needed fields) in memory. While all of
// them fit in the memory budget they form one group in input order. Beyond
// it, every row is routed to one of N partitions by a hash of its trace id;
// partitions stay in memory while the rows held (plus the write buffers of
// the partitions on disk) fit in the budget, and the largest partition in
// memory is moved to a temporary file, and keeps its later rows there,
// whenever they would not. Afterwards partitions are visited one at a time.
//
// Contract:
//  - add() and add_encoded() copy the row; the caller's data may die after
//    they return. encode() makes a record on any thread (no shared state)
//    that add_encoded() adds later: the same as add() of that row.
//  - for_each_partition() visits every partition once, in partition order,
//    with its rows grouped by trace: traces in order of their first row, rows
//    of a trace in input order. All rows of a trace are in one partition.
//    When the rows fit in the budget, all rows form a single partition. The
//    groups and their order do not depend on which partitions went to disk.
//  - Memory: rows held plus write buffers stay under the budget (records are
//    counted by their bytes; a chunk may be partly empty), plus the
//    partition being visited.
//  - Temporary files live in a private directory under `tmp_dir` and are
//    removed as they are consumed and by the destructor. Not thread-safe,
//    except encode() and load() of distinct partitions.
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

  // The largest record encode() writes (fields longer than 255 bytes are cut
  // by the callers' checks, not here).
  static constexpr size_t kMaxRecord = 43 + 5 * 255;
  // Writes the record of `row` (sequence number 0) to out[0, kMaxRecord);
  // returns its length. Fields must be at most 255 bytes each.
  static size_t encode(const RawRow& row, RowReject status, char* out);

  void add(uint64_t seq, const RawRow& row, RowReject status);
  // Adds a record made by encode(), with sequence number `seq`.
  void add_encoded(uint64_t seq, const char* rec);
  bool spilled() const { return spilled_bytes_ > 0; }
  bool partitioned() const { return partitioned_; }
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
    std::vector<std::string> data_;  // the records (chunks, or the file read back)
    std::vector<const char*> recs_;  // records, grouped by trace
    std::vector<uint32_t> begin_;    // trace t = recs_[begin_[t], begin_[t+1])
  };
  void for_each_partition(const std::function<void(const Partition&)>& fn);

  // The same partitions for visiting on several threads: after the last
  // add, finish() once; then load(p) for each p < num_partitions(), once
  // each, on any threads at once (distinct p), gives what
  // for_each_partition() would visit p-th.
  void finish();
  size_t num_partitions() const { return partitioned_ ? parts_.size() : 1; }
  Partition load(size_t p);

 private:
  // Records in chunks that are never reallocated (a record never straddles
  // two chunks).
  struct Chunks {
    std::vector<std::string> chunks;
    uint64_t bytes = 0;
    void append(const char* rec, size_t len, std::vector<std::string>& spare);
    void release(std::vector<std::string>& spare);  // empties; keeps chunks for reuse
  };
  struct Part {
    Chunks mem;            // while in memory
    FILE* file = nullptr;  // once on disk: earlier rows there, later ones in `buf`
    std::string buf;
  };
  void partition_all();
  void route(const char* rec, size_t len);
  bool move_largest_to_disk();  // false when no partition in memory holds rows
  void write(size_t p, const char* data, size_t len);  // through the write buffer
  void flush(size_t p);
  void write_file(size_t p, const char* data, size_t len);
  std::string partition_path(size_t p) const;
  Options opt_;
  std::string dir_;  // created on the first partition moved to disk
  Chunks whole_;     // all rows, while they fit in the budget
  std::vector<Part> parts_;
  std::vector<std::string> spare_;  // empty chunks for reuse
  bool partitioned_ = false;
  size_t part_buffer_ = 0;  // write buffer of a partition on disk
  uint64_t held_ = 0;       // bytes of records in memory plus write buffers
  uint64_t spilled_bytes_ = 0, rows_ = 0;
};

uint64_t fnv1a64(std::string_view s);

}  // namespace tracelm
