#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "export/alibaba_csv.h"
#include "ingest/ingest.h"
#include "io/input_error.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::TempDir;
using testing::write_file;

const char* kTrain = "data/alibaba-v2022/callgraphs-train.csv";
const char* kRaw = "data/alibaba-v2022/raw-rows-sample.csv";

struct Result {
  IngestStats stats;
  std::vector<CallGraph> graphs;
  std::vector<std::string> rejected_traces;
};

Result run(const std::vector<std::string>& inputs, IngestOptions opt = {}) {
  Result r;
  IngestCallbacks cb;
  cb.on_graph = [&](CallGraph&& g) { r.graphs.push_back(std::move(g)); };
  cb.on_rejected_trace = [&](const BuiltTrace& t) {
    r.rejected_traces.push_back(std::string(graph_reject_code(t.reject)));
  };
  r.stats = ingest(inputs, opt, cb);
  return r;
}

uint64_t row_drops(const IngestStats& s, RowReject r) {
  return s.rows_rejected[static_cast<int>(r)];
}
uint64_t graph_drops(const IngestStats& s, GraphReject r) {
  return s.graphs_rejected[static_cast<int>(r)];
}

// Graph contents (trace ids left out), sorted: among exact duplicates, which
// trace id survives depends on the visiting order, the content does not.
std::vector<std::string> contents(const std::vector<CallGraph>& v) {
  std::vector<std::string> out;
  for (CallGraph g : v) {
    g.trace_id.clear();
    out.push_back(graph_to_json(g));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(IngestReal, TrainingCallGraphsGiveExactly1014ValidGraphs) {
  REQUIRE_SHARED(kTrain);
  Result r = run({testing::shared_path(kTrain)});
  EXPECT_EQ(r.stats.rows_read, 4456u);
  EXPECT_EQ(r.stats.traces, 1014u);
  EXPECT_EQ(r.stats.graphs_kept, 1014u);
  EXPECT_EQ(r.stats.edges_kept, 4456u);
  EXPECT_EQ(r.stats.rows_rejected_total(), 0u);
  EXPECT_EQ(r.stats.graphs_rejected_total(), 0u);
  ASSERT_EQ(r.graphs.size(), 1014u);
  size_t warnings = 0;
  for (const CallGraph& g : r.graphs) {
    auto vs = validate(g);
    EXPECT_TRUE(is_valid(vs)) << g.trace_id;
    warnings += !vs.empty();
    EXPECT_EQ(g.edges.front().id.str(), "0");
  }
  // Clock skew at the root: 7 graphs (0.7%) have a child starting 1-2 ms
  // before the root; kept by default, as the paper's data did.
  EXPECT_EQ(warnings, 7u);
  EXPECT_EQ(r.stats.kept_start_before_parent, 7u);
  // Graph order = order of each trace's first row in the file.
  EXPECT_EQ(r.graphs.front().trace_id, "T_41165958308");
}

TEST(IngestReal, StrictDropsTheClockSkewGraphs) {
  REQUIRE_SHARED(kTrain);
  IngestOptions opt;
  opt.build.strict = true;
  Result r = run({testing::shared_path(kTrain)}, opt);
  EXPECT_EQ(r.stats.graphs_kept, 1007u);
  EXPECT_EQ(graph_drops(r.stats, GraphReject::kStartBeforeParent), 7u);
}

// Expected counts come from an independent implementation of the rules:
// tests/tools/reference_preprocess.py.
TEST(IngestReal, RawRowsSampleKeepsTheRuleDefinedGraphsAndCountsEveryRejection) {
  REQUIRE_SHARED(kRaw);
  Result r = run({testing::shared_path(kRaw)});
  const IngestStats& s = r.stats;
  EXPECT_EQ(s.rows_read, 1000u);
  EXPECT_EQ(row_drops(s, RowReject::kBadType), 6u);
  EXPECT_EQ(row_drops(s, RowReject::kMissingCaller), 186u);
  EXPECT_EQ(row_drops(s, RowReject::kMissingCallee), 54u);
  EXPECT_EQ(s.rows_duplicate_rpc_id, 81u);
  EXPECT_EQ(s.rows_rejected_total(), 6u + 186 + 54 + 81);
  EXPECT_EQ(s.traces, 196u);
  EXPECT_EQ(graph_drops(s, GraphReject::kNoUsableRows), 55u);
  EXPECT_EQ(graph_drops(s, GraphReject::kMissingRoot), 48u);
  EXPECT_EQ(graph_drops(s, GraphReject::kParentMissing), 28u);
  EXPECT_EQ(graph_drops(s, GraphReject::kCallerMismatch), 8u);
  EXPECT_EQ(graph_drops(s, GraphReject::kFinishAfterParent), 15u);
  EXPECT_EQ(graph_drops(s, GraphReject::kDuplicate), 3u);
  EXPECT_EQ(s.graphs_kept, 39u);
  EXPECT_EQ(s.edges_kept, 141u);
  // Every trace is accounted for, kept or dropped with a reason.
  EXPECT_EQ(s.graphs_kept + s.graphs_rejected_total(), s.traces);
  EXPECT_EQ(r.rejected_traces.size(), s.graphs_rejected_total());
  for (const CallGraph& g : r.graphs) EXPECT_TRUE(is_valid(validate(g))) << g.trace_id;
}

TEST(IngestReal, SpillingToDiskGivesTheSameGraphs) {
  REQUIRE_SHARED(kTrain);
  IngestOptions small;
  small.memory_budget = 16 << 10;  // forces many spills
  small.partitions = 7;
  TempDir tmp;
  small.tmp_dir = tmp.path();
  Result a = run({testing::shared_path(kTrain), testing::shared_path(kRaw)});
  Result b = run({testing::shared_path(kTrain), testing::shared_path(kRaw)}, small);
  EXPECT_GT(b.stats.spilled_bytes, 0u);
  EXPECT_EQ(a.stats.graphs_kept, b.stats.graphs_kept);
  EXPECT_EQ(a.stats.graphs_rejected, b.stats.graphs_rejected);
  EXPECT_EQ(a.stats.rows_rejected, b.stats.rows_rejected);
  EXPECT_EQ(contents(a.graphs), contents(b.graphs));
  // Spill files are removed.
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + tmp.path() + "')\"").c_str()), 0);
}

TEST(IngestReal, ExportThenIngestGivesBackTheSameGraphs) {
  REQUIRE_SHARED(kTrain);
  Result a = run({testing::shared_path(kTrain)});
  std::string csv = std::string(kAlibabaCsvHeader) + "\n";
  uint64_t i = 0;
  for (const CallGraph& g : a.graphs) append_alibaba_rows(g, i++, 1000000, csv);
  TempDir tmp;
  write_file(tmp.file("export.csv"), csv);
  Result b = run({tmp.file("export.csv")});
  ASSERT_EQ(a.graphs.size(), b.graphs.size());
  EXPECT_EQ(a.graphs, b.graphs);  // same order, trace ids, services, edges
}

TEST(IngestReal, CompressedAndArchivedInputsMatchPlainCsv) {
  REQUIRE_SHARED(kTrain);
  TempDir tmp;
  std::string src = testing::shared_path(kTrain);
  ASSERT_EQ(std::system(("mkdir -p " + tmp.file("CallGraph") + " && cp '" + src + "' " +
                         tmp.file("CallGraph/CallGraph_0.csv") + " && echo junk > " +
                         tmp.file("CallGraph/README.txt") + " && cd " + tmp.path() +
                         " && tar czf cg.tar.gz CallGraph && gzip -k CallGraph/CallGraph_0.csv")
                            .c_str()),
            0);
  Result plain = run({src});
  Result gz = run({tmp.file("CallGraph/CallGraph_0.csv.gz")});
  Result tgz = run({tmp.file("cg.tar.gz")});
  EXPECT_EQ(plain.graphs, gz.graphs);
  EXPECT_EQ(plain.graphs, tgz.graphs);
  EXPECT_EQ(tgz.stats.skipped_members, 1u);  // README.txt is not a .csv member
  // Globs: the same file twice by pattern -> every graph is a duplicate.
  auto paths = expand_inputs({tmp.path() + "/CallGraph/CallGraph_0.csv*"});
  EXPECT_EQ(paths.size(), 2u);
  Result both = run(paths);
  EXPECT_EQ(both.stats.graphs_kept, 1014u);
  EXPECT_EQ(graph_drops(both.stats, GraphReject::kDuplicate), 0u);  // same trace ids merge
  EXPECT_EQ(both.stats.rows_duplicate_rpc_id, 4456u);
}

TEST(Ingest, MapsColumnsByHeaderAndReadsV2021) {
  TempDir tmp;
  // v2022 columns in another order, quoted fields, CRLF line endings.
  write_file(tmp.file("a.csv"),
             "rt,dm,um,rpctype,rpc_id,service,traceid,timestamp\r\n"
             "5.0,MS_1,USER,http,0,S_1,T_1,100\r\n"
             "\"2.0\",MS_2,MS_1,rpc,0.1,S_1,T_1,101\r\n");
  Result a = run({tmp.file("a.csv")});
  ASSERT_EQ(a.graphs.size(), 1u);
  EXPECT_EQ(a.graphs[0].service, "S_1");
  EXPECT_EQ(a.graphs[0].edges[1].start_ms, 1);
  EXPECT_EQ(a.graphs[0].edges[1].finish_ms, 3);
  // v2021 MS_CallGraph: leading index column, rpcid, 64-hex names, (?)
  // markers, negative rt (callee side), uppercase types; no service column.
  std::string h1(64, 'a'), h2(64, 'b'), h3(64, 'c');
  write_file(tmp.file("v2021.csv"),
             ",traceid,timestamp,rpcid,um,rpctype,dm,interface,rt\n"
             "0,t1,1000,0,USER,http," +
                 h1 +
                 ",i,12\n"
                 "1,t1,1002,0.1," +
                 h1 + ",rpc," + h2 +
                 ",i,-7\n"
                 "2,t1,1002,0.1," +
                 h1 + ",rpc," + h2 +
                 ",i,7\n"
                 "3,t1,1003,0.1.1," +
                 h2 + ",DB," + h3 +
                 ",i,1\n"
                 "4,t1,1003,0.1.2,(?),MC," +
                 h3 + ",i,1\n");
  Result b = run({tmp.file("v2021.csv")});
  ASSERT_EQ(b.graphs.size(), 1u);
  const CallGraph& g = b.graphs[0];
  EXPECT_EQ(g.service, h1);  // no service column: the entry microservice
  ASSERT_EQ(g.edges.size(), 3u);
  EXPECT_EQ(g.edges[1].finish_ms - g.edges[1].start_ms, 7);  // |rt|
  EXPECT_EQ(g.edges[2].type, CallType::kDb);
  EXPECT_EQ(b.stats.rows_duplicate_rpc_id, 1u);
  EXPECT_EQ(row_drops(b.stats, RowReject::kMissingCaller), 1u);
}

TEST(Ingest, BadRowsAreCountedByReason) {
  TempDir tmp;
  std::string big(1 << 20, 'x');  // a 1 MB field
  write_file(tmp.file("bad.csv"),
             "timestamp,traceid,service,rpc_id,um,rpctype,dm,rt\n"
             "1,T_1,S_1,0,USER,http,MS_1,abc\n"  // non-numeric rt
             "1,T_1,S_1,0,USER,http,MS_1,\n"     // missing rt
             "x,T_1,S_1,0,USER,http,MS_1,1\n"    // bad timestamp
             "1,T_1,S_1,0.a,USER,http,MS_1,1\n"  // bad rpc id
             "1,T_1,S_1,0,USER,http\n"           // too few fields
             "1,T_1,S_1,0,USER,\"http,MS_1,1\n"  // unterminated quote
             "1,T_1,S_1,0,USER,http," +
                 big +
                 ",1\n"                              // overlong line
                 "1,,S_1,0,USER,http,MS_1,1\n"       // missing trace id
                 "1,T_2,S_2,0,USER,http,MS_9,1\n");  // fine
  Result r = run({tmp.file("bad.csv")});
  const IngestStats& s = r.stats;
  EXPECT_EQ(s.rows_read, 9u);
  EXPECT_EQ(row_drops(s, RowReject::kBadRt), 1u);
  EXPECT_EQ(row_drops(s, RowReject::kMissingRt), 1u);
  EXPECT_EQ(row_drops(s, RowReject::kBadTimestamp), 1u);
  EXPECT_EQ(row_drops(s, RowReject::kBadRpcId), 1u);
  EXPECT_EQ(row_drops(s, RowReject::kMalformed), 2u);
  EXPECT_EQ(row_drops(s, RowReject::kLineTooLong), 1u);
  EXPECT_EQ(row_drops(s, RowReject::kMissingTraceId), 1u);
  EXPECT_EQ(s.traces, 2u);  // T_1 has only rejected rows
  EXPECT_EQ(graph_drops(s, GraphReject::kNoUsableRows), 1u);
  EXPECT_EQ(s.graphs_kept, 1u);
}

// Found by fuzz_csv: a non-UTF-8 name made a corpus line its reader rejects.
TEST(Ingest, NonUtf8NamesAreRejectedRows) {
  TempDir tmp;
  write_file(tmp.file("u.csv"),
             "timestamp,traceid,service,rpc_id,um,rpctype,dm,rt\n"
             "1,T_1,S_1,0,USER,http,MS_\xff,10\n"
             "1,T_2,S_2,0,USER,http,MS_\xc3\xa9,10\n");  // é is fine
  Result r = run({tmp.file("u.csv")});
  EXPECT_EQ(row_drops(r.stats, RowReject::kBadEncoding), 1u);
  ASSERT_EQ(r.graphs.size(), 1u);
  std::string err;
  EXPECT_TRUE(parse_graph_json(graph_to_json(r.graphs[0]), &err)) << err;
  EXPECT_TRUE(is_valid_utf8("MS_\xe2\x82\xac"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
}

// Found by fuzz_csv: time arithmetic overflowed on extreme timestamps.
TEST(Ingest, ExtremeTimestampsAreRejectedNotOverflowed) {
  TempDir tmp;
  write_file(tmp.file("t.csv"),
             "timestamp,traceid,service,rpc_id,um,rpctype,dm,rt\n"
             "0,T_1,S_1,0,USER,http,MS_1,10\n"
             "9223372036854775000,T_1,S_1,0.1,MS_1,rpc,MS_2,1000000\n"
             "-9000000000000000000,T_1,S_1,0.2,MS_1,rpc,MS_2,1\n");
  Result r = run({tmp.file("t.csv")});
  EXPECT_EQ(row_drops(r.stats, RowReject::kBadTimestamp), 2u);
  EXPECT_EQ(r.stats.graphs_kept, 1u);
  std::string err;
  EXPECT_FALSE(parse_graph_json(
      "{\"service\":\"S\",\"edges\":[{\"rpc_id\":\"0\",\"caller\":\"USER\",\"callee\":\"A\","
      "\"type\":\"http\",\"start\":-9223372036854775807,\"finish\":9223372036854775807}]}",
      &err));
  EXPECT_NE(err.find("out of range"), std::string::npos) << err;
}

void expect_input_error(const std::string& path, const std::string& needle) {
  try {
    run({path});
    ADD_FAILURE() << "no error for " << path;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Ingest, BadFilesGiveClearErrors) {
  TempDir tmp;
  expect_input_error(tmp.file("missing.csv"), "cannot open");
  write_file(tmp.file("empty.csv"), "");
  expect_input_error(tmp.file("empty.csv"), "empty input");
  write_file(tmp.file("cols.csv"), "a,b,c\n1,2,3\n");
  expect_input_error(tmp.file("cols.csv"),
                     "missing: timestamp, traceid, rpc_id, um, rpctype, dm, rt");
  std::string garbage;
  for (int i = 0; i < 100000; ++i) garbage.push_back(static_cast<char>((i * 7919) % 251));
  write_file(tmp.file("garbage.bin"), garbage);
  expect_input_error(tmp.file("garbage.bin"), ":1:");
  // Truncated gzip.
  write_file(tmp.file("t.csv"), synthetic_raw_csv({}));
  ASSERT_EQ(
      std::system(
          ("cd " + tmp.path() + " && gzip -k t.csv && head -c 3000 t.csv.gz > cut.csv.gz").c_str()),
      0);
  expect_input_error(tmp.file("cut.csv.gz"), "truncated");
  EXPECT_THROW(expand_inputs({tmp.path() + "/nothing-*.csv"}), InputError);
}

TEST(Ingest, SyntheticSampleIsMessyButCleansUp) {
  TempDir tmp;
  write_file(tmp.file("s.csv"), synthetic_raw_csv({}));
  Result r = run({tmp.file("s.csv")});
  EXPECT_GT(r.stats.graphs_kept, 100u);
  EXPECT_GT(r.stats.rows_duplicate_rpc_id, 0u);
  EXPECT_GT(row_drops(r.stats, RowReject::kMissingCaller), 0u);
  EXPECT_GT(graph_drops(r.stats, GraphReject::kMissingRoot), 0u);
  for (const CallGraph& g : r.graphs) EXPECT_TRUE(validate(g).empty()) << g.trace_id;
  EXPECT_EQ(synthetic_raw_csv({}), synthetic_raw_csv({}));  // deterministic
}

TEST(Ingest, ValidationSplitIsDeterministicByTraceId) {
  int val = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string id = "T_" + std::to_string(1000000 + i);
    bool v = is_validation(id, 0.1);
    EXPECT_EQ(v, is_validation(id, 0.1));
    val += v;
  }
  EXPECT_NEAR(val / 20000.0, 0.1, 0.01);
  EXPECT_FALSE(is_validation("T_1", 0.0));
  EXPECT_TRUE(is_validation("T_1", 1.0));
}

}  // namespace
}  // namespace tracelm
