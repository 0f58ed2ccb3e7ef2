// InputError: a malformed or unreadable input file. The message names the
// file, the line (or byte offset) and what was expected. Thrown at I/O
// boundaries (readers of outside files); the CLI prints it and exits 2.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tracelm {

class InputError : public std::runtime_error {
 public:
  // line 0 = not line-specific.
  InputError(std::string file, uint64_t line, const std::string& what)
      : std::runtime_error(format(file, line, what)), file_(std::move(file)), line_(line) {}
  const std::string& file() const { return file_; }
  uint64_t line() const { return line_; }

 private:
  static std::string format(const std::string& file, uint64_t line, const std::string& what) {
    return line ? file + ":" + std::to_string(line) + ": " + what : file + ": " + what;
  }
  std::string file_;
  uint64_t line_;
};

}  // namespace tracelm
