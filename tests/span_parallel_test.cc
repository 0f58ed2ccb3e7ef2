// Span-table parsing on a second thread (SpanIngestOptions::parse_threads)
// gives exactly the corpus, the statistics and the rejected rows of parsing
// on one thread: on the shipped TrainTicket sample (many batches) and on the
// fixture with bad rows.
#include <gtest/gtest.h>

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

IngestRun ingest_with(const std::vector<std::string>& files, size_t threads) {
  SpanIngestOptions opt;
  opt.parse_threads = threads;
  IngestRun r;
  SpanIngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) { r.graphs.push_back(std::move(g)); };
  cb.on_rejected_row = [&](const std::string& f, uint64_t line, std::string_view why,
                           std::string_view raw) {
    r.rejected.push_back(f + ":" + std::to_string(line) + " " + std::string(why) + " " +
                         std::string(raw));
  };
  SpanIngestStats st = ingest_spans(files, opt, cb);
  st.seconds = st.read_seconds = 0;
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

}  // namespace
}  // namespace tracelm
