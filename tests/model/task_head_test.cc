// The model side of the downstream tasks (src/tasks/task_model.h,
// classifier_head.h): the head's logits against a hand computation, and
// fine-tuning, answering, classifying and evaluating end to end on a tiny
// model.
#include <gtest/gtest.h>

#include <filesystem>

#include "corpus/corpus.h"
#include "encode/recursive.h"
#include "model/llama.h"
#include "tasks/classifier_head.h"
#include "tasks/score.h"
#include "tasks/task_data.h"
#include "tasks/task_model.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace tracelm {
namespace {

LlamaConfig tiny_config(int64_t vocab) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 512;
  return c;
}

TEST(TaskHead, LogitsEqualAHandComputation) {
  torch::NoGradGuard ng;
  Llama m = init_llama(tiny_config(40), 3);
  m->eval();
  std::vector<std::vector<int>> seqs = {{1, 5, 9, 12, 30}, {1, 7, 3}, {1, 2, 2, 2, 2, 2, 39}};
  torch::Tensor f = last_token_hidden(m, seqs);  // (3,16)
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{3, 16}));
  // Each row is the final hidden state of that sequence's last token, alone.
  for (size_t b = 0; b < seqs.size(); ++b) {
    std::vector<int64_t> ids(seqs[b].begin(), seqs[b].end());
    torch::Tensor h = m->hidden(torch::tensor(ids).unsqueeze(0));  // (1,T,C)
    EXPECT_LT((h[0][-1] - f[static_cast<int64_t>(b)]).abs().max().item<float>(), 1e-5) << b;
  }
  // logits[b][k] = sum_c W[k][c] h[b][c], by hand in double.
  torch::Tensor w = torch::randn({2, 16}, torch::kFloat32);
  torch::Tensor logits = head_logits(w, f);  // (3,2)
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, 2}));
  auto wa = w.accessor<float, 2>();
  auto fa = f.accessor<float, 2>();
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t k = 0; k < 2; ++k) {
      double s = 0;
      for (int64_t c = 0; c < 16; ++c) s += static_cast<double>(wa[k][c]) * fa[b][c];
      EXPECT_NEAR(logits[b][k].item<float>(), s, 1e-5);
    }
  // With the LM head's weight (or the tied embeddings), the head gives the
  // LM's next-token logits at the last position.
  torch::Tensor lm = m->forward(torch::tensor(std::vector<int64_t>{1, 5, 9, 12, 30}).unsqueeze(0));
  torch::Tensor lm_w = m->lm_head.is_empty() ? m->model->embed_tokens->weight : m->lm_head->weight;
  torch::Tensor via_head = head_logits(lm_w, f.narrow(0, 0, 1));
  EXPECT_LT((lm[0][-1] - via_head[0]).abs().max().item<float>(), 1e-5);
}

// A tiny model directory with a tokenizer trained on the task corpus.
std::string tiny_model_dir(const testing::TempDir& tmp, const std::vector<CallGraph>& corpus) {
  std::string text;
  Rng rng(1);
  for (int rep = 0; rep < 5; ++rep)
    for (const CallGraph& g : corpus) text += encode_recursive(g, {}, rng);
  text += "Predict a missing element in the following partial call graph.\n";
  text += "Predict a missing edge to connect the two layers.\nChild layer:\n[MISSING]\n";
  text += "### Question: ### Answer:\n";
  testing::write_file(tmp.file("t.txt"), text);
  TrainOptions o;
  o.vocab_size = 400;
  train_tokenizer(tmp.file("t.txt"), tmp.file("tok.model"), o);
  Tokenizer tok = Tokenizer::load(tmp.file("tok.model"));
  std::string dir = tmp.file("model");
  save_llama(init_llama(tiny_config(tok.vocab_size()), 5), dir);
  std::filesystem::copy_file(tmp.file("tok.model"), dir + "/tokenizer.model");
  return dir;
}

std::vector<CallGraph> task_corpus() {
  return load_corpus(std::string(TRACELM_SOURCE_DIR) + "/tests/data/tasks/corpus.jsonl");
}

TaskOptions small_options() {
  TaskOptions o;
  o.seed = 7;
  o.min_graphs = 3;
  o.rare_fraction = 0.2;
  return o;
}

TEST(TaskModel, ClassifierHeadTrainsSavesAndRunsOnNewRecords) {
  testing::TempDir tmp;
  std::vector<CallGraph> corpus = task_corpus();
  std::string model = tiny_model_dir(tmp, corpus);
  TaskSet set = make_tasks(TaskKind::kPredictLatency, corpus, small_options());
  TaskTrainOptions opt;
  opt.lr = 5e-2;
  opt.epochs = 20;
  opt.progress = false;
  std::string summary = train_classifier(set.records, model, opt, tmp.file("head"));
  EXPECT_NE(summary.find("frozen"), std::string::npos);
  ASSERT_TRUE(testing::exists(tmp.file("head/head.safetensors")));
  nlohmann::json head = nlohmann::json::parse(testing::read_file(tmp.file("head/head.json")));
  // Classifying the train records again gives the accuracy training reported.
  std::vector<const TaskRecord*> train = split_records(set.records, "train");
  std::vector<int> pred = classify(tmp.file("head"), train);
  ASSERT_EQ(pred.size(), train.size());
  TaskScore s = score_labels(train, pred);
  EXPECT_NEAR(s.accuracy(), head["train_accuracy"].get<double>(), 1e-9);
  EXPECT_EQ(head["model"].get<std::string>(), std::filesystem::absolute(model).string());
  // eval scores the head next to the frequency baseline.
  TaskEvalOptions eo;
  eo.models = {{"head", tmp.file("head")}};
  eo.progress = false;
  nlohmann::json res = evaluate_tasks(set.records, eo);
  ASSERT_EQ(res["results"].size(), 2u);
  EXPECT_EQ(res["results"][0]["name"], "head");
  EXPECT_EQ(res["results"][1]["name"], "frequency baseline");
  EXPECT_EQ(res["results"][0]["n"].get<int64_t>(),
            static_cast<int64_t>(split_records(set.records, "test").size()));
}

TEST(TaskModel, InfillFineTuningAndGreedyAnswers) {
  testing::TempDir tmp;
  std::vector<CallGraph> corpus = task_corpus();
  std::string model = tiny_model_dir(tmp, corpus);
  TaskOptions o = small_options();
  o.train_fraction = 0.5;
  TaskSet set = make_tasks(TaskKind::kInfillAttribute, corpus, o);
  TaskTrainOptions opt;
  opt.lr = 1e-2;
  opt.epochs = 3;
  opt.batch = 4;
  opt.full = true;
  opt.progress = false;
  std::string summary = finetune_infill(set.records, model, opt, tmp.file("ft"));
  EXPECT_NE(summary.find("fine-tuned"), std::string::npos) << summary;
  TaskTrainOptions scratch = opt;
  scratch.from_scratch = true;
  finetune_infill(set.records, model, scratch, tmp.file("ft0"));
  ASSERT_TRUE(testing::exists(tmp.file("ft0/init/config.json")));
  std::vector<const TaskRecord*> test = split_records(set.records, "test");
  ASSERT_FALSE(test.empty());
  std::vector<std::string> answers = infill_answers(tmp.file("ft"), test, 12);
  ASSERT_EQ(answers.size(), test.size());
  for (const std::string& a : answers) {  // decoding stops at the end of the first line
    size_t first = a.find_first_not_of(" \n");
    size_t nl = first == std::string::npos ? std::string::npos : a.find('\n', first);
    EXPECT_TRUE(nl == std::string::npos || nl + 1 == a.size()) << a;
  }
  TaskEvalOptions eo;
  eo.models = {{"tracelm", tmp.file("ft")}, {"scratch", tmp.file("ft0")}};
  eo.max_new_tokens = 12;
  eo.progress = false;
  nlohmann::json res = evaluate_tasks(set.records, eo);
  ASSERT_EQ(res["results"].size(), 3u);
  // The scores are those of the answers (greedy decoding is deterministic).
  EXPECT_EQ(res["results"][0]["correct"].get<int64_t>(), score_answers(test, answers).correct);
}

}  // namespace
}  // namespace tracelm
