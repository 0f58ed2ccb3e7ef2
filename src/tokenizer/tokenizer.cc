#include "tokenizer/tokenizer.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "io/atomic_file.h"
#include "io/input_error.h"
#include "tokenizer/spm_backend.h"
#include "util/path.h"

namespace tracelm {

namespace {

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";  // U+2581 "▁"

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// "<0x0A>" -> '\n'; -1 when `piece` is not of that form.
int parse_byte_piece(const std::string& piece) {
  if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
  char* end = nullptr;
  long v = std::strtol(piece.c_str() + 3, &end, 16);
  if (end != piece.c_str() + 5 || v < 0 || v > 255) return -1;
  return static_cast<int>(v);
}

// Reads the next line of `in` into *line without its "\n" or "\r\n".
bool next_line(std::istream& in, std::string* line) {
  if (!std::getline(in, *line)) return false;
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

bool usable(const std::string& line, size_t max_len) {
  return !line.empty() && line.size() <= max_len;
}

// The training sentences: a uniform sample of `k` of the `n` usable lines of
// a file (non-empty, at most max_len bytes), in file order, chosen with a
// seeded generator (Knuth's selection sampling: one pass, O(1) memory).
// SentencePiece's own sampling (input_sentence_size) ignores any seed in
// 0.1.97, so tracelm samples here and SentencePiece takes every line given.
class SampledLines {
 public:
  SampledLines(std::istream& in, uint64_t n, uint64_t k, size_t max_len, uint32_t seed)
      : in_(in), left_(n), want_(std::min(k, n)), max_len_(max_len), rng_(seed) {}
  // The next sampled line; false at the end.
  bool next(std::string* out) {
    while (want_ > 0 && next_line(in_, &line_)) {
      if (!usable(line_, max_len_)) continue;
      // Keep this line with probability want_ / left_.
      bool keep = std::uniform_int_distribution<uint64_t>(0, left_ - 1)(rng_) < want_;
      --left_;
      if (keep) {
        --want_;
        *out = line_;
        return true;
      }
    }
    return false;
  }
  bool bad() const { return in_.bad(); }

 private:
  std::istream& in_;
  std::string line_;
  uint64_t left_, want_;  // usable lines not yet seen; lines still to choose
  size_t max_len_;
  std::mt19937_64 rng_;
};

void check_options(const TrainOptions& opt) {
  if (opt.vocab_size < 1) throw std::invalid_argument("vocab_size must be positive");
  if (opt.threads < 0) throw std::invalid_argument("threads must be >= 0");
  if (opt.max_piece_length < 1) throw std::invalid_argument("max_piece_length must be positive");
  if (opt.max_sentence_length < 1)
    throw std::invalid_argument("max_sentence_length must be positive");
  if (opt.seed == static_cast<uint32_t>(-1))
    throw std::invalid_argument("seed 4294967295 is reserved by SentencePiece");
  std::unordered_set<std::string> seen;
  for (const std::string& s : opt.user_symbols) {
    if (s.empty()) throw std::invalid_argument("empty user symbol");
    if (s.find_first_of(std::string_view(",\n\r\0", 4)) != std::string::npos)
      throw std::invalid_argument("user symbol '" + s + "' contains ',', a newline or NUL");
    // Spaces are stored as "▁", so " MS_" and "▁MS_" are the same symbol.
    if (!seen.insert(replace_all(s, " ", kSpaceSymbol)).second)
      throw std::invalid_argument("user symbol '" + s + "' listed twice");
  }
}

}  // namespace

// ---------------------------------------------------------------- Tokenizer

// ------------------------------------------------------------ the plugin

std::unique_ptr<SpmBackend> make_spm_backend() {
  using Create = SpmBackend* (*)();
  static Create create = [] {
    std::vector<std::string> tried;
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("TRACELM_SPM_PLUGIN")) candidates.emplace_back(env);
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
      std::string dir(exe, static_cast<size_t>(n));
      dir = dir.substr(0, dir.rfind('/'));
      candidates.push_back(dir + "/libtracelm_spm.so");
      candidates.push_back(dir + "/../lib/tracelm/libtracelm_spm.so");
    }
#ifdef TRACELM_SPM_PLUGIN_PATH
    candidates.emplace_back(TRACELM_SPM_PLUGIN_PATH);
#endif
    candidates.emplace_back("libtracelm_spm.so");
    for (const std::string& c : candidates) {
      void* h = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!h) {
        const char* e = ::dlerror();
        tried.push_back(c + " (" + (e ? e : "?") + ")");
        continue;
      }
      if (auto f = reinterpret_cast<Create>(::dlsym(h, "tracelm_spm_backend_create"))) return f;
      tried.push_back(c + " (no tracelm_spm_backend_create)");
    }
    std::string msg = "cannot load the SentencePiece plugin libtracelm_spm.so; tried:";
    for (const std::string& t : tried) msg += "\n  " + t;
    throw std::runtime_error(msg);
  }();
  return std::unique_ptr<SpmBackend>(create());
}

Tokenizer::Tokenizer() : sp_(make_spm_backend()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw InputError(path, 0, std::string("cannot open tokenizer model: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw InputError(path, 0, "not a file (expected a SentencePiece .model file)");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw InputError(path, 0, std::string("cannot open tokenizer model: ") + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw InputError(path, 0, "cannot read tokenizer model");
  Tokenizer t;
  t.path_ = path;
  std::string s = t.sp_->load_serialized(buf.str());
  if (!s.empty()) throw InputError(path, 0, "not a SentencePiece model (" + s + ")");
  int n = t.sp_->piece_size();
  if (n <= 0) throw InputError(path, 0, "SentencePiece model has no pieces");

  t.piece_texts_.resize(n);
  for (int id = 0; id < n; ++id) {
    PieceText& p = t.piece_texts_[id];
    const std::string& piece = t.sp_->id_to_piece(id);
    int byte = t.sp_->is_byte(id) ? parse_byte_piece(piece) : -1;
    if (t.sp_->is_control(id)) {
      p.kind = PieceText::Kind::kControl;
    } else if (t.sp_->is_unknown(id)) {
      p.kind = PieceText::Kind::kUnknown;
      // The model's unk surface, as decode writes it (" ⁇ " by default).
      if (!t.sp_->decode(std::vector<int>{id}, &p.text).empty()) p.text.clear();
    } else if (byte >= 0) {
      p.kind = PieceText::Kind::kByte;
      p.text = std::string(1, static_cast<char>(byte));
    } else {
      p.kind = t.sp_->is_unused(id) ? PieceText::Kind::kUnused : PieceText::Kind::kText;
      p.text = replace_all(piece, kSpaceSymbol, " ");
    }
  }
  return t;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  if (bos && bos_id() < 0) throw std::logic_error(path_ + ": the model has no BOS piece");
  if (eos && eos_id() < 0) throw std::logic_error(path_ + ": the model has no EOS piece");
  std::vector<int> ids;
  std::string s = sp_->encode_ids(text, &ids);
  if (!s.empty()) throw std::runtime_error(path_ + ": encode failed: " + s);
  if (bos) ids.insert(ids.begin(), bos_id());
  if (eos) ids.push_back(eos_id());
  return ids;
}

std::vector<std::string> Tokenizer::encode_pieces(std::string_view text) const {
  std::vector<std::string> pieces;
  std::string s = sp_->encode_pieces(text, &pieces);
  if (!s.empty()) throw std::runtime_error(path_ + ": encode failed: " + s);
  return pieces;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  for (int id : ids) check_id(id);
  std::string text;
  std::string s = sp_->decode(ids, &text);
  if (!s.empty()) throw std::runtime_error(path_ + ": decode failed: " + s);
  return text;
}

int Tokenizer::vocab_size() const { return sp_->piece_size(); }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }
int Tokenizer::pad_id() const { return sp_->pad_id(); }
int Tokenizer::unk_id() const { return sp_->unk_id(); }

const std::string& Tokenizer::piece(int id) const {
  check_id(id);
  return sp_->id_to_piece(id);
}

int Tokenizer::piece_to_id(std::string_view piece) const {
  int id = sp_->piece_to_id(piece);
  // SentencePiece answers unk_id() for a piece it does not know.
  if (id < 0 || id >= vocab_size() || (id == unk_id() && sp_->id_to_piece(id) != piece)) return -1;
  return id;
}

void Tokenizer::check_id(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary of " +
                            path_ + " (0.." + std::to_string(vocab_size() - 1) + ")");
}

// ----------------------------------------------------------------- Training

std::vector<std::string> default_structure_symbols() {
  return {
      "[GENERATE GRAPH]",
      "### Question:",
      "### Answer:",
      "<edges>",
      "</edges>",
      "<layer>",
      "</layer>",
      "<split>",
      "</split>",
      // Opens "<subgraph of edge_id N>"; its number and ">" follow as tokens.
      "<subgraph of edge_id",
      "</subgraph>",
      // Name prefixes (the digits that follow are single-digit tokens).
      " MS_",
      "MS_",
      " S_",
      "S_",
      " USER",
      "USER",
  };
}

std::string vocab_path_for(const std::string& model_out) {
  const std::string ext = ".model";
  if (model_out.size() > ext.size() &&
      model_out.compare(model_out.size() - ext.size(), ext.size(), ext) == 0)
    return model_out.substr(0, model_out.size() - ext.size()) + ".vocab";
  return model_out + ".vocab";
}

void train_tokenizer(const std::string& text_file, const std::string& model_out,
                     const TrainOptions& opt) {
  check_options(opt);
  struct stat st {};
  if (::stat(text_file.c_str(), &st) != 0)
    throw InputError(text_file, 0, std::string("cannot open: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw InputError(text_file, 0, "not a regular file");
  if (st.st_size == 0) throw InputError(text_file, 0, "empty: no text to train a tokenizer on");
  std::ifstream in(text_file, std::ios::binary);
  if (!in) throw InputError(text_file, 0, std::string("cannot open: ") + std::strerror(errno));

  // Fail before training (which may take long) when the output cannot be written.
  std::string dir = dir_of(model_out);
  struct stat dst {};
  if (base_of(model_out).empty() || ::stat(dir.c_str(), &dst) != 0 || !S_ISDIR(dst.st_mode))
    throw std::runtime_error("cannot write " + model_out + ": no such directory " + dir);

  // First pass: count the usable lines, so that the sample is uniform.
  uint64_t usable_lines = 0;
  for (std::string line; next_line(in, &line);)
    usable_lines += usable(line, static_cast<size_t>(opt.max_sentence_length));
  if (in.bad()) throw InputError(text_file, 0, "read error");
  if (usable_lines == 0)
    throw InputError(text_file, 0,
                     "no text: every line is empty or longer than " +
                         std::to_string(opt.max_sentence_length) + " bytes");

  std::string symbols;
  for (const std::string& s : opt.user_symbols) {
    if (!symbols.empty()) symbols += ',';
    // SentencePiece matches user symbols against the normalized text, in
    // which spaces are already "▁": a symbol with a plain space never matches.
    symbols += replace_all(s, " ", kSpaceSymbol);
  }
  int threads = opt.threads > 0
                    ? opt.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // No model_prefix: SentencePiece returns the model instead of writing it,
  // and the model records no file name (same text and options, same bytes).
  std::unordered_map<std::string, std::string> args = {
      {"model_type", opt.model_type == TokenizerModelType::kUnigram ? "unigram" : "bpe"},
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"hard_vocab_limit", "false"},  // an upper bound (see TrainOptions)
      {"split_digits", opt.split_digits ? "true" : "false"},
      {"split_by_unicode_script", opt.split_by_script ? "true" : "false"},
      {"max_sentencepiece_length", std::to_string(opt.max_piece_length)},
      {"byte_fallback", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"character_coverage", "1.0"},
      {"input_sentence_size", "0"},  // sampled above
      {"max_sentence_length", std::to_string(opt.max_sentence_length)},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", opt.add_dummy_prefix ? "true" : "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", opt.verbose ? "0" : "2"},  // 2: errors only
  };
  if (!symbols.empty()) args["user_defined_symbols"] = symbols;

  std::ifstream again(text_file, std::ios::binary);
  SampledLines lines(again, usable_lines, opt.max_sentences ? opt.max_sentences : usable_lines,
                     static_cast<size_t>(opt.max_sentence_length), opt.seed);
  std::string model;
  std::unique_ptr<SpmBackend> sp = make_spm_backend();
  // The seed also drives any randomness inside the trainers.
  std::string s = sp->train(
      args, opt.seed, [&](std::string* l) { return lines.next(l); }, &model);
  if (lines.bad()) throw InputError(text_file, 0, "read error");
  if (!s.empty()) throw InputError(text_file, 0, "SentencePiece training failed: " + s);
  s = sp->load_serialized(model);
  if (!s.empty()) throw std::runtime_error("trained model does not load: " + s);
  // The .vocab listing, as SentencePiece writes it: piece TAB score.
  std::ostringstream vocab;
  for (int id = 0; id < sp->piece_size(); ++id)
    vocab << sp->id_to_piece(id) << '\t' << sp->score(id) << '\n';
  write_file_atomically(vocab_path_for(model_out), vocab.str());
  write_file_atomically(model_out, model);
}

}  // namespace tracelm
