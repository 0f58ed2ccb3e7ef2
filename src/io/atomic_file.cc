#include "io/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace tracelm {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_ == "-") {
    f_ = stdout;
    return;
  }
  tmp_ = path_ + ".tmp";
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_)
    throw std::runtime_error(fmt::format("cannot create {}: {}", tmp_, std::strerror(errno)));
}

AtomicFile::~AtomicFile() {
  if (f_ && f_ != stdout) {
    std::fclose(f_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(std::string_view s) {
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size())
    throw std::runtime_error(fmt::format("cannot write {}: {}", path_, std::strerror(errno)));
}

void AtomicFile::close() {
  if (!f_) return;
  if (f_ == stdout) {
    std::fflush(stdout);
    f_ = nullptr;
    return;
  }
  bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  ok = std::fclose(f_) == 0 && ok;
  f_ = nullptr;
  if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp_.c_str());
    throw std::runtime_error(fmt::format("cannot write {}: {}", path_, std::strerror(errno)));
  }
}

void write_file_atomically(const std::string& path, std::string_view text) {
  AtomicFile f(path);
  f.write(text);
  f.close();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace tracelm
