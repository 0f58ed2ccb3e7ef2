// Training: overfitting, exact resume, LoRA on a real base model.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "encode/recursive.h"
#include "ingest/ingest.h"
#include "model/llama.h"
#include "sample/synthetic_raw.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"

namespace tracelm {
namespace {

std::vector<CallGraph> sample_graphs(size_t n) {
  testing::TempDir tmp;
  testing::write_file(tmp.file("s.csv"), synthetic_raw_csv({}));
  std::vector<CallGraph> out;
  ingest({tmp.file("s.csv")}, {},
         {[&](CallGraph&& g) {
            if (out.size() < n) out.push_back(std::move(g));
          },
          nullptr, nullptr});
  return out;
}

// A tiny tokenizer trained once for these tests.
std::string tiny_tokenizer(const testing::TempDir& tmp) {
  std::string text;
  Rng rng(1);
  for (const CallGraph& g : sample_graphs(200)) text += encode_recursive(g, {}, rng);
  testing::write_file(tmp.file("t.txt"), text);
  TrainOptions o;
  o.vocab_size = 400;
  train_tokenizer(tmp.file("t.txt"), tmp.file("tok.model"), o);
  return tmp.file("tok.model");
}

TrainConfig quick(int64_t steps) {
  TrainConfig c;
  c.context = 128;
  c.batch = 4;
  c.micro_batch = 2;
  c.max_steps = steps;
  c.lr = 3e-3;
  c.warmup = 5;
  c.eval_every = 0;
  c.save_every = 0;
  c.progress = false;
  c.p_drop = 0;
  c.p_drop_latency = 0;
  return c;
}

TEST(Train, TinyModelOverfitsAHandfulOfGraphs) {
  testing::TempDir tmp;
  std::string tok = tiny_tokenizer(tmp);
  std::vector<CallGraph> few = sample_graphs(3);
  TrainStart start;
  start.preset = "tiny";
  start.tokenizer = tok;
  TrainConfig cfg = quick(150);
  cfg.context = 256;
  cfg.shuffle = false;  // shuffled phrase orders are unpredictable by design
  TrainResult r = train_model(few, few, start, cfg, tmp.file("out"));
  EXPECT_EQ(r.steps, 150);
  EXPECT_LT(r.final_val_loss, 0.35) << "first " << r.first_val_loss;
  EXPECT_LT(r.final_val_loss, r.first_val_loss / 10);
  // The output directory is what generation needs.
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.model", "stats.json", "metrics.jsonl"})
    EXPECT_TRUE(testing::exists(tmp.file(std::string("out/") + f))) << f;
  Llama back = load_llama(tmp.file("out"));
  EXPECT_EQ(back->config().vocab_size, Tokenizer::load(tok).vocab_size());
}

TEST(Train, ResumeReachesTheSameLossAtTheSameStep) {
  testing::TempDir tmp;
  std::string tok = tiny_tokenizer(tmp);
  std::vector<CallGraph> g = sample_graphs(40);
  TrainStart start;
  start.preset = "tiny";
  start.tokenizer = tok;
  TrainConfig cfg = quick(12);
  cfg.save_every = 4;
  TrainResult whole = train_model(g, g, start, cfg, tmp.file("a"));
  // A run stopped at step 4 (its last checkpoint), then resumed.
  TrainConfig to4 = cfg;
  to4.stop_after = 4;
  train_model(g, g, start, to4, tmp.file("c"));
  TrainResult resumed = train_model(g, g, start, cfg, tmp.file("c"), /*resume=*/true);
  EXPECT_EQ(resumed.steps, whole.steps);
  EXPECT_DOUBLE_EQ(resumed.final_loss, whole.final_loss);
  EXPECT_DOUBLE_EQ(resumed.final_val_loss, whole.final_val_loss);
}

TEST(Train, LoraOnStories260KLowersTheValidationLoss) {
  REQUIRE_SHARED("models/stories260K");
  testing::TempDir tmp;
  std::vector<CallGraph> g = sample_graphs(60);
  std::vector<CallGraph> train(g.begin(), g.begin() + 50), val(g.begin() + 50, g.end());
  TrainStart start;
  start.base_dir = testing::shared_path("models/stories260K");
  TrainConfig cfg = quick(25);
  cfg.lr = 5e-3;
  cfg.lora_config.target_modules = {"q_proj", "v_proj"};
  TrainResult r = train_model(train, val, start, cfg, tmp.file("lora"));
  EXPECT_LT(r.final_val_loss, r.first_val_loss * 0.95)
      << r.first_val_loss << " -> " << r.final_val_loss;
  EXPECT_TRUE(testing::exists(tmp.file("lora/adapter_config.json")));
  EXPECT_TRUE(testing::exists(tmp.file("lora/adapter_model.safetensors")));
  // The adapter reloads on the base and gives the trained model's loss.
  Llama m = load_llama(start.base_dir);
  load_lora(m, tmp.file("lora"));
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

TEST(Train, CliTrainsLoraThenScoresWithTheAdapterAndMerges) {
  REQUIRE_SHARED("models/stories260K");
  testing::TempDir tmp;
  std::string base = testing::shared_path("models/stories260K");
  testing::write_file(tmp.file("s.csv"), synthetic_raw_csv({}));
  auto r = testing::run_tracelm("ingest " + tmp.file("s.csv") + " -o " + tmp.file("c.jsonl") +
                                " --val-fraction 0.2 -q");
  ASSERT_EQ(r.status, 0) << r.out;
  r = testing::run_tracelm("train --corpus " + tmp.file("c.jsonl") + " --val " +
                           tmp.file("c.val.jsonl") + " --base " + base + " -o " + tmp.file("out") +
                           " --max-steps 4 --batch 4 --micro-batch 2 --context 128 -q");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("validation loss"), std::string::npos) << r.out;
  std::string text = "'(edge_id is 1,type is rpc,destination is MS_1)'";
  auto with = testing::run_tracelm("score --model " + base + " --adapter " + tmp.file("out") +
                                   " --text " + text);
  ASSERT_EQ(with.status, 0) << with.out;
  r = testing::run_tracelm("merge --base " + base + " --adapter " + tmp.file("out") + " -o " +
                           tmp.file("merged"));
  ASSERT_EQ(r.status, 0) << r.out;
  auto merged = testing::run_tracelm("score --model " + tmp.file("merged") + " --text " + text);
  ASSERT_EQ(merged.status, 0) << merged.out;
  EXPECT_NEAR(nlohmann::json::parse(with.out)["sum_logprob"].get<double>(),
              nlohmann::json::parse(merged.out)["sum_logprob"].get<double>(), 1e-3);
}

}  // namespace
}  // namespace tracelm
