// The probabilistic baseline: fitting, generation valid by construction,
// conditioning, determinism, JSON round trip, and the CLI.
#include <gtest/gtest.h>

#include <set>

#include "baseline/probabilistic.h"
#include "core/validate.h"
#include "corpus/graph_source.h"
#include "eval/provenance.h"
#include "ingest/ingest.h"
#include "io/input_error.h"
#include "test_util.h"

namespace tracelm {
namespace {

Edge edge(const char* id, const char* caller, const char* callee, CallType t, int64_t s,
          int64_t f) {
  return Edge{*RpcId::parse(id), caller, callee, t, s, f};
}

// Short and long windows with the same (type, depth) cells, so that a long
// child duration is often drawn under a short parent and must be shrunk.
std::vector<CallGraph> tiny_corpus() {
  std::vector<CallGraph> v;
  CallGraph a;
  a.service = "S_1";
  a.edges = {edge("0", "USER", "MS_1", CallType::kHttp, 0, 2),
             edge("0.1", "MS_1", "MS_2", CallType::kRpc, 0, 2)};
  v.push_back(a);
  CallGraph b;
  b.service = "S_1";
  b.edges = {edge("0", "USER", "MS_1", CallType::kHttp, 0, 100),
             edge("0.1", "MS_1", "MS_2", CallType::kRpc, 0, 60),
             edge("0.1.1", "MS_2", "MS_3", CallType::kDb, 10, 50),
             edge("0.2", "MS_1", "MS_3", CallType::kMc, 60, 100)};
  v.push_back(b);
  CallGraph c;
  c.service = "S_2";
  c.edges = {edge("0", "USER", "MS_4", CallType::kRpc, 0, 7)};
  v.push_back(c);
  return v;
}

void expect_all_strictly_valid(const std::vector<CallGraph>& gs) {
  for (const CallGraph& g : gs) {
    std::vector<Violation> vs = validate(g);
    ASSERT_TRUE(vs.empty()) << graph_to_json(g) << "\n"
                            << rule_code(vs[0].rule) << " " << vs[0].detail;
  }
}

TEST(Baseline, FitsTheCounts) {
  ProbabilisticModel m = fit_probabilistic(tiny_corpus());
  EXPECT_EQ(m.fitted_graphs(), 3u);
  EXPECT_EQ(m.max_depth(), 3);
  EXPECT_EQ(m.max_edges(), 4);
  EXPECT_EQ(m.num_services(), 2u);
  EXPECT_EQ(m.num_microservices(), 4u);
  // One layer with >= 2 calls (b's root layer): 0.1 [0,60] then 0.2 [60,100].
  EXPECT_DOUBLE_EQ(m.p_sequential(), 1.0);
  nlohmann::json j = m.to_json();
  EXPECT_EQ(j["format"], "tracelm-probabilistic");
  // Children of depth-1 http edges: 1 (graph a) and 2 (graph b).
  bool found = false;
  for (auto& e : j["children"])
    if (e["depth"] == 1 && e["type"] == "http") {
      EXPECT_EQ(e["dist"], nlohmann::json::parse("[[1,1],[2,1]]"));
      found = true;
    }
  EXPECT_TRUE(found);
}

TEST(Baseline, GeneratesValidGraphsWithinBounds) {
  ProbabilisticModel m = fit_probabilistic(tiny_corpus());
  Rng rng(7);
  std::vector<CallGraph> gs;
  std::set<std::string> services;
  for (int i = 0; i < 3000; ++i) {
    gs.push_back(m.generate_graph(rng));
    const CallGraph& g = gs.back();
    services.insert(g.service);
    EXPECT_LE(g.depth(), 3);
    EXPECT_LE(g.num_edges(), 4u);
    EXPECT_TRUE(g.trace_id.empty());
    if (g.service == "S_2") {  // S_2's only root
      EXPECT_EQ(g.edges[0].callee, "MS_4");
      EXPECT_EQ(g.edges[0].type, CallType::kRpc);
    }
  }
  expect_all_strictly_valid(gs);
  EXPECT_EQ(services, (std::set<std::string>{"S_1", "S_2"}));
}

TEST(Baseline, SeededAndDeterministic) {
  ProbabilisticModel m = fit_probabilistic(tiny_corpus());
  Rng a(42), b(42), c(43);
  std::vector<CallGraph> x, y, z;
  for (int i = 0; i < 200; ++i) {
    x.push_back(m.generate_graph(a));
    y.push_back(m.generate_graph(b));
    z.push_back(m.generate_graph(c));
  }
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(Baseline, JsonRoundTripGeneratesTheSame) {
  ProbabilisticModel m = fit_probabilistic(tiny_corpus());
  ProbabilisticModel back =
      ProbabilisticModel::from_json(nlohmann::json::parse(m.to_json().dump()));
  EXPECT_EQ(back.to_json(), m.to_json());
  Rng a(5), b(5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(m.generate_graph(a), back.generate_graph(b));
  testing::TempDir d;
  m.save(d.file("m.json"));
  EXPECT_EQ(ProbabilisticModel::load(d.file("m.json")).to_json(), m.to_json());
}

TEST(Baseline, MalformedModelIsAnError) {
  EXPECT_THROW(ProbabilisticModel::from_json(nlohmann::json::parse("{}")), std::runtime_error);
  nlohmann::json j = fit_probabilistic(tiny_corpus()).to_json();
  j["services"][0]["roots"] = nlohmann::json::parse("[[99999,1]]");  // no such microservice
  EXPECT_THROW(ProbabilisticModel::from_json(j), std::runtime_error);
  j = fit_probabilistic(tiny_corpus()).to_json();
  j["max_depth"] = "deep";
  EXPECT_THROW(ProbabilisticModel::from_json(j), std::runtime_error);
  testing::TempDir d;
  testing::write_file(d.file("x.json"), "not json");
  EXPECT_THROW(ProbabilisticModel::load(d.file("x.json")), InputError);
  // An empty model cannot generate.
  ProbabilisticModel empty = fit_probabilistic({});
  Rng rng(1);
  EXPECT_THROW(empty.generate(rng), std::logic_error);
}

TEST(Baseline, Conditioning) {
  ProbabilisticModel m = fit_probabilistic(tiny_corpus());
  Rng rng(3);
  BaselineRequest r;
  r.service = "S_1";
  r.num_edges = 4;
  r.depth = 3;
  int matched = 0;
  for (int i = 0; i < 50; ++i) {
    BaselineResult res = m.generate(rng, r);
    EXPECT_EQ(res.graph.service, "S_1");
    if (res.matched) {
      ++matched;
      EXPECT_EQ(res.graph.num_edges(), 4u);
      EXPECT_EQ(res.graph.depth(), 3);
    }
  }
  EXPECT_GT(matched, 40);
  // Impossible targets: closest kept, not matched, attempts capped.
  r.num_edges = 50;
  r.max_attempts = 100;
  BaselineResult res = m.generate(rng, r);
  EXPECT_FALSE(res.matched);
  EXPECT_EQ(res.attempts, 100);
  EXPECT_EQ(res.graph.num_edges(), 4u);
  // An unknown service keeps its id; the root comes from all services.
  BaselineRequest u;
  u.service = "S_new";
  CallGraph g = m.generate(rng, u).graph;
  EXPECT_EQ(g.service, "S_new");
  EXPECT_TRUE(validate(g).empty());
}

std::vector<CallGraph> real_training_graphs() {
  std::vector<CallGraph> train;
  for_each_graph(testing::shared_path("data/alibaba-v2022/callgraphs-train.csv"), CsvMode::kClean,
                 [&](CallGraph&& g) {
                   if (!is_validation(g.trace_id, 0.1)) train.push_back(std::move(g));
                 });
  return train;
}

TEST(Baseline, RealDataThousandsOfGraphsAllStrictlyValid) {
  REQUIRE_SHARED("data/alibaba-v2022/callgraphs-train.csv");
  std::vector<CallGraph> train = real_training_graphs();
  ASSERT_GT(train.size(), 500u);
  ProbabilisticModel m = fit_probabilistic(train);
  EXPECT_LE(m.max_depth(), 15);
  Rng rng(11);
  std::vector<CallGraph> gs;
  for (int i = 0; i < 5000; ++i) gs.push_back(m.generate_graph(rng));
  expect_all_strictly_valid(gs);
  size_t multi = 0;
  for (const CallGraph& g : gs) {
    EXPECT_LE(g.depth(), m.max_depth());
    EXPECT_LE(static_cast<int64_t>(g.num_edges()), m.max_edges());
    multi += g.num_edges() > 1;
  }
  EXPECT_GT(multi, 1000u);  // not all single calls
  // Conditioned on every training service, still valid.
  std::vector<CallGraph> cond;
  for (size_t i = 0; i < train.size(); i += 3) {
    BaselineRequest r;
    r.service = train[i].service;
    r.num_edges = static_cast<int64_t>(train[i].num_edges());
    r.depth = train[i].depth();
    r.max_attempts = 20;
    cond.push_back(m.generate(rng, r).graph);
    EXPECT_EQ(cond.back().service, train[i].service);
  }
  expect_all_strictly_valid(cond);
}

TEST(Baseline, CliFitAndGenerate) {
  testing::TempDir d;
  {
    CorpusWriter w(d.file("c.jsonl"));
    for (const CallGraph& g : tiny_corpus()) w.write(g);
    w.close();
  }
  auto r = testing::run_tracelm("baseline fit " + d.file("c.jsonl") + " -o " + d.file("p.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  r = testing::run_tracelm("baseline generate " + d.file("p.json") + " -n 300 --seed 9 -o " +
                           d.file("g.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<CallGraph> gs = load_corpus(d.file("g.jsonl"));
  EXPECT_EQ(gs.size(), 300u);
  expect_all_strictly_valid(gs);
  r = testing::run_tracelm("baseline generate " + d.file("p.json") + " -n 20 --service S_2 -o " +
                           d.file("s.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  for (const CallGraph& g : load_corpus(d.file("s.jsonl"))) EXPECT_EQ(g.service, "S_2");
  r = testing::run_tracelm("baseline generate " + d.file("p.json") + " --like " +
                           d.file("c.jsonl") + " -o " + d.file("l.jsonl"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(load_corpus(d.file("l.jsonl")).size(), 3u);
  // Each set says how it was made, and evaluate shows it.
  std::optional<SetProvenance> p = read_provenance(d.file("l.jsonl"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->protocol, "like");
  EXPECT_EQ(p->generator, "probabilistic");
  EXPECT_EQ(p->requests, 3u);
  EXPECT_EQ(read_provenance(d.file("s.jsonl"))->protocol, "fixed");
  EXPECT_EQ(read_provenance(d.file("g.jsonl"))->protocol, "open");
  EXPECT_FALSE(read_provenance(d.file("c.jsonl")));
  r = testing::run_tracelm(
      "evaluate --real " + d.file("c.jsonl") + " --synthetic like=" + d.file("l.jsonl") +
      " --synthetic open=" + d.file("g.jsonl") + " --synthetic none=" + d.file("c.jsonl") +
      " --json " + d.file("e.json"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("protocol"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("like c.jsonl"), std::string::npos) << r.out;
  EXPECT_NE(testing::read_file(d.file("e.json")).find("\"protocol\": \"open\""), std::string::npos);
  // Settings round-trip (read back sorted by name); a malformed one names the file.
  SetProvenance with = *p;
  with.settings = {{"temperature", "0.6"}, {"known_types", "off"}};
  write_provenance(d.file("w.jsonl"), with);
  EXPECT_EQ(read_provenance(d.file("w.jsonl"))->settings,
            (std::vector<std::pair<std::string, std::string>>{{"known_types", "off"},
                                                              {"temperature", "0.6"}}));
  EXPECT_TRUE(read_provenance(d.file("l.jsonl"))->settings.empty());  // the baseline's: none
  testing::write_file(provenance_path(d.file("w.jsonl")),
                      R"({"format":"tracelm-provenance","generator":"tracelm",)"
                      R"("protocol":"open","settings":[1]})");
  EXPECT_THROW(read_provenance(d.file("w.jsonl")), InputError);
  testing::write_file(provenance_path(d.file("c.jsonl")), "{\"format\":\"tracelm-provenance\"}");
  EXPECT_THROW(read_provenance(d.file("c.jsonl")), InputError);
  // Same seed, same file.
  r = testing::run_tracelm("baseline generate " + d.file("p.json") + " -n 300 --seed 9 -o " +
                           d.file("g2.jsonl"));
  EXPECT_EQ(testing::read_file(d.file("g.jsonl")), testing::read_file(d.file("g2.jsonl")));
  EXPECT_NE(testing::run_tracelm("baseline generate " + d.file("c.jsonl") + " -n 1 -o " +
                                 d.file("x.jsonl"))
                .status,
            0);
}

}  // namespace
}  // namespace tracelm
