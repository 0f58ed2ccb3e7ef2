// TraceSpill (src/ingest/trace_spill.h): the groups and their order do not
// depend on how much of the rows went to disk; load() on several threads
// gives what for_each_partition() visits. And ordered_parallel
// (src/util/ordered_parallel.h), which the span importer builds graphs with.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ingest/trace_spill.h"
#include "test_util.h"
#include "util/ordered_parallel.h"

namespace tracelm {
namespace {

using testing::TempDir;

// Every partition visited, as "p:trace:seq,seq,...|..." lines.
std::vector<std::string> visit(TraceSpill& spill) {
  std::vector<std::string> out;
  size_t p = 0;
  spill.for_each_partition([&](const TraceSpill::Partition& part) {
    std::vector<SpillRow> rows;
    for (size_t t = 0; t < part.num_traces(); ++t) {
      part.rows(t, rows);
      std::string s = std::to_string(p) + ":" + std::string(rows[0].traceid) + ":";
      for (const SpillRow& r : rows) s += std::to_string(r.seq) + std::string(r.dm) + ",";
      out.push_back(s);
    }
    ++p;
  });
  return out;
}

// 20000 rows of 2000 traces, interleaved; one in 50 a rejected marker.
void fill(TraceSpill& spill) {
  std::string dm;
  for (uint64_t i = 0; i < 20000; ++i) {
    std::string trace = "trace-" + std::to_string(i * 7919 % 2000);
    dm = "callee-" + std::to_string(i % 13) + std::string(i % 5 * 10, 'x');
    RawRow r;
    r.traceid = trace;
    r.service = "svc";
    r.rpc_id = "0.1";
    r.um = "up";
    r.dm = dm;
    r.timestamp_ms = static_cast<int64_t>(i);
    spill.add(i, r, i % 50 == 0 ? RowReject::kMalformed : RowReject::kNone);
  }
}

TEST(TraceSpill, PartitionsGiveTheSameGroupsWhetherInMemoryOrOnDisk) {
  TempDir tmp;
  {
    // About 2 MB of records: one group under a 4 MiB budget; partitioned,
    // partly on disk, under 1 MiB; all on disk under 16 KiB.
    TraceSpill whole({tmp.path(), 16, size_t{4} << 20}),
        part_mem({tmp.path(), 16, size_t{1} << 20}), part_disk({tmp.path(), 16, 16 << 10});
    fill(whole);
    fill(part_mem);
    fill(part_disk);
    EXPECT_FALSE(whole.partitioned());
    EXPECT_EQ(whole.spilled_bytes(), 0u);
    EXPECT_TRUE(part_mem.partitioned());
    EXPECT_TRUE(part_disk.partitioned());
    EXPECT_GT(part_mem.spilled_bytes(), 0u);
    EXPECT_GT(part_disk.spilled_bytes(), part_mem.spilled_bytes());
    std::vector<std::string> a = visit(whole), b = visit(part_mem), c = visit(part_disk);
    EXPECT_EQ(b, c);  // the same partitions, traces and rows, in the same order
    ASSERT_EQ(a.size(), 2000u);
    ASSERT_EQ(b.size(), 2000u);
    // One group: traces in order of their first row, rows in input order.
    EXPECT_EQ(a[0].substr(0, 10), "0:trace-0:");
    EXPECT_EQ(a[1].substr(0, 13), "0:trace-1919:");
  }
  // Spill files are removed.
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + tmp.path() + "')\"").c_str()), 0);
}

TEST(TraceSpill, LoadingOnThreadsGivesWhatVisitingGives) {
  TempDir tmp;
  TraceSpill a({tmp.path(), 16, 64 << 10}), b({tmp.path(), 16, 64 << 10});
  fill(a);
  fill(b);
  std::vector<std::string> seen = visit(a);
  b.finish();
  ASSERT_EQ(b.num_partitions(), 16u);
  std::vector<std::vector<std::string>> loaded(b.num_partitions());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t p; (p = next++) < b.num_partitions();) {
      TraceSpill::Partition part = b.load(p);
      std::vector<SpillRow> rows;
      for (size_t t = 0; t < part.num_traces(); ++t) {
        part.rows(t, rows);
        std::string s = std::to_string(p) + ":" + std::string(rows[0].traceid) + ":";
        for (const SpillRow& r : rows) s += std::to_string(r.seq) + std::string(r.dm) + ",";
        loaded[p].push_back(s);
      }
    }
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  std::vector<std::string> all;
  for (auto& v : loaded) all.insert(all.end(), v.begin(), v.end());
  EXPECT_EQ(all, seen);
}

TEST(OrderedParallel, ConsumesInOrderWithBoundedLookahead) {
  for (size_t threads : {1, 2, 3}) {
    std::vector<size_t> consumed;
    std::atomic<size_t> produced{0};
    size_t max_ahead = 0;
    ordered_parallel<std::string>(
        100, threads, 4,
        [&](size_t i) {
          ++produced;
          return std::to_string(i * i);
        },
        [&](size_t i, std::string&& s) {
          EXPECT_EQ(s, std::to_string(i * i));
          max_ahead = std::max(max_ahead, produced.load() - i);
          consumed.push_back(i);
        });
    ASSERT_EQ(consumed.size(), 100u);
    for (size_t i = 0; i < 100; ++i) EXPECT_EQ(consumed[i], i);
    EXPECT_LE(max_ahead, 5u) << threads;  // the item consumed and 4 ahead
  }
}

TEST(OrderedParallel, AnExceptionStopsTheWorkersAndIsRethrown) {
  for (size_t threads : {1, 2}) {
    size_t consumed = 0;
    EXPECT_THROW(ordered_parallel<int>(
                     1000, threads, 4,
                     [&](size_t i) {
                       if (i == 10) throw std::runtime_error("bad item");
                       return static_cast<int>(i);
                     },
                     [&](size_t, int&&) { ++consumed; }),
                 std::runtime_error);
    EXPECT_LE(consumed, 10u);
    EXPECT_THROW(ordered_parallel<int>(
                     1000, threads, 4, [&](size_t i) { return static_cast<int>(i); },
                     [&](size_t i, int&&) {
                       if (i == 3) throw std::runtime_error("bad consumer");
                     }),
                 std::runtime_error);
  }
}

}  // namespace
}  // namespace tracelm
