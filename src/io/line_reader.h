// LineReader: splits a ByteSource into lines, with bounded memory.
//
// Contract:
//  - next() returns each line without its '\n' (and without a trailing '\r').
//    The view stays valid until the next call.
//  - A line longer than max_line is not buffered: next() returns its first
//    max_line bytes with *overlong = true and skips the rest of it.
//  - Memory is O(max_line + buffer size) whatever the input.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "io/byte_source.h"

namespace tracelm {

class LineReader {
 public:
  explicit LineReader(ByteSource& src, size_t max_line = 64 << 10, size_t buffer = 4 << 20);
  bool next(std::string_view* line, bool* overlong = nullptr);
  uint64_t line_no() const { return line_no_; }  // number of the line last returned (1-based)
  uint64_t bytes() const { return bytes_; }      // bytes consumed (uncompressed)
  ByteSource& source() { return src_; }

 private:
  bool fill();  // reads more; false at end of stream
  ByteSource& src_;
  size_t max_line_;
  std::unique_ptr<char[]> buf_;  // not zero-filled: a reader per small input stays cheap
  size_t cap_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  uint64_t line_no_ = 0, bytes_ = 0;
};

}  // namespace tracelm
