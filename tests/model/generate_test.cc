// Recursive generation with a model that memorized a graph.
#include <gtest/gtest.h>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "encode/recursive.h"
#include "generate/generator.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"
#include "train/trainer.h"

namespace tracelm {
namespace {

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
