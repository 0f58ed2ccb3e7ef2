// Span-table parsing on a second thread (SpanIngestOptions::parse_threads)
// gives exactly the corpus, the statistics and the rejected rows of parsing
// on one thread: on the shipped TrainTicket sample (many batches) and on the
// fixture with bad rows. Once the rows exceed the memory budget, how many of
// the partitions go to disk does not change the corpus either.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ingest/spans/span_ingest.h"
#include "test_util.h"

namespace tracelm {
namespace {

struct IngestRun {
  std::vector<CallGraph> graphs;
  std::vector<std::string> rejected;  // "file:line reason raw"
  std::string stats;
};

IngestRun ingest_with(const std::vector<std::string>& files, size_t threads,
                      size_t memory_budget = size_t{256} << 20, uint64_t* spilled = nullptr) {
  SpanIngestOptions opt;
  opt.parse_threads = threads;
  opt.memory_budget = memory_budget;
  IngestRun r;
  SpanIngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) { r.graphs.push_back(std::move(g)); };
  cb.on_rejected_row = [&](const std::string& f, uint64_t line, std::string_view why,
                           std::string_view raw) {
    r.rejected.push_back(f + ":" + std::to_string(line) + " " + std::string(why) + " " +
                         std::string(raw));
  };
  SpanIngestStats st = ingest_spans(files, opt, cb);
  if (spilled) *spilled = st.spilled_bytes;
  st.seconds = st.read_seconds = st.spilled_bytes = 0;
  r.stats = st.to_json();
  return r;
}

TEST(SpanParallel, TwoThreadsGiveTheSameCorpus) {
  std::string dir = std::string(TRACELM_SOURCE_DIR);
  std::vector<std::string> files = {
      dir + "/data/trainticket-sample/trainticket-2023-01-29-normal.spans.csv.gz",
      dir + "/tests/data/spans/table.csv"};
  IngestRun one = ingest_with(files, 1), two = ingest_with(files, 2), three = ingest_with(files, 3);
  ASSERT_GT(one.graphs.size(), 1000u);
  EXPECT_EQ(one.stats, two.stats);
  EXPECT_EQ(one.rejected, two.rejected);
  EXPECT_FALSE(one.rejected.empty());  // the fixture's bad rows
  ASSERT_EQ(one.graphs.size(), two.graphs.size());
  for (size_t i = 0; i < one.graphs.size(); ++i) ASSERT_EQ(one.graphs[i], two.graphs[i]) << i;
  EXPECT_EQ(one.stats, three.stats);
  EXPECT_EQ(one.rejected, three.rejected);
  EXPECT_TRUE(one.graphs == three.graphs);
}

TEST(SpanParallel, PartitionsInMemoryOrOnDiskGiveTheSameCorpus) {
  std::string dir = std::string(TRACELM_SOURCE_DIR);
  std::vector<std::string> files = {
      dir + "/data/trainticket-sample/trainticket-2023-01-29-normal.spans.csv.gz",
      dir + "/tests/data/spans/table.csv"};
  // The sample's records are about 19 MB: one group under 256 MiB; under
  // 8 MiB partitioned, some partitions on disk; under 64 KiB all on disk.
  uint64_t spilled_whole = 0, spilled_some = 0, spilled_all = 0;
  IngestRun whole = ingest_with(files, 2, size_t{256} << 20, &spilled_whole);
  IngestRun some = ingest_with(files, 2, size_t{8} << 20, &spilled_some);
  IngestRun all = ingest_with(files, 2, 64 << 10, &spilled_all);
  EXPECT_EQ(spilled_whole, 0u);
  EXPECT_GT(spilled_some, 0u);
  EXPECT_GT(spilled_all, spilled_some);
  EXPECT_EQ(some.stats, all.stats);
  EXPECT_EQ(some.rejected, all.rejected);
  ASSERT_EQ(some.graphs.size(), all.graphs.size());
  for (size_t i = 0; i < some.graphs.size(); ++i) ASSERT_EQ(some.graphs[i], all.graphs[i]) << i;
  // One group hands the same graphs on in another order (first-span order).
  EXPECT_EQ(whole.stats, some.stats);
  auto sorted = [](std::vector<CallGraph> v) {
    std::sort(v.begin(), v.end(),
              [](const CallGraph& a, const CallGraph& b) { return a.trace_id < b.trace_id; });
    return v;
  };
  EXPECT_TRUE(sorted(whole.graphs) == sorted(some.graphs));
}

}  // namespace
}  // namespace tracelm
