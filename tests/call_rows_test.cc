// Calls as rows (src/eval/call_rows.h): the calls CSV, and the metrics of a
// calls-only set, which must equal the graph metrics they share a definition
// with.
#include <gtest/gtest.h>

#include "eval/call_rows.h"
#include "io/input_error.h"
#include "report/summary_table.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::TempDir;

Edge edge(const char* id, const char* caller, const char* callee, CallType t, int64_t s,
          int64_t f) {
  return {*RpcId::parse(id), caller, callee, t, s, f};
}

std::vector<CallGraph> some_graphs(int n, int variant) {
  std::vector<CallGraph> out;
  for (int i = 0; i < n; ++i) {
    CallGraph g;
    g.service = "S";
    const char* b = i % 3 == variant ? "B" : "C";
    g.edges = {edge("0", "USER", "A", CallType::kHttp, 0, 100 + i),
               edge("0.1", "A", b, CallType::kRpc, 1, 10 + i % 7),
               edge("0.2", "A", "D", i % 2 ? CallType::kMc : CallType::kDb, 20, 21 + variant)};
    if (i % 4 == variant) g.edges.push_back(edge("0.1.1", b, "E", CallType::kRpc, 2, 5));
    g.canonicalize();
    out.push_back(g);
  }
  return out;
}

TEST(CallRows, RowsOfAGraph) {
  CallGraph g = some_graphs(1, 0)[0];
  std::vector<CallRow> r = call_rows(g);
  ASSERT_EQ(r.size(), g.edges.size());
  EXPECT_EQ(r[1].caller, "A");
  EXPECT_EQ(r[1].callee, "B");
  EXPECT_EQ(r[1].type, CallType::kRpc);
  EXPECT_EQ(r[1].depth, 2);
  EXPECT_EQ(r[1].start_ms, 1);
  EXPECT_EQ(r[1].response_ms, 9);
  EXPECT_EQ(r[0].depth, 1);
}

TEST(CallRows, CsvRoundTripAndErrorsNameTheLine) {
  TempDir d;
  std::vector<CallRow> rows = {{"USER", "A", CallType::kHttp, 1, 0, 12},
                               {"A", "B,quoted\"name", CallType::kMq, 3, 7, 0}};
  write_calls_csv(d.file("c.csv"), rows);
  EXPECT_EQ(read_calls_csv(d.file("c.csv")), rows);

  auto error_of = [&](const std::string& text) {
    testing::write_file(d.file("bad.csv"), text);
    try {
      read_calls_csv(d.file("bad.csv"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string h = std::string(kCallsCsvHeader) + "\n";
  EXPECT_NE(error_of("a,b\n").find("bad.csv:1: expected the header"), std::string::npos);
  EXPECT_NE(error_of(h + "A,B,rpc,1,0\n").find("bad.csv:2: expected 6 fields"), std::string::npos);
  EXPECT_NE(error_of(h + "A,B,rpc,1,0,1\nA,B,foo,1,0,1\n").find("bad.csv:3: type"),
            std::string::npos);
  EXPECT_NE(error_of(h + "A,B,rpc,x,0,1\n").find("bad.csv:2: depth: expected an integer"),
            std::string::npos);
  EXPECT_NE(error_of(h + "A,B,rpc,0,0,1\n").find("depth: expected 1..1000"), std::string::npos);
  EXPECT_NE(error_of(h + "A,B,rpc,1,0,-4\n").find("response_ms: expected >= 0"), std::string::npos);
  EXPECT_NE(error_of("").find("empty file"), std::string::npos);
}

// The calls-only report computes popular calls, heavy hitters and the
// response-time EMD exactly as RealismReport::compute() does on the graphs
// the calls come from.
TEST(CallRows, CallsReportEqualsTheGraphMetricsOnTheSameCalls) {
  GraphSetProfile real;
  for (const CallGraph& g : some_graphs(40, 0)) real.add(g);
  std::vector<CallGraph> syn = some_graphs(25, 1);
  std::vector<CallRow> rows;
  for (const CallGraph& g : syn)
    for (CallRow& r : call_rows(g)) rows.push_back(r);
  RealismOptions opt;
  opt.heavy_hitter_ks = {1, 2, 3};
  RealismReport graphs = RealismReport::compute("g", real, syn, nullptr, opt);
  ASSERT_EQ(graphs.evaluated, syn.size());  // all valid: the same calls on both sides
  RealismReport calls = calls_report("c", real, rows, opt);
  EXPECT_TRUE(calls.calls_only);
  ASSERT_TRUE(calls.popular.defined);
  EXPECT_GT(graphs.popular.kl, 0.0);
  EXPECT_DOUBLE_EQ(calls.popular.kl, graphs.popular.kl);
  EXPECT_EQ(calls.popular.synthetic_counts, graphs.popular.synthetic_counts);
  ASSERT_EQ(calls.heavy_hitters.size(), graphs.heavy_hitters.size());
  for (size_t i = 0; i < calls.heavy_hitters.size(); ++i)
    EXPECT_DOUBLE_EQ(calls.heavy_hitters[i].accuracy, graphs.heavy_hitters[i].accuracy);
  ASSERT_TRUE(calls.find_emd("response_time")->defined);
  EXPECT_DOUBLE_EQ(calls.find_emd("response_time")->normalized,
                   graphs.find_emd("response_time")->normalized);
  EXPECT_FALSE(calls.find_emd("in_degree")->defined);
  EXPECT_FALSE(calls.find_emd("fanout")->defined);
  EXPECT_TRUE(calls.to_json().value("calls_only", false));

  // The summary table: the calls' own rows have numbers; graph rows are n/a, with a note.
  SummaryTable t = summary_table({graphs, calls}, StructureSummary::of(real));
  auto cell = [&](const std::string& prefix, size_t col) {
    for (const SummaryRow& r : t.rows)
      if (r.label.rfind(prefix, 0) == 0) return r.cells.at(col);
    return std::string("missing");
  };
  EXPECT_EQ(cell("popular calls KL", 2), cell("popular calls KL", 1));
  EXPECT_EQ(cell("heavy hitters K=1", 2), cell("heavy hitters K=1", 1));
  EXPECT_EQ(cell("EMD/mean response_time", 2), cell("EMD/mean response_time", 1));
  EXPECT_EQ(cell("graphs", 2), "n/a");
  EXPECT_EQ(cell("valid (no error)", 2), "n/a");
  EXPECT_EQ(cell("EMD/mean in_degree", 2), "n/a");
  EXPECT_EQ(cell("mean fan-out", 2), "n/a");
  EXPECT_NE(cell("mean fan-out", 1), "n/a");
  std::string text = summary_text(t);
  EXPECT_NE(text.find("c: calls, not graphs (" + std::to_string(rows.size()) + " calls)"),
            std::string::npos);
}

}  // namespace
}  // namespace tracelm
