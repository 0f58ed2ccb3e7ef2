// Byte streams from input files: plain files, gzip/bzip2/xz/zstd-compressed
// files and tar archives (each regular member is one stream), detected by
// their magic bytes, not their names.
//
// Contract:
//  - for_each_stream() opens `path`, calls `fn` once per data stream (one for
//    a plain or compressed file, one per regular member of a tar archive) and
//    closes it. Input files are only read, never modified.
//  - Errors (missing file, truncated or corrupt compressed data) throw
//    InputError naming the file (and member).
//  - Streams are read sequentially; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace tracelm {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes into buf; returns 0 at the end of the stream.
  virtual size_t read(char* buf, size_t n) = 0;
  // Name for messages: "path" or "path:member".
  virtual const std::string& name() const = 0;
  // Bytes of the underlying file consumed so far (compressed bytes for a
  // compressed file), for progress against file_size().
  virtual uint64_t file_bytes_read() const = 0;
  virtual uint64_t file_size() const = 0;
};

// Calls fn(stream) for each data stream of the file at `path`.
// Tar members whose names do not end in `member_suffix` (when non-empty) are
// skipped; their count is added to *skipped_members when given.
void for_each_stream(const std::string& path, const std::function<void(ByteSource&)>& fn,
                     const std::string& member_suffix = "", uint64_t* skipped_members = nullptr);

// A ByteSource over a string (tests, fuzzing, built-in samples).
std::unique_ptr<ByteSource> memory_source(std::string name, std::string data);

}  // namespace tracelm
