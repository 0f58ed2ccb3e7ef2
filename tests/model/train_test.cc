// Training: overfitting, exact resume, LoRA on a real base model.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "encode/instruction.h"
#include "encode/recursive.h"
#include "encode/tabular.h"
#include "ingest/ingest.h"
#include "io/input_error.h"
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

// --name-tokens: the most frequent callee names, each also after a space,
// writable names only, ties by name; a model trained with them writes each
// of those names as one token.
TEST(Train, NameSymbolsAreTheMostFrequentCallees) {
  auto graph = [](std::vector<std::string> callees) {
    CallGraph g;
    g.service = "S_1";
    std::string parent = "USER";
    int i = 0;
    for (const std::string& c : callees) {
      Edge e;
      e.id = i == 0 ? RpcId::parse("0").value() : RpcId::parse("0." + std::to_string(i)).value();
      e.caller = i == 0 ? "USER" : callees[0];
      e.callee = c;
      e.type = CallType::kHttp;
      g.edges.push_back(e);
      ++i;
    }
    return g;
  };
  std::vector<CallGraph> gs = {graph({"MS_1", "MS_2", "MS_3", "UNKNOWN"}),
                               graph({"MS_1", "MS_3", "bad name"}), graph({"MS_1"})};
  EXPECT_EQ(name_symbols(gs, 2), (std::vector<std::string>{"MS_1", " MS_1", "MS_3", " MS_3"}));
  EXPECT_EQ(name_symbols(gs, 10).size(), 6u);  // UNKNOWN and "bad name" are not names
  EXPECT_TRUE(name_symbols(gs, 0).empty());
  testing::TempDir tmp;
  TrainStart start;
  start.preset = "tiny";
  start.name_tokens = 3;
  TrainConfig cfg = quick_train_config(1, 1);
  cfg.max_steps = 1;
  cfg.eval_every = 0;
  cfg.save_every = 0;
  cfg.progress = false;
  train_model(gs, gs, start, cfg, tmp.file("m"));
  Tokenizer tok = Tokenizer::load(tmp.file("m/tokenizer.model"));
  std::vector<std::string> pieces = tok.encode_pieces("destination is MS_3,start_node:MS_3/");
  EXPECT_EQ(std::count_if(pieces.begin(), pieces.end(),
                          [](const std::string& p) { return p.find("MS_3") != std::string::npos; }),
            2)
      << ::testing::PrintToString(pieces);
  EXPECT_GE(tok.piece_to_id("MS_3"), 0);
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

TEST(Train, ScheduleFitsTheTimeBudget) {
  // 20 steps in 10 s (0.5 s each), 50 s left: 100 more steps.
  EXPECT_EQ(time_fitted_steps(1000, 20, 10.0, 60.0), 120);
  EXPECT_EQ(time_fitted_steps(1000, 20, 10.0, 0.0), 1000);  // no budget
  EXPECT_EQ(time_fitted_steps(1000, 20, 70.0, 60.0), 21);   // over budget: at least one more
  EXPECT_EQ(time_fitted_steps(100, 20, 1.0, 60.0), 100);    // never past the epochs
  EXPECT_EQ(time_fitted_steps(1000, 0, 0.0, 60.0), 1000);   // nothing measured
}

// The tiny preset with its own small tokenizer (in tmp).
TrainStart tiny_start(const testing::TempDir& tmp) {
  TrainStart start;
  start.preset = "tiny";
  start.tokenizer = tiny_tokenizer(tmp);
  return start;
}

TEST(Train, ResumeReachesTheSameLossAtTheSameStep) {
  testing::TempDir tmp;
  const TrainStart start = tiny_start(tmp);
  std::vector<CallGraph> g = sample_graphs(40);
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

int64_t schedule_steps(const std::string& checkpoint) {
  std::ifstream f(checkpoint + "/state.json");
  return nlohmann::json::parse(f).at("schedule_steps").get<int64_t>();
}

TEST(Train, RefitScheduleFitsTheCosineToTheResumedRunsBudget) {
  testing::TempDir tmp;
  const TrainStart start = tiny_start(tmp);
  std::vector<CallGraph> g = sample_graphs(40);
  TrainConfig cfg = quick(1000000);
  cfg.time_budget_s = 1.5;
  TrainResult first = train_model(g, g, start, cfg, tmp.file("a"));
  if (first.steps <= kScheduleFitStep)  // a loaded machine (seen once with ctest -j2 + a benchmark)
    GTEST_SKIP() << "too few steps in 1.5 s to fit a schedule: " << first.steps;
  const int64_t fitted = schedule_steps(tmp.file("a/checkpoint"));
  // Fitted to the budget, not the epochs (a million steps): from the pace of the first
  // kScheduleFitStep steps, so a machine whose load changes later moves it (x4 margin).
  EXPECT_LE(fitted, 4 * (first.steps + kScheduleFitStep));
  std::filesystem::copy(tmp.file("a"), tmp.file("b"), std::filesystem::copy_options::recursive);
  // Resumed as it was: the checkpoint's schedule stands.
  TrainResult kept = train_model(g, g, start, cfg, tmp.file("a"), /*resume=*/true);
  EXPECT_GT(kept.steps, first.steps);
  EXPECT_EQ(schedule_steps(tmp.file("a/checkpoint")), fitted);
  // Refitted: the cosine now ends with the second run's budget.
  TrainConfig refit = cfg;
  refit.refit_schedule = true;
  TrainResult more = train_model(g, g, start, refit, tmp.file("b"), /*resume=*/true);
  if (more.steps - first.steps <= kScheduleFitStep)
    GTEST_SKIP() << "the resumed run made too few steps to fit a schedule";
  EXPECT_GT(schedule_steps(tmp.file("b/checkpoint")), first.steps + kScheduleFitStep);
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

// Graphs whose recursive encoding draws nothing from the Rng when nothing is
// shuffled or dropped (no layer wider than 15 edges): their text is the same
// whatever the seed, so text and on-the-fly encoding can be compared.
std::vector<CallGraph> rng_free_graphs(size_t n) {
  std::vector<CallGraph> out;
  for (CallGraph& g : sample_graphs(200)) {
    Rng a(1), b(2);
    if (encode_recursive(g, {false, 0, 0}, a) == encode_recursive(g, {false, 0, 0}, b))
      out.push_back(std::move(g));
    if (out.size() == n) break;
  }
  return out;
}

TEST(TrainText, RecursiveTextGivesTheSequencesOfOnTheFlyEncoding) {
  testing::TempDir tmp;
  Tokenizer tok = Tokenizer::load(tiny_tokenizer(tmp));
  std::vector<CallGraph> g = rng_free_graphs(12);
  ASSERT_GE(g.size(), 8u);
  TrainConfig cfg = quick(10);
  cfg.shuffle = false;
  cfg.context = 64;  // some units are cut into windows
  std::string text;
  Rng rng(7);
  for (const CallGraph& x : g) text += encode_recursive(x, {false, 0, 0}, rng);
  EncodedText et = parse_encoded_text(text, "r.txt");
  EXPECT_EQ(et.format, "recursive");
  ASSERT_EQ(et.graphs.size(), g.size());
  ASSERT_EQ(et.decoded.size(), g.size());
  Rng rng2(7);
  EXPECT_EQ(et.graphs[0], encode_recursive_units(g[0], {false, 0, 0}, rng2));
  TrainData from_graphs(g, nullptr, tok, cfg), from_text(et, tok, cfg);
  for (int64_t e : {0, 1}) {
    std::vector<TrainSequence> a = from_graphs.epoch(5, e), b = from_text.epoch(5, e);
    EXPECT_GT(a.size(), g.size());  // several units per graph
    EXPECT_EQ(a, b) << "epoch " << e;
  }
}

TEST(TrainText, TabularTextGivesTheSequencesOfOnTheFlyEncoding) {
  testing::TempDir tmp;
  Tokenizer tok = Tokenizer::load(tiny_tokenizer(tmp));
  std::vector<CallGraph> g = sample_graphs(10);
  TrainConfig cfg = quick(10);
  cfg.shuffle = false;
  cfg.format = "tabular";
  std::string text;
  Rng rng(3);
  for (const CallGraph& x : g) text += encode_tabular(x, {false, 0}, rng);
  EncodedText et = parse_encoded_text(text, "t.txt");
  EXPECT_EQ(et.format, "tabular");
  ASSERT_EQ(et.graphs.size(), g.size());
  TrainData from_graphs(g, nullptr, tok, cfg), from_text(et, tok, cfg);
  EXPECT_EQ(from_graphs.epoch(9, 0), from_text.epoch(9, 0));
}

TEST(TrainText, InstructionTextHasNoLossOnTheQuestion) {
  testing::TempDir tmp;
  Tokenizer tok = Tokenizer::load(tiny_tokenizer(tmp));
  std::string text;
  std::vector<InstructionSample> want;
  Rng rng(4);
  for (const CallGraph& x : sample_graphs(5))
    for (InstructionSample& s : encode_instruction(x, nullptr, {}, rng)) {
      text += s.question + s.answer;
      want.push_back(std::move(s));
    }
  EncodedText et = parse_encoded_text(text, "i.txt");
  EXPECT_EQ(et.format, "instruction");
  ASSERT_EQ(et.samples.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(et.samples[i].question, want[i].question);
    EXPECT_EQ(et.samples[i].answer, want[i].answer);
  }
  TrainConfig cfg = quick(10);
  cfg.stage = "instruct";
  cfg.context = 1024;
  std::vector<TrainSequence> seqs = TrainData(et, tok, cfg).epoch(1, 0);
  ASSERT_EQ(seqs.size(), want.size());
  std::multiset<std::vector<int32_t>> questions;
  for (const InstructionSample& s : want) {
    std::vector<int> q = tok.encode(s.question, true, false);
    questions.insert(std::vector<int32_t>(q.begin(), q.end()));
  }
  for (const TrainSequence& s : seqs) {
    std::vector<int32_t> q(s.tokens.begin(), s.tokens.begin() + s.loss_from);
    EXPECT_EQ(questions.count(q), 1u);  // targets start right after the question
    EXPECT_EQ(s.tokens.back(), tok.eos_id());
  }
  // Pre-training rejects instruction text, and the other way round.
  EXPECT_THROW(TrainData(et, tok, quick(1)), std::invalid_argument);
}

TEST(TrainText, MalformedTextNamesTheFileAndLine) {
  auto error = [](const std::string& text) {
    try {
      parse_encoded_text(text, "bad.txt");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  Rng rng(1);
  std::vector<CallGraph> g = sample_graphs(2);
  std::string good = encode_recursive(g[0], {false, 0, 0}, rng);
  int good_lines = static_cast<int>(std::count(good.begin(), good.end(), '\n'));
  EXPECT_EQ(error(""), "bad.txt: no records (empty text)");
  EXPECT_EQ(error("hello\n" + good).rfind("bad.txt:1: ", 0), 0u) << error("hello\n" + good);
  // A broken edge line in the second graph.
  std::string broken = encode_recursive(g[1], {false, 0, 0}, rng);
  size_t at = broken.find("(edge_id");
  ASSERT_NE(at, std::string::npos);
  broken.insert(at + 1, "bogus,");
  int line =
      good_lines + 1 +
      static_cast<int>(std::count(broken.begin(), broken.begin() + static_cast<long>(at), '\n'));
  std::string e = error(good + broken);
  EXPECT_EQ(e.rfind("bad.txt:" + std::to_string(line) + ": ", 0), 0u) << e;
  // A graph cut short.
  e = error(good + good.substr(0, good.size() / 2));
  EXPECT_EQ(e.rfind("bad.txt:", 0), 0u) << e;
  EXPECT_EQ(error("{\"text\":\"x\"}\n").rfind("bad.txt:1: JSON Lines", 0), 0u);
  // Instruction text: a sample without its answer head.
  std::string q = encode_instruction(g[0], nullptr, {}, rng)[0].question;
  e = error(q.substr(0, q.find(" ### Answer")) + "<layer>\n");
  EXPECT_EQ(e.rfind("bad.txt:", 0), 0u) << e;
}

TEST(TrainText, TinyModelLearnsFromRecursiveText) {
  testing::TempDir tmp;
  std::string tok = tiny_tokenizer(tmp);
  std::string text;
  Rng rng(1);
  for (const CallGraph& x : sample_graphs(3)) text += encode_recursive(x, {false, 0, 0}, rng);
  testing::write_file(tmp.file("train.txt"), text);
  EncodedText et = read_encoded_text(tmp.file("train.txt"));
  TrainStart start;
  start.preset = "tiny";
  start.tokenizer = tok;
  TrainConfig cfg = quick(100);
  cfg.context = 256;
  TrainResult r = train_model(et, et, {}, start, cfg, tmp.file("out"));
  EXPECT_EQ(r.steps, 100);
  EXPECT_LT(r.final_val_loss, r.first_val_loss / 4) << r.first_val_loss;
  // Statistics from the graphs the text holds.
  nlohmann::json st = nlohmann::json::parse(testing::read_file(tmp.file("out/stats.json")));
  EXPECT_TRUE(st.contains("services"));  // stats/trained_stats.h
  EXPECT_TRUE(st.contains("num_edges"));
  EXPECT_TRUE(st.contains("conditions"));
}

}  // namespace
}  // namespace tracelm

namespace tracelm {
namespace {

// The built-in synthetic sample, ingested into TMP/c.jsonl and c.val.jsonl.
void ingest_sample(const testing::TempDir& tmp) {
  testing::write_file(tmp.file("s.csv"), synthetic_raw_csv({}));
  auto r = testing::run_tracelm("ingest " + tmp.file("s.csv") + " -o " + tmp.file("c.jsonl") +
                                " --val-fraction 0.2 -q");
  ASSERT_EQ(r.status, 0) << r.out;
}

TEST(Train, CliTrainsLoraThenScoresWithTheAdapterAndMerges) {
  REQUIRE_SHARED("models/stories260K");
  testing::TempDir tmp;
  std::string base = testing::shared_path("models/stories260K");
  ASSERT_NO_FATAL_FAILURE(ingest_sample(tmp));
  testing::RunResult r;
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

TEST(TrainText, CliTrainsFromEncodedText) {
  REQUIRE_SHARED("models/stories260K");
  testing::TempDir tmp;
  std::string base = testing::shared_path("models/stories260K");
  ASSERT_NO_FATAL_FAILURE(ingest_sample(tmp));
  testing::RunResult r;
  r = testing::run_tracelm("encode " + tmp.file("c.jsonl") + " --format recursive -o " +
                           tmp.file("t.txt"));
  ASSERT_EQ(r.status, 0) << r.out;
  r = testing::run_tracelm("encode " + tmp.file("c.val.jsonl") + " --format recursive -o " +
                           tmp.file("v.txt"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string common =
      " --base " + base + " --max-steps 3 --batch 4 --micro-batch 2 --context 128 -q";
  r = testing::run_tracelm("train --text " + tmp.file("t.txt") + " --val-text " +
                           tmp.file("v.txt") + " -o " + tmp.file("out") + common);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("decoded from the text"), std::string::npos) << r.out;
  EXPECT_TRUE(testing::exists(tmp.file("out/stats.json")));
  // With the corpus alongside, no warning.
  r = testing::run_tracelm("train --text " + tmp.file("t.txt") + " --corpus " +
                           tmp.file("c.jsonl") + " -o " + tmp.file("out2") + common);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;
  // Instruction text is for --stage instruct only; a wrong --format is refused.
  r = testing::run_tracelm("train --text " + tmp.file("t.txt") + " --format tabular -o " +
                           tmp.file("out3") + common);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("holds recursive text"), std::string::npos) << r.out;
  // Malformed text: the file and line.
  testing::write_file(tmp.file("bad.txt"), "[GENERATE GRAPH]id:S_1\n<layer>\n<edges>\n(x)\n");
  r = testing::run_tracelm("train --text " + tmp.file("bad.txt") + " -o " + tmp.file("out4") +
                           common);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("bad.txt:4: "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tracelm
