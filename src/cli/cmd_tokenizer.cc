// Tokenizer subcommands: tokenizer train, tokenizer encode, tokenizer decode.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "io/input_error.h"
#include "tokenizer/tokenizer.h"

namespace tracelm::cli {

namespace {

std::string read_text(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, 0, "cannot open");
  ss << f.rdbuf();
  if (f.bad()) throw InputError(path, 0, "read error");
  return ss.str();
}

// "1,2,3", "1 2 3" or "[1, 2, 3]" -> ids, each checked against the vocabulary.
std::vector<int> parse_ids(const std::string& s, const Tokenizer& tok) {
  std::vector<int> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(cur, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cur.size() || v < 0)
      throw InputError("--ids", 0, "'" + cur + "' is not a token id");
    if (v >= tok.vocab_size())
      throw InputError("--ids", 0,
                       "token id " + cur + " is outside the vocabulary of " + tok.path() + " (0.." +
                           std::to_string(tok.vocab_size() - 1) + ")");
    ids.push_back(static_cast<int>(v));
    cur.clear();
  };
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '[' || c == ']') {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  return ids;
}

void add_tokenizer_train(CLI::App& parent) {
  struct Opts {
    std::string text, output, model_type = "bpe";
    TrainOptions train;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = parent.add_subcommand(
      "train",
      "train a SentencePiece tokenizer on a text file (each line is a sentence); writes "
      "MODEL and its .vocab listing");
  c->add_option("text", o->text, "training text (UTF-8, one sentence per line)")->required();
  c->add_option("-o,--output", o->output, "model file to write, e.g. tok.model")->required();
  c->add_option("--vocab", o->train.vocab_size,
                "vocabulary size (at most), counting specials, structure symbols and 256 byte "
                "pieces")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  c->add_option("--model-type", o->model_type, "SentencePiece model type")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  c->add_option("--max-sentences", o->train.max_sentences,
                "lines sampled from the text (0 = all of them)")
      ->capture_default_str();
  c->add_option("--threads", o->train.threads, "training threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--seed", o->train.seed, "seed of the line sampling")->capture_default_str();
  c->add_flag("-v,--verbose", o->train.verbose, "show SentencePiece's training log");
  c->callback([o] {
    o->train.model_type =
        o->model_type == "unigram" ? TokenizerModelType::kUnigram : TokenizerModelType::kBpe;
    auto t0 = std::chrono::steady_clock::now();
    train_tokenizer(o->text, o->output, o->train);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Tokenizer tok = Tokenizer::load(o->output);
    std::fprintf(stderr, "wrote %s and %s: %s, %d pieces (%.1f s)\n", o->output.c_str(),
                 vocab_path_for(o->output).c_str(), o->model_type.c_str(), tok.vocab_size(), secs);
    if (tok.vocab_size() < o->train.vocab_size)
      std::fprintf(stderr, "note: the text filled %d of the %d pieces asked for\n",
                   tok.vocab_size(), o->train.vocab_size);
  });
}

void add_tokenizer_encode(CLI::App& parent) {
  struct Opts {
    std::string model, text, file;
    bool bos = false, eos = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c = parent.add_subcommand(
      "encode", "print the token ids and pieces of a text as JSON {\"ids\",\"pieces\",\"count\"}");
  c->add_option("-m,--model", o->model, "SentencePiece .model file")->required();
  c->add_flag("--bos", o->bos, "prepend BOS (id 1 for Llama)");
  c->add_flag("--eos", o->eos, "append EOS (id 2 for Llama)");
  CLI::Option* text = c->add_option("--text", o->text, "the text to encode");
  CLI::Option* file =
      c->add_option("--file", o->file, "encode this file's whole content ('-' = stdin)");
  text->excludes(file);
  c->callback([o, text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::RequiredError("--text or --file");
    Tokenizer tok = Tokenizer::load(o->model);
    std::string input = text->count() ? o->text : read_text(o->file);
    std::vector<int> ids = tok.encode(input, o->bos, o->eos);
    nlohmann::ordered_json j;
    j["ids"] = ids;
    nlohmann::ordered_json pieces = nlohmann::ordered_json::array();
    for (int id : ids) pieces.push_back(tok.piece(id));
    j["pieces"] = pieces;
    j["count"] = ids.size();
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  });
}

void add_tokenizer_decode(CLI::App& parent) {
  struct Opts {
    std::string model, ids;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* c =
      parent.add_subcommand("decode", "print the text of token ids (BOS, EOS and pad are skipped)");
  c->add_option("-m,--model", o->model, "SentencePiece .model file")->required();
  c->add_option("--ids", o->ids, "token ids: 1,2,3 (or \"[1, 2, 3]\" as encode prints)")
      ->required();
  c->callback([o] {
    Tokenizer tok = Tokenizer::load(o->model);
    std::string text = tok.decode(parse_ids(o->ids, tok));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  });
}

}  // namespace

void add_tokenizer(CLI::App& app) {
  CLI::App* c = app.add_subcommand("tokenizer",
                                   "SentencePiece tokenizers: train one on text, encode, decode");
  c->require_subcommand(1);
  add_tokenizer_train(*c);
  add_tokenizer_encode(*c);
  add_tokenizer_decode(*c);
}

}  // namespace tracelm::cli
