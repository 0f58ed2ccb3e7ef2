// End-to-end checks of the tracelm program, as a user runs it.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "corpus/corpus.h"
#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "stats/trained_stats.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::run_tracelm;
using testing::TempDir;

TEST(Cli, IngestValidateStatsExportOnRealData) {
  REQUIRE_SHARED("data/alibaba-v2022/callgraphs-train.csv");
  TempDir tmp;
  std::string in = testing::shared_path("data/alibaba-v2022/callgraphs-train.csv");
  auto r = run_tracelm("ingest '" + in + "' -o " + tmp.file("c.jsonl") +
                       " --val-fraction 0.1 --json -q");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["graphs_kept"], 1014);
  EXPECT_EQ(j["edges_kept"], 4456);
  size_t train = load_corpus(tmp.file("c.jsonl")).size();
  size_t val = load_corpus(tmp.file("c.val.jsonl")).size();
  EXPECT_EQ(train + val, 1014u);
  EXPECT_NEAR(val / 1014.0, 0.1, 0.03);

  r = run_tracelm("validate " + tmp.file("c.jsonl"));
  EXPECT_EQ(r.status, 0) << r.out;
  r = run_tracelm("validate --strict --json " + in);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["invalid"], 7);

  r = run_tracelm("stats --json " + in);
  ASSERT_EQ(r.status, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["graphs"], 1014);
  EXPECT_EQ(j["edges"], 4456);
  EXPECT_EQ(j["types"]["mc"], 1972);
  // A model's stats.json, as `train` writes it, for the corpus.
  r = run_tracelm("stats " + tmp.file("c.jsonl") + " --trained-stats " + tmp.file("ts.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  TrainedStats ts = TrainedStats::load(tmp.file("ts.json"));
  EXPECT_FALSE(ts.priors.subtree_max.empty());
  EXPECT_EQ(ts.priors.subtree_max,
            TrainedStats::of(load_corpus(tmp.file("c.jsonl"))).priors.subtree_max);

  r = run_tracelm("export " + tmp.file("c.jsonl") + " --format alibaba-csv -o " +
                  tmp.file("out.csv"));
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_tracelm("ingest " + tmp.file("out.csv") + " -o " + tmp.file("again.jsonl") + " -q");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(load_corpus(tmp.file("again.jsonl")), load_corpus(tmp.file("c.jsonl")));
}

TEST(Cli, RejectsFileListsEveryRejection) {
  REQUIRE_SHARED("data/alibaba-v2022/raw-rows-sample.csv");
  TempDir tmp;
  auto r = run_tracelm("ingest " + testing::shared_path("data/alibaba-v2022/raw-rows-sample.csv") +
                       " -o " + tmp.file("c.jsonl") + " --rejects " + tmp.file("rej.jsonl") +
                       " --json -q");
  ASSERT_EQ(r.status, 0) << r.out;
  auto stats = nlohmann::json::parse(r.out);
  size_t rows = 0, traces = 0;
  std::istringstream in(testing::read_file(tmp.file("rej.jsonl")));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "row") {
      ++rows;
      EXPECT_GT(j["line"].get<int>(), 1);
    } else {
      ++traces;
      EXPECT_FALSE(j["reason"].get<std::string>().empty());
    }
  }
  EXPECT_EQ(rows, 6u + 186 + 54);  // row rejections (duplicate rpc ids are counted, not listed)
  EXPECT_EQ(traces, 196u - stats["graphs_kept"].get<size_t>());
}

TEST(Cli, BadInputGivesAClearErrorAndStatus2) {
  TempDir tmp;
  auto r = run_tracelm("ingest " + tmp.file("nope.csv") + " -o " + tmp.file("c.jsonl"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("nope.csv: cannot open"), std::string::npos) << r.out;
  testing::write_file(tmp.file("x.csv"), "foo,bar\n1,2\n");
  r = run_tracelm("ingest " + tmp.file("x.csv") + " -o " + tmp.file("c.jsonl"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("x.csv:1: expected a CallGraph header"), std::string::npos) << r.out;
  EXPECT_FALSE(testing::exists(tmp.file("c.jsonl")));  // nothing half-written
}

TEST(Cli, EvaluateOnAnEmptyFileSaysItHasNoCallGraphs) {
  TempDir tmp;
  CorpusWriter w(tmp.file("real.jsonl"));
  CallGraph g;
  g.service = "S_1";
  g.edges = {Edge{*RpcId::parse("0"), "USER", "MS_1", CallType::kHttp, 0, 10}};
  w.write(g);
  w.close();
  testing::write_file(tmp.file("free.jsonl"), "");  // e.g. a generation run that wrote nothing
  auto r = run_tracelm("evaluate --real " + tmp.file("real.jsonl") +
                       " --synthetic free=" + tmp.file("free.jsonl"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find(tmp.file("free.jsonl") + ": no call graphs: the file is empty"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("CSV"), std::string::npos) << r.out;
}

TEST(Cli, DemoRunsOnTheBuiltInSyntheticSample) {
  TempDir tmp;
  auto r = run_tracelm("demo --synthetic --train-minutes 0 --out " + tmp.file("demo"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("SYNTHETIC"), std::string::npos);
  auto train = load_corpus(tmp.file("demo/corpus.jsonl"));
  EXPECT_GT(train.size(), 100u);
  EXPECT_NE(r.out.find("[7/7]"), std::string::npos);
  EXPECT_NE(r.out.find("popular calls KL"), std::string::npos) << r.out;  // the summary table
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

TEST(Cli, EncodeWritesEachFormatAndItDecodes) {
  TempDir tmp;
  auto r = run_tracelm("demo --synthetic --train-minutes 0 --out " + tmp.file("d"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string corpus = tmp.file("d/corpus.jsonl");
  size_t graphs = load_corpus(corpus).size();
  for (const char* f : {"tabular", "recursive", "instruction"}) {
    std::string out = tmp.file(std::string(f) + ".txt");
    r = run_tracelm("encode " + corpus + " --format " + f +
                    " --instruction-fraction 1 --seed 3 -o " + out);
    ASSERT_EQ(r.status, 0) << r.out;
    std::string text = testing::read_file(out);
    EXPECT_FALSE(text.empty());
    // Same seed, same bytes.
    r = run_tracelm("encode " + corpus + " --format " + f +
                    " --instruction-fraction 1 --seed 3 -o " + out + ".2");
    EXPECT_EQ(testing::read_file(out + ".2"), text);
  }
  std::string rec = testing::read_file(tmp.file("recursive.txt"));
  EXPECT_EQ(std::count(rec.begin(), rec.end(), '['),
            static_cast<long>(graphs));  // one [GENERATE GRAPH] each
  // Decoding each format's text gives back the corpus graphs (service and
  // calls), whatever order, shuffles and dropped attributes the seed chose.
  auto key = [](CallGraph g) {
    g.trace_id.clear();
    g.canonicalize();
    return graph_to_json(g);
  };
  std::vector<std::string> want;
  for (const CallGraph& g : load_corpus(corpus)) want.push_back(key(g));
  std::sort(want.begin(), want.end());
  for (const char* f : {"tabular", "recursive"}) {
    std::string text = testing::read_file(tmp.file(std::string(f) + ".txt"));
    std::vector<std::string> got;
    for (std::string_view block : split_blocks(text)) {
      CallGraph g;
      ParseError err;
      bool ok;
      if (std::string(f) == "tabular") {
        TabularGraph t;
        ok = decode_tabular(block, &t, &err);
        g = std::move(t.graph);
      } else {
        ok = decode_recursive(block, &g, &err);
      }
      ASSERT_TRUE(ok) << f << ": " << err.what << "\n" << block.substr(0, 300);
      got.push_back(key(std::move(g)));
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << f;
  }
  // Every instruction sample parses (question, answer, scratchpad).
  std::string ins = testing::read_file(tmp.file("instruction.txt"));
  size_t samples = 0;
  for (std::string_view rest = ins; !rest.empty();) {
    ParsedInstruction p;
    ParseError err;
    size_t used = 0;
    ASSERT_TRUE(parse_instruction(rest, &p, &err, &used)) << err.what;
    ASSERT_GT(used, 0u);
    rest.remove_prefix(used);
    while (!rest.empty() && rest.front() == '\n') rest.remove_prefix(1);
    ++samples;
  }
  EXPECT_GE(samples, graphs);
  r = run_tracelm("encode " + corpus + " --format instruction --jsonl -o " + tmp.file("i.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::istringstream in(testing::read_file(tmp.file("i.jsonl")));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["prompt"].get<std::string>() + j["completion"].get<std::string>(),
              j["text"].get<std::string>());
  }
}

}  // namespace
}  // namespace tracelm
