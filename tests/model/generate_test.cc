// Recursive generation with a model that memorized a graph.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "encode/recursive.h"
#include "encode/unit_format.h"
#include "export/jaeger.h"
#include "export/otlp.h"
#include "generate/generator.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"
#include "train/trainer.h"

namespace tracelm {
namespace {

// A set's provenance names what decided its graphs (generator_settings).
TEST(Generate, SettingsFollowTheOptions) {
  auto map_of = [](const GeneratorOptions& o) {
    auto v = generator_settings(o);
    return std::map<std::string, std::string>(v.begin(), v.end());
  };
  GeneratorOptions go;
  auto m = map_of(go);
  EXPECT_EQ(m["temperature"], "0.6");
  EXPECT_EQ(m["attribute_order"], "fixed");
  EXPECT_EQ(m["known_types"], "on");
  EXPECT_EQ(m["draw_entries"], "on");
  EXPECT_EQ(m["known_splits"], "off");
  EXPECT_EQ(m["draw_widths"], "on");
  EXPECT_EQ(m["draw_layers"], "on");
  go.sampling.temperature = 0.8;
  go.known_types = false;
  go.known_splits = true;
  go.known_layers = false;  // entries and splits are parts of known layers
  m = map_of(go);
  EXPECT_EQ(m["temperature"], "0.8");
  EXPECT_EQ(m["known_types"], "off");
  EXPECT_EQ(m["known_splits"], "off");
  EXPECT_EQ(m["draw_entries"], "off");
  EXPECT_EQ(m["draw_layers"], "off");
  go.constrained = false;
  m = map_of(go);
  EXPECT_EQ(m["constrained"], "off");
  EXPECT_EQ(m["retries"], "3");
  EXPECT_FALSE(m.count("known_types"));
}

TEST(Generate, AMemorizedGraphComesBackLayerByLayer) {
  testing::TempDir tmp;
  std::vector<CallGraph> graphs;
  testing::write_file(tmp.file("s.csv"), synthetic_raw_csv({}));
  ingest({tmp.file("s.csv")}, {},
         {[&](CallGraph&& g) { graphs.push_back(std::move(g)); }, nullptr, nullptr});
  // A graph with a few layers.
  CallGraph target;
  for (const CallGraph& g : graphs)
    if (g.depth() == 3 && g.edges.size() >= 4 && g.edges.size() <= 6) {
      target = g;
      break;
    }
  ASSERT_FALSE(target.edges.empty());
  std::string text;
  Rng rng(1);
  for (const CallGraph& g : graphs) text += encode_recursive(g, {}, rng);
  testing::write_file(tmp.file("t.txt"), text);
  TrainOptions to;
  to.vocab_size = 400;
  train_tokenizer(tmp.file("t.txt"), tmp.file("tok.model"), to);
  TrainStart start;
  start.preset = "tiny";
  start.tokenizer = tmp.file("tok.model");
  TrainConfig cfg;
  cfg.context = 256;
  cfg.batch = 2;
  cfg.micro_batch = 2;
  cfg.max_steps = 150;
  cfg.lr = 3e-3;
  cfg.warmup = 5;
  cfg.eval_every = 0;
  cfg.save_every = 0;
  cfg.progress = false;
  cfg.shuffle = false;
  cfg.p_drop = 0;
  cfg.p_drop_latency = 0;
  train_model({target}, {target}, start, cfg, tmp.file("m"));

  ModelBundle b = load_model_bundle(tmp.file("m"));
  GeneratorOptions go;
  go.sampling.temperature = 0;  // greedy
  go.batch = 3;
  RecursiveGenerator gen(b, go);
  GenerateRequest req;
  req.service = target.service;
  req.num_edges = static_cast<int64_t>(target.edges.size());
  req.depth = target.depth();
  req.latency = target.latency();
  // The root prompt is the memorized root condition line.
  std::vector<GeneratedGraph> out = gen.generate({req, req}, 7);
  ASSERT_EQ(out.size(), 2u);
  for (const GeneratedGraph& g : out) {
    EXPECT_TRUE(g.complete) << g.error;
    EXPECT_TRUE(g.graph.same_content(target)) << graph_to_json(g.graph) << "\nwant\n"
                                              << graph_to_json(target);
    EXPECT_GE(g.layers, 2);
  }
  // Same seed, different batch size: same graphs.
  go.batch = 1;
  RecursiveGenerator one(b, go);
  std::vector<GeneratedGraph> again = one.generate({req, req}, 7);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(again[i].graph, out[i].graph);
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

// A model with random weights and a tokenizer trained on encoded graphs:
// whatever it samples, constrained decoding must give valid graphs that meet
// the request. The constraint, not the model, makes them valid.
class Untrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir;
    std::vector<CallGraph> graphs;
    testing::write_file(tmp_->file("s.csv"), synthetic_raw_csv({}));
    ingest({tmp_->file("s.csv")}, {},
           {[&](CallGraph&& g) { graphs.push_back(std::move(g)); }, nullptr, nullptr});
    std::string text;
    Rng rng(1);
    for (const CallGraph& g : graphs) text += encode_recursive(g, {}, rng);
    testing::write_file(tmp_->file("t.txt"), text);
    TrainOptions to;
    to.vocab_size = 400;
    train_tokenizer(tmp_->file("t.txt"), tmp_->file("tok.model"), to);
  }
  static void TearDownTestSuite() { delete tmp_; }
  ModelBundle bundle() {
    ModelBundle b;
    b.tokenizer.emplace(Tokenizer::load(tmp_->file("tok.model")));
    torch::manual_seed(11);
    b.model = Llama(preset_config("tiny", b.tokenizer->vocab_size(), 256));
    b.model->eval();
    b.priors.services = {{"S_1", 2}, {"S_2", 1}};
    b.priors.num_edges = {{1, 1}, {4, 2}, {9, 1}};
    return b;
  }
  static testing::TempDir* tmp_;
};
testing::TempDir* Untrained::tmp_ = nullptr;

TEST_F(Untrained, ConstrainedDecodingGivesValidGraphsThatMeetEveryRequest) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.sampling.top_k = 0;
  go.batch = 6;
  go.limits.max_name = 10;
  std::vector<GenerateRequest> reqs;
  for (int64_t e : {1, 2, 5, 9, 17})
    for (int64_t d : {1, 2, 3, 4}) {
      if (d > e || (d == 1 && e > 1)) continue;
      GenerateRequest r;
      r.num_edges = e;
      r.depth = d;
      if (e != 5) r.latency = 3 * e + d;
      reqs.push_back(r);
    }
  reqs.push_back({});  // open: size from the priors
  GenerateRequest svc;
  svc.service = "S_9";
  reqs.push_back(svc);
  RecursiveGenerator gen(b, go);
  std::vector<GeneratedGraph> out = gen.generate(reqs, 3);
  ASSERT_EQ(out.size(), reqs.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const GeneratedGraph& g = out[i];
    ASSERT_TRUE(g.complete) << i << ": " << g.error;
    std::vector<Violation> vs = validate(g.graph);
    EXPECT_TRUE(is_valid(vs, /*strict=*/true)) << i << ": " << vs[0].detail;
    if (reqs[i].num_edges)
      EXPECT_EQ(static_cast<int64_t>(g.graph.edges.size()), *reqs[i].num_edges);
    if (reqs[i].depth) EXPECT_EQ(g.graph.depth(), *reqs[i].depth);
    if (reqs[i].latency) EXPECT_EQ(g.graph.latency(), *reqs[i].latency);
    if (reqs[i].service) EXPECT_EQ(g.graph.service, *reqs[i].service);
  }
  EXPECT_GT(gen.stats().masked_steps, 0);  // random weights: the mask did the work
  // Unconstrained, the same model produces nothing usable.
  go.constrained = false;
  go.retries = 0;
  go.max_layer_tokens = 200;
  RecursiveGenerator free_gen(b, go);
  int ok = 0;
  for (const GeneratedGraph& g : free_gen.generate(reqs, 3)) ok += g.complete;
  EXPECT_EQ(ok, 0);
}

// A constrained unit's language is finite, so its token budget is at least
// its longest text: even with a budget of 8 tokens and any names, an
// untrained model completes large, deep requests.
TEST_F(Untrained, EveryRequestCompletesWhateverTheBudget) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.sampling.top_k = 0;
  go.batch = 4;
  go.max_layer_tokens = 8;
  go.known_names = false;
  GenerateRequest r;
  r.num_edges = 30;
  r.depth = 6;
  std::vector<GenerateRequest> reqs(3, r);
  RecursiveGenerator gen(b, go);
  std::vector<GeneratedGraph> out = gen.generate(reqs, 5);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(out[i].complete) << i << ": " << out[i].error;
    EXPECT_EQ(out[i].graph.edges.size(), 30u);
    EXPECT_EQ(out[i].graph.depth(), 6);
  }
}

// The CPU engine and the libtorch engine compute the same logits, so greedy
// decoding writes the same graphs with either, at any batch size.
TEST_F(Untrained, BothEnginesWriteTheSameGraphs) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.sampling.temperature = 0;
  go.limits.max_name = 10;
  std::vector<GenerateRequest> reqs(4);
  reqs[1].num_edges = 7;
  reqs[1].depth = 3;
  std::vector<std::string> want;
  for (auto engine : {GeneratorOptions::Engine::kTorch, GeneratorOptions::Engine::kCpu})
    for (int64_t batch : {1, 3}) {
      go.engine = engine;
      go.batch = batch;
      RecursiveGenerator gen(b, go);
      std::vector<std::string> got;
      for (const GeneratedGraph& g : gen.generate(reqs, 9)) {
        ASSERT_TRUE(g.complete) << g.error;
        got.push_back(graph_to_json(g.graph));
      }
      if (want.empty()) want = got;
      EXPECT_EQ(got, want) << "engine " << static_cast<int>(engine) << ", batch " << batch;
    }
}

// With known_calls, a caller that calls anything in the training corpus
// calls only what it calls there.
TEST_F(Untrained, KnownCallsKeepCallersToTheirTrainingCallees) {
  ModelBundle b = bundle();
  b.names = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C"});
  b.callees_of["USER"] = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A"});
  b.callees_of["A"] = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"B"});
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.known_calls = true;
  GenerateRequest r;
  r.num_edges = 6;
  r.depth = 3;
  RecursiveGenerator gen(b, go);
  std::set<std::string> seen;
  for (const GeneratedGraph& g : gen.generate(std::vector<GenerateRequest>(5, r), 2)) {
    ASSERT_TRUE(g.complete) << g.error;
    for (const Edge& e : g.graph.edges) {
      if (e.caller == "USER") EXPECT_EQ(e.callee, "A");
      if (e.caller == "A") EXPECT_EQ(e.callee, "B");
      seen.insert(e.callee);
    }
  }
  EXPECT_TRUE(seen.count("B"));  // depth 3: A -> B, and B calls any known name
}

// With known layers (the default), a layer's destinations follow a sequence
// its caller's layers of that width had in training: here USER calls A, and
// A's calls are B then C, C, ... at every width.
TEST_F(Untrained, KnownLayersFollowTheTrainingSequences) {
  ModelBundle b = bundle();
  b.names = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C"});
  auto keep = [](const std::string&) { return true; };
  b.layers[{"USER", 1}] = LayerTrie::of({{"A"}}, 1, keep);
  for (size_t w = 1; w <= 15; ++w) {
    std::vector<std::string> seq(w, "C");
    seq[0] = "B";
    b.layers[{"A", static_cast<int64_t>(w)}] = LayerTrie::of({seq}, w, keep);
  }
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  ASSERT_TRUE(go.known_layers);
  GenerateRequest r;
  r.num_edges = 6;
  r.depth = 3;
  RecursiveGenerator gen(b, go);
  int64_t a_layers = 0;
  for (const GeneratedGraph& g : gen.generate(std::vector<GenerateRequest>(5, r), 2)) {
    ASSERT_TRUE(g.complete) << g.error;
    GraphIndex ix = g.graph.index();
    for (size_t i = 0; i < g.graph.edges.size(); ++i) {
      const Edge& e = g.graph.edges[i];
      if (e.caller == "USER") EXPECT_EQ(e.callee, "A");
      if (e.callee != "A" || ix.children[i].empty()) continue;
      ++a_layers;
      for (size_t k = 0; k < ix.children[i].size(); ++k)
        EXPECT_EQ(g.graph.edges[ix.children[i][k]].callee, k == 0 ? "B" : "C");
    }
  }
  EXPECT_GT(a_layers, 0);
}

// A root layer's known layer is keyed by its service (entries_for): S_1's
// graphs enter at B, S_3's at C; a service without entries at any service's
// entry (B or C), not at A.
TEST_F(Untrained, KnownLayersEnterAtTheServicesEntries) {
  ModelBundle b = bundle();
  b.names = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C"});
  auto keep = [](const std::string&) { return true; };
  b.layers[{"USER", 1}] = LayerTrie::of({{"A"}}, 1, keep);
  b.priors.entries = {{"S_1", {{"B", 1, 5}}}, {"S_3", {{"C", 1, 5}}}};
  b.any_entry = LayerTrie::of({{"B"}, {"C"}}, 1, keep);
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  GenerateRequest r;
  r.num_edges = 3;
  r.depth = 2;
  std::vector<GenerateRequest> reqs(9, r);
  for (size_t i = 0; i < reqs.size(); ++i) reqs[i].service = "S_" + std::to_string(i % 3 + 1);
  ASSERT_TRUE(go.known_layers);
  RecursiveGenerator gen(b, go);
  std::map<std::string, std::set<std::string>> entries;  // service -> root callees
  for (const GeneratedGraph& g : gen.generate(reqs, 3)) {
    ASSERT_TRUE(g.complete) << g.error;
    entries[g.graph.service].insert(g.graph.edges[0].callee);
  }
  EXPECT_EQ(entries["S_1"], (std::set<std::string>{"B"}));
  EXPECT_EQ(entries["S_3"], (std::set<std::string>{"C"}));
  EXPECT_FALSE(entries["S_2"].empty());
  EXPECT_FALSE(entries["S_2"].count("A"));
}

// A layer follows one of its node's known layers drawn by how often calls
// to the node from its caller made each in training (draw_layer), whatever
// the model prefers: A, entered from USER, called B 3 times for each C
// (and C 5 times when called by Z, which none of these graphs has).
TEST_F(Untrained, DrawnLayersFollowTheTrainingCounts) {
  ModelBundle b = bundle();
  b.names = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C"});
  auto keep = [](const std::string&) { return true; };
  b.priors.entries = {{"S_1", {{"A", 1, 5, 1}}}};
  b.priors.layers = {{"A", {{"B"}, {"C"}}}};
  b.priors.layer_counts = {{"A", {{"USER", {{0, 1, 3}, {1, 1, 1}}}, {"Z", {{1, 1, 5}}}}}};
  b.layers[{"A", 1}] = LayerTrie::of(b.priors.layers[0].second, 1, keep);
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  GenerateRequest r;
  r.service = "S_1";
  r.num_edges = 2;
  r.depth = 2;
  auto under_a = [&](const GeneratorOptions& o) {
    std::map<std::string, int> n;
    RecursiveGenerator gen(b, o);
    for (const GeneratedGraph& g : gen.generate(std::vector<GenerateRequest>(160, r), 4)) {
      EXPECT_TRUE(g.complete) << g.error;
      for (const Edge& e : g.graph.edges)
        if (e.caller == "A") ++n[e.callee];
    }
    return n;
  };
  std::map<std::string, int> drawn = under_a(go);
  EXPECT_EQ(drawn["B"] + drawn["C"], 160);
  EXPECT_NEAR(drawn["B"], 120, 24) << drawn["C"];  // 3 of 4; sd 5.5
  go.draw_layers = false;                          // the model's picks: still B or C
  std::map<std::string, int> picked = under_a(go);
  EXPECT_EQ(picked["B"] + picked["C"], 160);
}

// With known_splits, a split follows one of its caller's wide training layers, each item the
// calls at its place (split_item_names): A's 20-call layers are D then B 19
// times, or E then C 19 times, so every wide layer of A is one of the two
// whole, however the split cuts it into items.
TEST_F(Untrained, SplitsFollowOneOfTheirCallersWideLayers) {
  ModelBundle b = bundle();
  b.names =
      std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C", "D", "E"});
  b.callers = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A"});
  std::vector<std::string> db(20, "B"), ec(20, "C");
  db[0] = "D";
  ec[0] = "E";
  b.priors.layers = {{"A", {db, ec}}};
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.known_splits = true;
  GenerateRequest r;
  r.num_edges = 21;
  r.depth = 2;
  RecursiveGenerator gen(b, go);
  std::map<std::string, int> wide_layers;  // by first callee
  for (const GeneratedGraph& g : gen.generate(std::vector<GenerateRequest>(8, r), 5)) {
    ASSERT_TRUE(g.complete) << g.error;
    GraphIndex ix = g.graph.index();
    for (size_t i = 0; i < g.graph.edges.size(); ++i) {
      if (ix.children[i].size() <= kMaxLayerEdges) continue;
      std::vector<std::string> got;
      for (size_t k : ix.children[i]) got.push_back(g.graph.edges[k].callee);
      EXPECT_TRUE(got == db || got == ec) << graph_to_json(g.graph);
      ++wide_layers[got[0]];
    }
  }
  EXPECT_GT(wide_layers["D"] + wide_layers["E"], 0);
}

// Entry layers: the layer under the root call follows its service's own
// layers under that entry (S_1: A calls B or E; S_2: A calls C), and a
// layer follows only the known layers whose callees can hold its calls
// (B held 3 calls below it in training, E 1, so 5-call graphs of depth 3
// take B).
TEST_F(Untrained, EntryLayersFollowTheServiceAndHoldTheCalls) {
  ModelBundle b = bundle();
  b.names =
      std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C", "D", "E"});
  b.callers =
      std::make_shared<std::vector<std::string>>(std::vector<std::string>{"A", "B", "C", "E"});
  b.priors.entries = {{"S_1", {{"A", 1, 20, 2}}}, {"S_2", {{"A", 1, 20, 1}}}};
  b.priors.entry_layers = {{"S_1", {{"A", Sequences{{"B"}, {"E"}}}}},
                           {"S_2", {{"A", Sequences{{"C"}}}}}};
  // A: 4 calls below, 1 of its own; B: 3 below, all its own; C, E: 1.
  b.priors.subtree_max = {{"A", {4, 3, 1, 1, 1.0, 0, 0}},
                          {"B", {3, 0, 0, 3, 0.0, 0, 0}},
                          {"C", {1, 0, 0, 1, 0.0, 0, 0}},
                          {"E", {1, 0, 0, 1, 0.0, 0, 0}}};
  b.subtree_caps = std::make_shared<const std::vector<std::pair<std::string, SubtreeSize>>>(
      b.priors.subtree_max);
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.limits.max_name = 10;
  std::vector<GenerateRequest> reqs;
  for (const char* service : {"S_1", "S_2"})
    for (int64_t edges : {3, 5})
      for (int i = 0; i < 6; ++i) {
        GenerateRequest r;
        r.service = service;
        r.num_edges = edges;
        r.depth = 3;
        reqs.push_back(r);
      }
  RecursiveGenerator gen(b, go);
  std::vector<GeneratedGraph> out = gen.generate(reqs, 7);
  std::map<std::pair<std::string, size_t>, std::set<std::string>> under_a;  // (service, edges)
  for (const GeneratedGraph& g : out) {
    ASSERT_TRUE(g.complete) << g.error;
    for (const Edge& e : g.graph.edges)
      if (e.caller == "A") under_a[{g.graph.service, g.graph.edges.size()}].insert(e.callee);
  }
  using Names = std::set<std::string>;
  EXPECT_EQ((under_a[{"S_1", 3}]), (Names{"B", "E"}));  // 1 call below: either holds it
  EXPECT_EQ((under_a[{"S_1", 5}]), (Names{"B"}));       // 3 below: only B
  EXPECT_EQ((under_a[{"S_2", 3}]), (Names{"C"}));
  EXPECT_EQ((under_a[{"S_2", 5}]), (Names{"C"}));  // none holds 3: C all the same
}

// Jump-forward appends the tokens the constraint forces without a forward
// pass each: fewer forwards per graph, graphs still complete and valid.
TEST_F(Untrained, JumpForwardSkipsForcedTokens) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.batch = 4;
  go.limits.max_name = 10;
  std::vector<GenerateRequest> reqs(6);
  reqs[2].num_edges = 12;
  reqs[2].depth = 3;
  int64_t forwards[2] = {0, 0};
  for (bool jump : {false, true}) {
    go.jump_forward = jump;
    RecursiveGenerator gen(b, go);
    for (const GeneratedGraph& g : gen.generate(reqs, 4)) {
      ASSERT_TRUE(g.complete) << g.error;
      EXPECT_TRUE(is_valid(validate(g.graph), /*strict=*/true));
    }
    forwards[jump] = gen.stats().forward_calls;
    if (jump) {
      EXPECT_GT(gen.stats().forced_tokens * 5, gen.stats().tokens);  // > 20% forced
    } else {
      EXPECT_EQ(gen.stats().forced_tokens, 0);
    }
  }
  EXPECT_LT(forwards[1], forwards[0]);
}

// The same with instruction-format prompts and answers (scratchpad
// included), and a requested call.
TEST_F(Untrained, ConstrainedInstructionAnswersGiveValidGraphs) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.sampling.temperature = 1.0;
  go.sampling.top_k = 0;
  go.batch = 5;
  go.limits.max_name = 10;
  go.instruction = true;
  std::vector<GenerateRequest> reqs;
  for (int64_t e : {1, 3, 6, 17})
    for (int64_t d : {1, 2, 3}) {
      if (d > e || (d == 1 && e > 1)) continue;
      GenerateRequest r;
      r.num_edges = e;
      r.depth = d;
      reqs.push_back(r);
    }
  reqs.push_back({});  // open: size from the priors, depth written by the model
  std::string err;
  GenerateRequest rc;
  rc.num_edges = 5;
  rc.call = *CallRequest::parse("MS_1,MS_2,rpc", &err);
  reqs.push_back(rc);
  RecursiveGenerator gen(b, go);
  std::vector<GeneratedGraph> out = gen.generate(reqs, 4);
  for (size_t i = 0; i < out.size(); ++i) {
    const GeneratedGraph& g = out[i];
    ASSERT_TRUE(g.complete) << i << ": " << g.error;
    EXPECT_TRUE(is_valid(validate(g.graph), /*strict=*/true)) << i;
    if (reqs[i].num_edges)
      EXPECT_EQ(static_cast<int64_t>(g.graph.edges.size()), *reqs[i].num_edges);
    if (reqs[i].depth) EXPECT_EQ(g.graph.depth(), *reqs[i].depth);
    if (reqs[i].call) EXPECT_TRUE(has_call(g.graph, *reqs[i].call));
  }
}

// Each layer's sampling has its own seed, so neither the batch size nor the
// number of decoding threads (each with its own batch) changes the graphs.
TEST_F(Untrained, SeededGenerationIsTheSameForAnyBatchSizeAndThreads) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.sampling.temperature = 0.9;
  go.limits.max_name = 8;
  std::vector<GenerateRequest> reqs(7);
  reqs[1].num_edges = 6;
  reqs[3].depth = 3;
  reqs[5].num_edges = 12;
  for (Precision precision : {Precision::kF32, Precision::kBF16}) {
    go.precision = precision;
    std::vector<std::vector<GeneratedGraph>> runs;
    std::vector<GenerateStats> stats;  // summed over threads
    for (auto [batch, threads] :
         std::vector<std::pair<int64_t, int>>{{1, 1}, {3, 1}, {16, 1}, {2, 3}, {1, 4}}) {
      go.batch = batch;
      go.decode_threads = threads;
      RecursiveGenerator gen(b, go);
      runs.push_back(gen.generate(reqs, 42));
      stats.push_back(gen.stats());
    }
    const char* p = precision_name(precision);
    for (size_t r = 1; r < runs.size(); ++r) {
      EXPECT_EQ(stats[r].sequences, stats[0].sequences) << p << " run " << r;
      EXPECT_EQ(stats[r].tokens, stats[0].tokens) << p << " run " << r;
      EXPECT_EQ(stats[r].forced_tokens, stats[0].forced_tokens) << p << " run " << r;
      for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_TRUE(runs[r][i].complete);
        EXPECT_EQ(runs[r][i].graph, runs[0][i].graph) << p << " run " << r << ", graph " << i;
      }
    }
  }
  // bf16 is the CPU engine's: the torch engine refuses it rather than ignore it.
  go.engine = GeneratorOptions::Engine::kTorch;
  RecursiveGenerator torch_gen(b, go);
  EXPECT_THROW(torch_gen.generate(reqs, 42), std::invalid_argument);
}

TEST_F(Untrained, GeneratedGraphsSurviveOtlpAndJaeger) {
  ModelBundle b = bundle();
  GeneratorOptions go;
  go.limits.max_name = 8;
  RecursiveGenerator gen(b, go);
  std::vector<CallGraph> graphs;
  for (auto& g : gen.generate(std::vector<GenerateRequest>(6), 5)) {
    ASSERT_TRUE(g.complete);
    graphs.push_back(g.graph);
  }
  std::vector<CallGraph> otlp, jaeger;
  std::string err;
  ASSERT_TRUE(parse_otlp_json(to_otlp_json(graphs), &otlp, &err)) << err;
  ASSERT_TRUE(parse_jaeger_json(to_jaeger_json(graphs), &jaeger, &err)) << err;
  ASSERT_EQ(otlp.size(), graphs.size());
  ASSERT_EQ(jaeger.size(), graphs.size());
  for (size_t i = 0; i < graphs.size(); ++i) {
    EXPECT_TRUE(otlp[i].same_content(graphs[i])) << i;
    EXPECT_TRUE(jaeger[i].same_content(graphs[i])) << i;
  }
}

}  // namespace
}  // namespace tracelm
