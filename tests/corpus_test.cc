#include <gtest/gtest.h>

#include "corpus/corpus.h"
#include "corpus/graph_source.h"
#include "io/byte_source.h"
#include "io/csv.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "stats/stats.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::TempDir;
using testing::write_file;

CallGraph sample() {
  CallGraph g;
  g.service = "S_1";
  g.trace_id = "T_\"quoted\"\n";
  g.edges = {Edge{*RpcId::parse("0"), "USER", "MS_1", CallType::kHttp, 0, 10},
             Edge{*RpcId::parse("0.1"), "MS_1", "MS_2", CallType::kRpc, 1, 5},
             Edge{*RpcId::parse("0.1.1"), "MS_2", "MS_3", CallType::kDb, 2, 3}};
  return g;
}

TEST(Corpus, JsonRoundTrip) {
  CallGraph g = sample();
  std::string err;
  auto back = parse_graph_json(graph_to_json(g), &err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(*back, g);
  EXPECT_NE(graph_to_json(g).find("\"num_edges\":3,\"depth\":3,\"latency\":10"), std::string::npos);
}

TEST(Corpus, BadLinesAreErrorsWithAReason) {
  std::string err;
  auto bad = [&](const std::string& line, const std::string& needle) {
    EXPECT_FALSE(parse_graph_json(line, &err)) << line;
    EXPECT_NE(err.find(needle), std::string::npos) << err;
  };
  bad("{", "not valid JSON");
  bad("[]", "expected a JSON object");
  bad("{\"edges\":[]}", "\"service\"");
  bad("{\"service\":\"S\"}", "\"edges\"");
  bad("{\"service\":\"S\",\"edges\":[{\"rpc_id\":\"0.x\",\"caller\":\"USER\",\"callee\":\"A\","
      "\"type\":\"http\",\"start\":0,\"finish\":1}]}",
      "not dot-decimal");
  bad("{\"service\":\"S\",\"edges\":[{\"rpc_id\":\"0\",\"caller\":\"USER\",\"callee\":\"A\","
      "\"type\":\"http\",\"start\":\"0\",\"finish\":1}]}",
      "\"start\" must be an integer");
  bad("{\"service\":\"S\",\"num_edges\":2,\"edges\":[{\"rpc_id\":\"0\",\"caller\":\"USER\","
      "\"callee\":\"A\",\"type\":\"http\",\"start\":0,\"finish\":1}]}",
      "disagrees");
  bad(std::string(100000, '['), "nested too deeply");
  // An unknown type is data: kept, and the validator reports it.
  auto g = parse_graph_json(
      "{\"service\":\"S\",\"edges\":[{\"rpc_id\":\"0\",\"caller\":\"USER\",\"callee\":\"A\","
      "\"type\":\"grpc\",\"start\":0,\"finish\":1}]}",
      &err);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->edges[0].type, CallType::kUnknown);
}

TEST(Corpus, FileRoundTripAndErrorsNameTheLine) {
  TempDir tmp;
  {
    CorpusWriter w(tmp.file("c.jsonl"));
    w.write(sample());
    w.write(sample());
    EXPECT_FALSE(testing::exists(tmp.file("c.jsonl")));  // only after close()
    w.close();
  }
  EXPECT_FALSE(testing::exists(tmp.file("c.jsonl.tmp")));
  auto gs = load_corpus(tmp.file("c.jsonl"));
  ASSERT_EQ(gs.size(), 2u);
  EXPECT_EQ(gs[1], sample());
  EXPECT_EQ(graph_file_format(tmp.file("c.jsonl")), GraphFileFormat::kCorpus);
  write_file(tmp.file("bad.jsonl"), graph_to_json(sample()) + "\n\n{\"service\":1}\n");
  try {
    load_corpus(tmp.file("bad.jsonl"));
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:3:"), std::string::npos) << e.what();
  }
}

TEST(GraphSource, FormatFollowsTheNameThenTheContent) {
  TempDir tmp;
  const std::string corpus = graph_to_json(sample()) + "\n";
  const std::string csv = "foo,bar\n1,2\n";
  write_file(tmp.file("a.jsonl"), csv);  // the name wins: read as a corpus (and fails as one)
  EXPECT_EQ(graph_file_format(tmp.file("a.jsonl")), GraphFileFormat::kCorpus);
  write_file(tmp.file("a.csv"), corpus);
  EXPECT_EQ(graph_file_format(tmp.file("a.csv")), GraphFileFormat::kCsv);
  write_file(tmp.file("a.tar.gz"), corpus);
  EXPECT_EQ(graph_file_format(tmp.file("a.tar.gz")), GraphFileFormat::kCsv);
  write_file(tmp.file("a.jsonl.zst"), csv);
  EXPECT_EQ(graph_file_format(tmp.file("a.jsonl.zst")), GraphFileFormat::kCorpus);
  write_file(tmp.file("noext"), "\n  " + corpus);  // no telling name: the content decides
  EXPECT_EQ(graph_file_format(tmp.file("noext")), GraphFileFormat::kCorpus);
  write_file(tmp.file("data.txt"), csv);
  EXPECT_EQ(graph_file_format(tmp.file("data.txt")), GraphFileFormat::kCsv);
  // A CSV named .jsonl is read as a corpus: the error is about JSON, on line 1.
  try {
    for_each_graph(tmp.file("a.jsonl"), CsvMode::kClean, [](CallGraph&&) {});
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:1:"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("CSV"), std::string::npos) << e.what();
  }
}

TEST(GraphSource, AnEmptyFileHasNoCallGraphs) {
  TempDir tmp;
  for (const char* name : {"empty.jsonl", "empty.csv", "empty"}) {
    write_file(tmp.file(name), "");
    try {
      for_each_graph(tmp.file(name), CsvMode::kAsIs, [](CallGraph&&) {});
      ADD_FAILURE() << name;
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()), tmp.file(name) + ": no call graphs: the file is empty");
    }
  }
  write_file(tmp.file("blank.jsonl"), "\n \n\t\n");
  EXPECT_THROW(graph_file_format(tmp.file("blank.jsonl")), InputError);
  EXPECT_THROW(graph_file_format(tmp.file("missing.jsonl")), InputError);
}

TEST(Csv, SplitsQuotedAndPlainFields) {
  std::vector<std::string_view> f;
  std::string scratch;
  ASSERT_TRUE(split_csv_line("a,,c,", f, scratch));
  EXPECT_EQ(f, (std::vector<std::string_view>{"a", "", "c", ""}));
  ASSERT_TRUE(split_csv_line("\"a,b\",\"say \"\"hi\"\"\",c", f, scratch));
  EXPECT_EQ(f, (std::vector<std::string_view>{"a,b", "say \"hi\"", "c"}));
  EXPECT_FALSE(split_csv_line("\"open,b", f, scratch));
  EXPECT_FALSE(split_csv_line("\"a\"x,b", f, scratch));
  EXPECT_FALSE(split_csv_line("a\"b,c", f, scratch));
}

TEST(LineReader, SplitsLinesAndSkipsOverlongOnesWithBoundedMemory) {
  std::string data = "one\r\ntwo\n" + std::string(5000, 'x') + "\nthree";
  auto src = memory_source("mem", data);
  LineReader r(*src, /*max_line=*/100, /*buffer=*/256);
  std::string_view line;
  bool overlong;
  ASSERT_TRUE(r.next(&line, &overlong));
  EXPECT_EQ(line, "one");
  ASSERT_TRUE(r.next(&line, &overlong));
  EXPECT_EQ(line, "two");
  ASSERT_TRUE(r.next(&line, &overlong));
  EXPECT_TRUE(overlong);
  EXPECT_EQ(line.size(), 100u);
  ASSERT_TRUE(r.next(&line, &overlong));
  EXPECT_FALSE(overlong);
  EXPECT_EQ(line, "three");
  EXPECT_EQ(r.line_no(), 4u);
  EXPECT_EQ(r.bytes(), data.size());
  EXPECT_FALSE(r.next(&line, &overlong));
}

TEST(Stats, CountsWhatTheGraphsHold) {
  CorpusStats st;
  st.add(sample());
  CallGraph g = sample();
  g.edges.pop_back();
  st.add(g);
  EXPECT_EQ(st.graphs(), 2u);
  EXPECT_EQ(st.edges(), 5u);
  EXPECT_EQ(st.depth_hist().at(3), 1u);
  EXPECT_EQ(st.depth_hist().at(2), 1u);
  EXPECT_EQ(st.fanout_hist().at(1), 3u);  // 0 has 1 child twice, 0.1 has 1 child once
  EXPECT_EQ(st.type_counts()[static_cast<int>(CallType::kHttp)], 2u);
  // Response times: http 10,10; rpc 4,4; db 1.
  EXPECT_EQ(st.rt_quantile(CallType::kRpc, 0.5), 4);
  EXPECT_EQ(st.rt_quantile(1.0), 10);
  EXPECT_EQ(st.rt_quantile(0.0), 1);
  auto j = st.to_json();
  EXPECT_EQ(j["top_calls"][0]["count"], 2);
}

}  // namespace
}  // namespace tracelm
