// The SentencePiece plugin (see spm_backend.h): the only code that includes
// SentencePiece's headers. Built as libtracelm_spm.so.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "tokenizer/spm_backend.h"

namespace tracelm {

namespace spm = sentencepiece;

namespace {

class Lines : public spm::SentenceIterator {
 public:
  explicit Lines(const std::function<bool(std::string*)>& next) : next_(next) { Next(); }
  bool done() const override { return done_; }
  void Next() override { done_ = !next_(&line_); }
  const std::string& value() const override { return line_; }
  spm::util::Status status() const override { return spm::util::Status(); }

 private:
  const std::function<bool(std::string*)>& next_;
  std::string line_;
  bool done_ = false;
};

class Plugin : public SpmBackend {
 public:
  std::string load_serialized(const std::string& proto) override {
    auto s = sp_.LoadFromSerializedProto(proto);
    return s.ok() ? "" : std::string(s.message());
  }
  std::string encode_ids(std::string_view text, std::vector<int>* ids) const override {
    auto s = sp_.Encode(text, ids);
    return s.ok() ? "" : std::string(s.message());
  }
  std::string encode_pieces(std::string_view text, std::vector<std::string>* p) const override {
    auto s = sp_.Encode(text, p);
    return s.ok() ? "" : std::string(s.message());
  }
  std::string decode(const std::vector<int>& ids, std::string* text) const override {
    auto s = sp_.Decode(ids, text);
    return s.ok() ? "" : std::string(s.message());
  }
  int piece_size() const override { return sp_.GetPieceSize(); }
  int bos_id() const override { return sp_.bos_id(); }
  int eos_id() const override { return sp_.eos_id(); }
  int pad_id() const override { return sp_.pad_id(); }
  int unk_id() const override { return sp_.unk_id(); }
  const std::string& id_to_piece(int id) const override { return sp_.IdToPiece(id); }
  int piece_to_id(std::string_view piece) const override { return sp_.PieceToId(piece); }
  float score(int id) const override { return sp_.GetScore(id); }
  bool is_control(int id) const override { return sp_.IsControl(id); }
  bool is_unknown(int id) const override { return sp_.IsUnknown(id); }
  bool is_unused(int id) const override { return sp_.IsUnused(id); }
  bool is_byte(int id) const override { return sp_.IsByte(id); }
  std::string train(const std::unordered_map<std::string, std::string>& args, uint32_t seed,
                    const std::function<bool(std::string*)>& next_line,
                    std::string* model) override {
    spm::SetRandomGeneratorSeed(seed);
    Lines lines(next_line);
    auto s = spm::SentencePieceTrainer::Train(args, &lines, model);
    return s.ok() ? "" : std::string(s.message());
  }

 private:
  spm::SentencePieceProcessor sp_;
};

}  // namespace
}  // namespace tracelm

extern "C" tracelm::SpmBackend* tracelm_spm_backend_create() { return new tracelm::Plugin(); }
