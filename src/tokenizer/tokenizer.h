// Tokenizer: text <-> token ids with a SentencePiece model (docs/tokenizer.md).
//
// Contract:
//  - A thin layer over SentencePiece: the model file is used as it is (its
//    normalization and dummy-prefix settings included). With the Llama-2
//    tokenizer, encode("Hello world", bos=true, eos=false) == {1, 15043, 3186}.
//  - BOS and EOS are added the way Llama models were trained: the BOS id
//    prepended when `bos`, the EOS id appended only when `eos`. decode()
//    skips control pieces (BOS, EOS, pad), so decode(encode(x, b, e)) == x
//    for any x the model can represent (all of UTF-8 with byte fallback, when
//    the normalization is the identity and extra whitespace is kept — true
//    of Llama's tokenizer and of those train_tokenizer() writes).
//  - load() throws InputError naming the file when it is missing, unreadable
//    or not a SentencePiece model. Ids outside [0, vocab_size()) given to
//    decode() or piece() throw std::out_of_range.
//  - Ownership: a Tokenizer owns its model; it is movable, not copyable (a
//    moved-from Tokenizer may only be assigned to or destroyed).
//  - Thread-safety: a loaded Tokenizer is immutable; its const methods may be
//    called from many threads at once.
//  - train_tokenizer() writes a new model (and its .vocab listing) atomically.
//    It sets SentencePiece's process-wide log level and random seed, so at
//    most one training may run at a time in a process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tracelm {

class SpmBackend;  // tokenizer/spm_backend.h

// What one piece adds to decoded text: for constrained decoding, which must
// check a candidate token's text cheaply without calling decode().
struct PieceText {
  enum class Kind : uint8_t {
    kText,     // a normal or user-defined piece: `text` is exact
    kByte,     // byte-fallback piece <0xNN>: `text` is that one raw byte
    kControl,  // BOS, EOS, pad: `text` is empty (decode skips them)
    kUnknown,  // <unk>: `text` is what decode writes for it (" ⁇ ")
    kUnused,   // never produced by encode(); `text` as for kText
  };
  Kind kind = Kind::kText;
  std::string text;
};

class Tokenizer {
 public:
  // Loads a SentencePiece .model file. Throws InputError naming the file.
  static Tokenizer load(const std::string& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text`; `bos` prepends bos_id(), `eos` appends eos_id()
  // (std::logic_error if the model has no such piece).
  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;
  // The pieces encode() chooses (no BOS/EOS), e.g. {"▁Hello", "▁world"}.
  std::vector<std::string> encode_pieces(std::string_view text) const;
  // Text of `ids`; control ids (BOS, EOS, pad) are skipped. Byte pieces are
  // joined into UTF-8 (an invalid sequence becomes U+FFFD, as in SentencePiece).
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const;
  int bos_id() const;  // 1 for Llama and for trained models; -1 when absent
  int eos_id() const;  // 2 for Llama and for trained models; -1 when absent
  int pad_id() const;  // -1 for Llama and for trained models (no pad piece)
  int unk_id() const;  // 0 for Llama and for trained models

  // The piece of `id` as stored in the model ("▁Hello", "<0x0A>", "<s>").
  const std::string& piece(int id) const;
  // The id of a piece as stored ("▁Hello"), or -1 when the model has none.
  int piece_to_id(std::string_view piece) const;

  // For every id, the exact text the piece adds to decoded output when it
  // follows other text: "▁" becomes ' ' ("▁Hello" -> " Hello"), a byte piece
  // <0xNN> is one raw byte (kind kByte; a run of byte pieces decodes to those
  // bytes when they form valid UTF-8), control pieces add nothing. One
  // exception, at the very start of decoded output: when the model adds a
  // dummy prefix (Llama's does), decode drops the leading space of the first
  // text piece (decode({1, 15043}) == "Hello", not " Hello").
  // Computed once at load; indexed by id (size vocab_size()).
  const std::vector<PieceText>& piece_texts() const { return piece_texts_; }

  const std::string& path() const { return path_; }

 private:
  Tokenizer();
  void check_id(int id) const;
  std::unique_ptr<SpmBackend> sp_;
  std::vector<PieceText> piece_texts_;
  std::string path_;
};

enum class TokenizerModelType : uint8_t { kBpe, kUnigram };

// The call-graph structure strings of tracelm's text encodings, each made one
// token by train_tokenizer(). A leading space is part of a symbol (" MS_" is
// "MS_" after a space, as in "destination is MS_63670"): without it the space
// would be a token of its own, since a user-defined symbol never merges with
// its neighbours. Both forms of MS_, S_ and USER are listed.
std::vector<std::string> default_structure_symbols();

struct TrainOptions {
  // At most this many pieces, counting <unk>, <s>, </s>, the user symbols,
  // the 256 byte pieces and every character of the text (character coverage
  // is 1.0), so at least about 280 + the number of distinct characters.
  // Fewer when the text has no more to learn: call-graph text has few
  // distinct words and its digits are split, so it fills about 1,400 BPE
  // pieces (SentencePiece's hard_vocab_limit is off).
  int vocab_size = 2048;
  TokenizerModelType model_type = TokenizerModelType::kBpe;
  // Every digit its own piece, so numbers stay compositional (like Llama).
  bool split_digits = true;
  // Split pieces where the Unicode script changes (letters <-> punctuation),
  // as Llama's tokenizer does. Off, pieces like "edge_id", "/num_edges:" and
  // ",communication" can be learned: call-graph text is 20-35% fewer tokens.
  bool split_by_script = false;
  // Longest piece, in characters (SentencePiece's default; 32 makes
  // call-graph text about 8% shorter still).
  int max_piece_length = 16;
  // Strings that are always one token (never split, never merged); spaces in
  // them are allowed. Must be non-empty, distinct, without ',' or newline.
  std::vector<std::string> user_symbols = default_structure_symbols();
  // At most this many lines are trained on: a uniform sample, drawn with
  // `seed`, of the usable lines (0 = every line).
  uint64_t max_sentences = 1000000;
  // Lines longer than this many bytes are not trained on (nor empty lines).
  int max_sentence_length = 16384;
  // Prepend "▁" to each text before encoding (Llama's setting: "Hello"
  // encodes like " Hello" would after other text).
  bool add_dummy_prefix = true;
  int threads = 0;       // training threads; 0 = all hardware threads
  uint32_t seed = 1;     // sampling seed: same text, options and seed -> same model bytes
  bool verbose = false;  // SentencePiece's progress log on stderr
};

// Trains a model on `text_file`, in which each line is one sentence: a
// multi-line record is seen as separate lines (its newlines are later
// encoded as the byte piece <0x0A>). Writes `model_out` and its vocabulary
// listing (model_out with ".model" replaced by ".vocab", or with ".vocab"
// appended) through temporary files in the same directory, renamed at the
// end. Ids: <unk> 0, <s> 1, </s> 2, no pad (Llama's); byte fallback on;
// identity normalization, whitespace kept. Throws InputError naming
// `text_file` when it is missing, empty or unusable (SentencePiece's reason
// included, e.g. a vocabulary size too small for the text's characters);
// std::invalid_argument for bad options; std::runtime_error when the output
// cannot be written.
void train_tokenizer(const std::string& text_file, const std::string& model_out,
                     const TrainOptions& opt = {});

// "model.model" -> "model.vocab"; other names get ".vocab" appended.
std::string vocab_path_for(const std::string& model_out);

}  // namespace tracelm
