#include "io/line_reader.h"

#include <algorithm>
#include <cstring>

namespace tracelm {

LineReader::LineReader(ByteSource& src, size_t max_line, size_t buffer)
    : src_(src),
      max_line_(max_line),
      buf_(new char[std::max(buffer, 2 * max_line + 2)]),
      cap_(std::max(buffer, 2 * max_line + 2)) {}

bool LineReader::fill() {
  if (eof_) return false;
  if (pos_ > 0) {
    std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  size_t r = src_.read(buf_.get() + end_, cap_ - end_);
  if (r == 0) {
    eof_ = true;
    return false;
  }
  end_ += r;
  return true;
}

bool LineReader::next(std::string_view* line, bool* overlong) {
  if (overlong) *overlong = false;
  size_t scanned = pos_;
  while (true) {
    const char* nl =
        static_cast<const char*>(std::memchr(buf_.get() + scanned, '\n', end_ - scanned));
    if (nl) {
      size_t len = static_cast<size_t>(nl - (buf_.get() + pos_));
      if (len > max_line_) {  // complete but overlong line
        if (overlong) *overlong = true;
        *line = std::string_view(buf_.get() + pos_, max_line_);
      } else {
        size_t l = len;
        if (l > 0 && buf_[pos_ + l - 1] == '\r') --l;
        *line = std::string_view(buf_.get() + pos_, l);
      }
      pos_ += len + 1;
      bytes_ += len + 1;
      ++line_no_;
      return true;
    }
    if (end_ - pos_ > max_line_) {
      // Overlong line: report its head, then discard until the next newline.
      // The head is copied to the front so it survives the discarding reads.
      std::memmove(buf_.get(), buf_.get() + pos_, max_line_);
      size_t discarded = end_ - pos_;
      pos_ = end_ = max_line_;
      while (true) {
        size_t r = eof_ ? 0 : src_.read(buf_.get() + max_line_, cap_ - max_line_);
        if (r == 0) {
          eof_ = true;
          pos_ = end_ = max_line_;
          break;
        }
        const char* nl2 = static_cast<const char*>(std::memchr(buf_.get() + max_line_, '\n', r));
        if (nl2) {
          size_t k = static_cast<size_t>(nl2 - (buf_.get() + max_line_));
          discarded += k + 1;
          pos_ = max_line_ + k + 1;
          end_ = max_line_ + r;
          break;
        }
        discarded += r;
      }
      if (overlong) *overlong = true;
      *line = std::string_view(buf_.get(), max_line_);
      bytes_ += discarded;
      ++line_no_;
      return true;
    }
    scanned = end_;
    size_t before = pos_;
    if (!fill()) {
      if (end_ > pos_) {  // last line without newline
        size_t l = end_ - pos_;
        if (buf_[pos_ + l - 1] == '\r') --l;
        *line = std::string_view(buf_.get() + pos_, l);
        bytes_ += end_ - pos_;
        pos_ = end_;
        ++line_no_;
        return true;
      }
      return false;
    }
    scanned -= before - pos_;  // fill() moved data to the front
  }
}

}  // namespace tracelm
