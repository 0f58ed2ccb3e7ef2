// Tokenizer: the Llama-2 and stories260K SentencePiece models (real files in
// ../shared), training a small call-graph tokenizer, bad input, the CLI.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "io/input_error.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::run_tracelm;
using testing::shared_path;
using testing::TempDir;

const char* const kLlama2 = "models/llama2-tokenizer/tokenizer.model";
const char* const kStories = "models/stories260K/tokenizer.model";
const std::string kEdgeLine =
    "(source is USER,edge_id is 0,communication finishes at 8 milliseconds,type is http,"
    "destination is MS_63670,communication starts at 0 milliseconds)";

// The names in a directory, sorted, separated by spaces.
std::string list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : " ") + n;
  return out;
}

std::string escape_spaces(const std::string& s) {
  std::string out;
  for (char c : s) out += c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, c);
  return out;
}

TEST(TokenizerLlama2, IdsAndHelloWorld) {
  REQUIRE_SHARED(kLlama2);
  Tokenizer tok = Tokenizer::load(shared_path(kLlama2));
  EXPECT_EQ(tok.vocab_size(), 32000);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.unk_id(), 0);
  // The well-known Llama-2 result: BOS, then "▁Hello" "▁world" (dummy prefix).
  EXPECT_EQ(tok.encode("Hello world", true, false), (std::vector<int>{1, 15043, 3186}));
  EXPECT_EQ(tok.encode("Hello world", false, false), (std::vector<int>{15043, 3186}));
  EXPECT_EQ(tok.encode("Hello world", true, true), (std::vector<int>{1, 15043, 3186, 2}));
  EXPECT_EQ(tok.encode_pieces("Hello world"), (std::vector<std::string>{"▁Hello", "▁world"}));
  EXPECT_EQ(tok.decode({1, 15043, 3186, 2}), "Hello world");
  EXPECT_EQ(tok.piece(15043), "▁Hello");
  EXPECT_EQ(tok.piece_to_id("▁Hello"), 15043);
  EXPECT_EQ(tok.piece_to_id("<unk>"), 0);
  EXPECT_EQ(tok.piece_to_id("no such piece"), -1);
  EXPECT_EQ(tok.encode("", true, false), (std::vector<int>{1}));
  EXPECT_THROW(tok.decode({1, 32000}), std::out_of_range);
  EXPECT_THROW(tok.piece(-1), std::out_of_range);
}

TEST(TokenizerLlama2, RoundTripsCallGraphText) {
  REQUIRE_SHARED(kLlama2);
  Tokenizer tok = Tokenizer::load(shared_path(kLlama2));
  for (const std::string& s : {kEdgeLine, "<edges>\n" + kEdgeLine + "\n</edges>\n",
                               std::string("  two  spaces\t"), std::string("é€😀 ⁇ \x01")}) {
    EXPECT_EQ(tok.decode(tok.encode(s, true, true)), s);
  }
  // Llama splits digits: "8" after a space is "▁" then "8".
  std::vector<std::string> p = tok.encode_pieces("at 8 ms");
  EXPECT_EQ(p, (std::vector<std::string>{"▁at", "▁", "8", "▁ms"}));
}

TEST(TokenizerLlama2, PieceTexts) {
  REQUIRE_SHARED(kLlama2);
  Tokenizer tok = Tokenizer::load(shared_path(kLlama2));
  const std::vector<PieceText>& pt = tok.piece_texts();
  ASSERT_EQ(pt.size(), 32000u);
  EXPECT_EQ(pt[15043].kind, PieceText::Kind::kText);
  EXPECT_EQ(pt[15043].text, " Hello");
  EXPECT_EQ(pt[1].kind, PieceText::Kind::kControl);
  EXPECT_EQ(pt[1].text, "");
  EXPECT_EQ(pt[2].kind, PieceText::Kind::kControl);
  EXPECT_EQ(pt[0].kind, PieceText::Kind::kUnknown);
  EXPECT_EQ(pt[0].text, " \xe2\x81\x87 ");
  EXPECT_EQ(pt[13].kind, PieceText::Kind::kByte);  // <0x0A>
  EXPECT_EQ(pt[13].text, "\n");
  EXPECT_EQ(pt[3 + 0xF0].text, "\xF0");
  // Concatenated piece texts give the decoded text, except that decode drops
  // the dummy-prefix space of the first piece.
  std::vector<int> ids = tok.encode(kEdgeLine + "\nvalue é", true, true);
  std::string joined;
  for (int id : ids) joined += pt[id].text;
  EXPECT_EQ(joined, " " + tok.decode(ids));
}

TEST(TokenizerLlama2, ConcurrentUse) {
  REQUIRE_SHARED(kLlama2);
  const Tokenizer tok = Tokenizer::load(shared_path(kLlama2));
  const std::vector<int> want = tok.encode(kEdgeLine, true, false);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (tok.encode(kEdgeLine, true, false) != want || tok.decode(want) != kEdgeLine) ++bad;
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad, 0);
}

TEST(TokenizerStories260K, DecodesReferenceGreedyText) {
  REQUIRE_SHARED(kStories);
  REQUIRE_SHARED("models/stories260K/reference.json");
  Tokenizer tok = Tokenizer::load(shared_path(kStories));
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  auto ref =
      nlohmann::json::parse(testing::read_file(shared_path("models/stories260K/reference.json")));
  std::vector<int> greedy = ref["greedy_ids_after_bos"].get<std::vector<int>>();
  ASSERT_GE(greedy.size(), 8u);
  std::vector<int> first(greedy.begin(), greedy.begin() + 8);
  EXPECT_EQ(tok.decode(first).rfind("Once upon a time", 0), 0u) << tok.decode(first);
  std::vector<int> all = {1};
  all.insert(all.end(), greedy.begin(), greedy.end());
  EXPECT_EQ(tok.decode(all), ref["text"].get<std::string>());
}

// A few hundred lines shaped like tracelm's call-graph text.
std::string call_graph_text(int records, uint32_t seed) {
  std::mt19937 rng(seed);
  auto num = [&](int hi) { return std::to_string(std::uniform_int_distribution<int>(0, hi)(rng)); };
  const char* types[] = {"http", "rpc", "mc", "db"};
  std::string out;
  for (int r = 0; r < records; ++r) {
    int edges = 1 + static_cast<int>(rng() % 5);
    out += "[GENERATE GRAPH] ### Question: a call graph of service S_" + num(500) + " with " +
           std::to_string(edges) + " edges ### Answer:\n<edges>\n";
    for (int e = 0; e < edges; ++e) {
      out += "(source is " + (e == 0 ? std::string("USER") : "MS_" + num(99999)) + ",edge_id is " +
             std::to_string(e) + ",communication finishes at " + num(3000) +
             " milliseconds,type is " + types[rng() % 4] + ",destination is MS_" + num(99999) +
             ",communication starts at " + num(100) + " milliseconds)\n";
    }
    out += "</edges>\n<layer> <split> MS_" + num(99999) + " </split> </layer>\n";
    out += "<subgraph of edge_id " + num(edges) + "> </subgraph>\n\n";
  }
  return out;
}

TEST(TokenizerTrain, SmallCallGraphTokenizer) {
  TempDir tmp;
  std::string text = call_graph_text(80, 7);
  testing::write_file(tmp.file("text.txt"), text);
  TrainOptions opt;
  // Near the smallest workable size: 3 specials + 17 symbols + 256 bytes +
  // the ~45 characters of the text leave a few dozen merges.
  opt.vocab_size = 384;
  opt.threads = 1;
  auto t0 = std::chrono::steady_clock::now();
  train_tokenizer(tmp.file("text.txt"), tmp.file("tok.model"), opt);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 10.0);
  ASSERT_TRUE(testing::exists(tmp.file("tok.model")));
  EXPECT_TRUE(testing::exists(tmp.file("tok.vocab")));
  // Only the outputs are left (the temporary files were renamed or removed).
  EXPECT_EQ(list_dir(tmp.path()), "text.txt tok.model tok.vocab");

  Tokenizer tok = Tokenizer::load(tmp.file("tok.model"));
  EXPECT_EQ(tok.vocab_size(), 384);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);

  // Every structure symbol is one token, wherever it occurs.
  for (const std::string& s : default_structure_symbols()) {
    int id = tok.piece_to_id(escape_spaces(s));
    ASSERT_GE(id, 3) << s;
    EXPECT_EQ(tok.piece_texts()[id].text, s);
    std::vector<int> ids = tok.encode("x" + s + "9", false, false);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), id), 1) << s;
    EXPECT_EQ(tok.decode(ids), "x" + s + "9");
  }
  // Digits are single tokens: "12345" is "▁" (dummy prefix) then 5 digits.
  std::vector<std::string> p = tok.encode_pieces("12345");
  EXPECT_EQ(p, (std::vector<std::string>{"▁", "1", "2", "3", "4", "5"}));
  p = tok.encode_pieces("destination is MS_63670,");
  ASSERT_GE(p.size(), 7u);
  EXPECT_EQ(std::vector<std::string>(p.end() - 7, p.end()),
            (std::vector<std::string>{"▁MS_", "6", "3", "6", "7", "0", ","}));

  // Round trips are exact: lines, whole records (newlines are byte pieces),
  // characters never seen in training (byte fallback), repeated spaces.
  for (const std::string& s :
       {kEdgeLine, text.substr(0, 2000), std::string("é😀  x\t"), std::string(" lead")}) {
    EXPECT_EQ(tok.decode(tok.encode(s, true, true)), s);
  }
  EXPECT_EQ(tok.encode_pieces("\n"), (std::vector<std::string>{"▁", "<0x0A>"}));

  // The vocabulary size is an upper bound: this text fills fewer pieces.
  opt.vocab_size = 20000;
  train_tokenizer(tmp.file("text.txt"), tmp.file("big.model"), opt);
  int filled = Tokenizer::load(tmp.file("big.model")).vocab_size();
  EXPECT_GT(filled, 384);
  EXPECT_LT(filled, 2000);
  opt.vocab_size = 384;

  // Same text, options and seed: the same model, byte for byte.
  train_tokenizer(tmp.file("text.txt"), tmp.file("again.model"), opt);
  EXPECT_EQ(testing::read_file(tmp.file("again.model")), testing::read_file(tmp.file("tok.model")));
}

TEST(TokenizerTrain, RealCallGraphText) {
  const char* const kRecursive = "data/tracellm-text/recursive-train.txt";
  REQUIRE_SHARED(kRecursive);
  TempDir tmp;
  TrainOptions opt;  // the defaults: BPE, at most 2048 pieces
  opt.threads = 1;
  train_tokenizer(shared_path(kRecursive), tmp.file("tok.model"), opt);
  Tokenizer tok = Tokenizer::load(tmp.file("tok.model"));
  // Call-graph text cannot fill 2048 pieces (few distinct words, split
  // digits): this file fills 784.
  EXPECT_GT(tok.vocab_size(), 500);
  EXPECT_LT(tok.vocab_size(), 2048);
  std::string text = testing::read_file(shared_path(kRecursive));
  std::vector<int> ids = tok.encode(text, true, true);
  EXPECT_EQ(tok.decode(ids), text);
  for (const char* s : {"[GENERATE GRAPH]", "<layer>", "</layer>", "<edges>", "</edges>", "<split>",
                        "</split>", "<subgraph of edge_id", "</subgraph>", " MS_", "USER"}) {
    int id = tok.piece_to_id(escape_spaces(s));
    ASSERT_GE(id, 0) << s;
    EXPECT_GE(std::count(ids.begin(), ids.end(), id), 10) << s;  // 10 splits, 459 graphs
  }
  if (testing::exists(shared_path(kLlama2))) {
    // About half of Llama-2's count (131,568 vs 249,799 tokens).
    size_t llama = Tokenizer::load(shared_path(kLlama2)).encode(text, true, true).size();
    EXPECT_LT(ids.size(), llama * 6 / 10) << ids.size() << " tokens vs Llama-2's " << llama;
  }
}

TEST(TokenizerTrain, UnigramAndSampling) {
  TempDir tmp;
  testing::write_file(tmp.file("text.txt"), call_graph_text(80, 8));
  TrainOptions opt;
  opt.vocab_size = 330;
  opt.model_type = TokenizerModelType::kUnigram;
  opt.max_sentences = 200;
  opt.threads = 1;
  train_tokenizer(tmp.file("text.txt"), tmp.file("uni"), opt);  // no .model suffix
  EXPECT_TRUE(testing::exists(tmp.file("uni.vocab")));
  Tokenizer tok = Tokenizer::load(tmp.file("uni"));
  EXPECT_EQ(tok.vocab_size(), 330);
  EXPECT_EQ(tok.decode(tok.encode(kEdgeLine, true, false)), kEdgeLine);
  EXPECT_EQ(tok.encode_pieces("707"), (std::vector<std::string>{"▁", "7", "0", "7"}));
}

TEST(TokenizerTrain, SamplesLinesWithTheSeed) {
  // 1000 lines, each of its own character: the characters in the model are
  // those of the sampled lines.
  TempDir tmp;
  std::string text;
  for (char32_t c = 0x4E00; c < 0x4E00 + 1000; ++c) {
    std::string u = {static_cast<char>(0xE0 | (c >> 12)),
                     static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                     static_cast<char>(0x80 | (c & 0x3F))};
    text += u + u + "\n";
  }
  testing::write_file(tmp.file("text.txt"), text);
  TrainOptions opt;
  opt.vocab_size = 400;
  opt.user_symbols = {};
  opt.max_sentences = 120;
  opt.threads = 1;
  auto chars = [](const std::string& model) {
    Tokenizer tok = Tokenizer::load(model);
    std::set<std::string> out;
    for (const PieceText& p : tok.piece_texts())
      if (p.kind == PieceText::Kind::kText && p.text.size() == 3 && p.text[0] != ' ')
        out.insert(p.text);
    return out;
  };
  train_tokenizer(tmp.file("text.txt"), tmp.file("a.model"), opt);
  train_tokenizer(tmp.file("text.txt"), tmp.file("b.model"), opt);
  opt.seed = 2;
  train_tokenizer(tmp.file("text.txt"), tmp.file("c.model"), opt);
  EXPECT_EQ(testing::read_file(tmp.file("a.model")), testing::read_file(tmp.file("b.model")));
  EXPECT_EQ(chars(tmp.file("a.model")).size(), 120u);
  EXPECT_EQ(chars(tmp.file("c.model")).size(), 120u);
  EXPECT_NE(chars(tmp.file("a.model")), chars(tmp.file("c.model")));
}

TEST(TokenizerErrors, BadFilesAreInputErrors) {
  TempDir tmp;
  auto expect_input_error = [](auto&& f, const std::string& file, const std::string& what) {
    try {
      f();
      ADD_FAILURE() << "no InputError for " << file;
    } catch (const InputError& e) {
      EXPECT_EQ(e.file(), file);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  std::string missing = tmp.file("missing.model");
  expect_input_error([&] { Tokenizer::load(missing); }, missing, "No such file");
  expect_input_error([&] { Tokenizer::load(tmp.path()); }, tmp.path(), "not a file");
  testing::write_file(tmp.file("junk.model"), "this is not a model\n");
  expect_input_error([&] { Tokenizer::load(tmp.file("junk.model")); }, tmp.file("junk.model"),
                     "not a SentencePiece model");
  testing::write_file(tmp.file("empty.model"), "");
  expect_input_error([&] { Tokenizer::load(tmp.file("empty.model")); }, tmp.file("empty.model"),
                     "not a SentencePiece model");

  std::string out = tmp.file("tok.model");
  expect_input_error([&] { train_tokenizer(tmp.file("none.txt"), out); }, tmp.file("none.txt"),
                     "No such file");
  testing::write_file(tmp.file("empty.txt"), "");
  expect_input_error([&] { train_tokenizer(tmp.file("empty.txt"), out); }, tmp.file("empty.txt"),
                     "empty");
  testing::write_file(tmp.file("blank.txt"), "\n\r\n\n");
  expect_input_error([&] { train_tokenizer(tmp.file("blank.txt"), out); }, tmp.file("blank.txt"),
                     "every line is empty");
  testing::write_file(tmp.file("text.txt"), call_graph_text(20, 9));
  TrainOptions opt;
  opt.vocab_size = 100;
  expect_input_error([&] { train_tokenizer(tmp.file("text.txt"), out, opt); }, tmp.file("text.txt"),
                     "Vocabulary size is smaller");
  EXPECT_FALSE(testing::exists(out));
  EXPECT_THROW(train_tokenizer(tmp.file("text.txt"), tmp.file("no/such/dir/tok.model")),
               std::runtime_error);
  opt.vocab_size = 400;
  opt.max_sentence_length = 5;
  expect_input_error([&] { train_tokenizer(tmp.file("text.txt"), out, opt); }, tmp.file("text.txt"),
                     "longer than 5 bytes");
  opt.max_sentence_length = 16384;
  opt.user_symbols = {"<a>", "x,y"};
  EXPECT_THROW(train_tokenizer(tmp.file("text.txt"), out, opt), std::invalid_argument);
  opt.user_symbols = {" MS_", "\xe2\x96\x81MS_"};
  EXPECT_THROW(train_tokenizer(tmp.file("text.txt"), out, opt), std::invalid_argument);
  // Only the inputs are left behind.
  EXPECT_EQ(list_dir(tmp.path()), "blank.txt empty.model empty.txt junk.model text.txt");
}

TEST(TokenizerCli, TrainEncodeDecode) {
  TempDir tmp;
  testing::write_file(tmp.file("text.txt"), call_graph_text(80, 10));
  auto r = run_tracelm("tokenizer train " + tmp.file("text.txt") + " -o " + tmp.file("tok.model") +
                       " --vocab 400 --model-type bpe --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("400 pieces"), std::string::npos) << r.out;

  r = run_tracelm("tokenizer encode --model " + tmp.file("tok.model") +
                  " --bos --eos --text 'is USER,edge_id is 12'");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  std::vector<int> ids = j["ids"].get<std::vector<int>>();
  std::vector<std::string> pieces = j["pieces"].get<std::vector<std::string>>();
  EXPECT_EQ(j["count"], ids.size());
  ASSERT_EQ(pieces.size(), ids.size());
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(pieces.front(), "<s>");
  EXPECT_NE(std::find(pieces.begin(), pieces.end(), "▁USER"), pieces.end());

  std::string list;
  for (int id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  r = run_tracelm("tokenizer decode --model " + tmp.file("tok.model") + " --ids " + list);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "is USER,edge_id is 12\n");

  testing::write_file(tmp.file("in.txt"), "<edges>\n" + kEdgeLine + "\n");
  r = run_tracelm("tokenizer encode --model " + tmp.file("tok.model") + " --file " +
                  tmp.file("in.txt"));
  ASSERT_EQ(r.status, 0) << r.out;
  j = nlohmann::json::parse(r.out);
  r = run_tracelm("tokenizer decode --model " + tmp.file("tok.model") + " --ids '" +
                  j["ids"].dump() + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "<edges>\n" + kEdgeLine + "\n\n");

  // Bad input: exit 2 with the file named.
  r = run_tracelm("tokenizer encode --model " + tmp.file("nope.model") + " --text hi");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("nope.model"), std::string::npos) << r.out;
  r = run_tracelm("tokenizer decode --model " + tmp.file("tok.model") + " --ids 1,400");
  EXPECT_EQ(r.status, 2) << r.out;
  r = run_tracelm("tokenizer decode --model " + tmp.file("tok.model") + " --ids 1,x");
  EXPECT_EQ(r.status, 2) << r.out;
  r = run_tracelm("tokenizer train " + tmp.file("missing.txt") + " -o " + tmp.file("t.model"));
  EXPECT_EQ(r.status, 2) << r.out;
  r = run_tracelm("tokenizer encode --model " + tmp.file("tok.model"));
  EXPECT_NE(r.status, 0) << r.out;
}

TEST(TokenizerCli, Llama2Encode) {
  REQUIRE_SHARED(kLlama2);
  auto r = run_tracelm("tokenizer encode --model " + shared_path(kLlama2) +
                       " --bos --text 'Hello world'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out,
            "{\"ids\":[1,15043,3186],\"pieces\":[\"<s>\",\"▁Hello\",\"▁world\"],\"count\":3}\n");
}

}  // namespace
}  // namespace tracelm
