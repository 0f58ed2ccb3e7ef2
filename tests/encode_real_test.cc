// The text encodings on the real TrainTicket sample shipped in data/ (the
// demo's default corpus): every graph comes back from its recursive
// text (the source trace's id, start time and label are not part of
// the text).
#include <gtest/gtest.h>

#include "corpus/corpus.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "test_util.h"

namespace tracelm {
namespace {

TEST(EncodeReal, TrainTicketGraphsRoundTripThroughRecursiveText) {
  testing::TempDir tmp;
  auto r = testing::run_tracelm(
      std::string("ingest ") + TRACELM_SOURCE_DIR +
      "/data/trainticket-sample/trainticket-2023-01-29-normal.spans.csv.gz -o " +
      tmp.file("c.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<CallGraph> graphs = load_corpus(tmp.file("c.jsonl"));
  ASSERT_GT(graphs.size(), 1000u);
  Rng rng(1);
  size_t bad = 0;
  for (const CallGraph& g : graphs) {
    CallGraph want = g;  // the text carries the calls, not the trace's id, time or label
    want.trace_id.clear();
    want.start_unix_ns = 0;
    want.label.clear();
    want.canonicalize();
    std::string text = encode_recursive(g, {}, rng);
    CallGraph back;
    ParseError err;
    bool ok = decode_recursive(text, &back, &err);
    if (ok) {
      back.trace_id.clear();
      back.canonicalize();
    }
    if (!ok || graph_to_json(back) != graph_to_json(want)) {
      if (++bad <= 2)
        ADD_FAILURE() << (ok ? "differs" : err.what) << "\n"
                      << text.substr(0, 1500) << "\nwant\n"
                      << graph_to_json(want) << "\ngot\n"
                      << graph_to_json(back);
    }
  }
  EXPECT_EQ(bad, 0u) << "of " << graphs.size();
}

}  // namespace
}  // namespace tracelm
