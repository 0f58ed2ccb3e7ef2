// SpmBackend: the SentencePiece calls tracelm makes, behind an abstract
// interface implemented in a separately loaded plugin (libtracelm_spm.so).
//
// Why a plugin: Debian's libsentencepiece carries its own copy of protobuf's
// internals and exports them. In a process that also loads libprotobuf (as
// libtorch does), one library's protobuf code binds to the other's copy and
// the process crashes at start-up or fails protobuf's version check. The
// plugin is opened with RTLD_LOCAL | RTLD_DEEPBIND, so SentencePiece and its
// protobuf copy resolve among themselves and stay invisible to the rest.
//
// Contract: make_spm_backend() returns a fresh backend or throws
// std::runtime_error saying where it looked for the plugin. Methods return
// "" on success or an error message. A loaded backend's const methods are
// safe to call from several threads (as SentencePieceProcessor's are).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tracelm {

class SpmBackend {
 public:
  virtual ~SpmBackend() = default;
  virtual std::string load_serialized(const std::string& proto) = 0;
  virtual std::string encode_ids(std::string_view text, std::vector<int>* ids) const = 0;
  virtual std::string encode_pieces(std::string_view text,
                                    std::vector<std::string>* pieces) const = 0;
  virtual std::string decode(const std::vector<int>& ids, std::string* text) const = 0;
  virtual int piece_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual const std::string& id_to_piece(int id) const = 0;
  virtual int piece_to_id(std::string_view piece) const = 0;
  virtual float score(int id) const = 0;
  virtual bool is_control(int id) const = 0;
  virtual bool is_unknown(int id) const = 0;
  virtual bool is_unused(int id) const = 0;
  virtual bool is_byte(int id) const = 0;
  // Trains on the sentences next_line() yields (false at the end); on
  // success *model holds the serialized model.
  virtual std::string train(const std::unordered_map<std::string, std::string>& args, uint32_t seed,
                            const std::function<bool(std::string*)>& next_line,
                            std::string* model) = 0;
};

std::unique_ptr<SpmBackend> make_spm_backend();

}  // namespace tracelm

// The plugin's one entry point.
extern "C" tracelm::SpmBackend* tracelm_spm_backend_create();
