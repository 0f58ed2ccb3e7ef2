// Files written whole or not at all, and the small filesystem questions the
// stages ask (one place for them, as leveldb's env.h is).
//
// Contract:
//  - AtomicFile writes to "<path>.tmp" and, on close(), flushes, fsyncs and
//    renames it over `path`; a file destroyed before close() leaves `path`
//    untouched and removes the temporary. "-" writes to stdout (no rename).
//    Any failure throws std::runtime_error naming the path and the errno text.
//  - Not thread-safe: one writer per file.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace tracelm {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // an unclosed file is discarded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(std::string_view s);
  void close();  // flush, fsync and rename; throws on failure
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
};

// Writes `text` to `path` atomically (an AtomicFile in one call).
void write_file_atomically(const std::string& path, std::string_view text);

// True when `path` names an existing file or directory.
bool file_exists(const std::string& path);

}  // namespace tracelm
