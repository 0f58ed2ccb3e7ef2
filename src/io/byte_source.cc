#include "io/byte_source.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/input_error.h"

namespace tracelm {

namespace {

class FdSource : public ByteSource {
 public:
  FdSource(std::string name, int fd, uint64_t size)
      : name_(std::move(name)), fd_(fd), size_(size) {}
  size_t read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) {
        done_ += static_cast<uint64_t>(r);
        return static_cast<size_t>(r);
      }
      if (errno != EINTR)
        throw InputError(name_, 0, std::string("read failed: ") + strerror(errno));
    }
  }
  const std::string& name() const override { return name_; }
  uint64_t file_bytes_read() const override { return done_; }
  uint64_t file_size() const override { return size_; }

 private:
  std::string name_;
  int fd_;
  uint64_t size_, done_ = 0;
};

class ArchiveSource : public ByteSource {
 public:
  ArchiveSource(std::string name, archive* a, uint64_t size)
      : name_(std::move(name)), a_(a), size_(size) {}
  size_t read(char* buf, size_t n) override {
    la_ssize_t r = archive_read_data(a_, buf, n);
    if (r < 0)
      throw InputError(name_, 0,
                       std::string("cannot decompress: ") + archive_error_string(a_) +
                           " (truncated or corrupt file?)");
    return static_cast<size_t>(r);
  }
  const std::string& name() const override { return name_; }
  uint64_t file_bytes_read() const override {
    la_int64_t b = archive_filter_bytes(a_, -1);
    return b < 0 ? 0 : static_cast<uint64_t>(b);
  }
  uint64_t file_size() const override { return size_; }

 private:
  std::string name_;
  archive* a_;
  uint64_t size_;
};

class MemorySource : public ByteSource {
 public:
  MemorySource(std::string name, std::string data)
      : name_(std::move(name)), data_(std::move(data)) {}
  size_t read(char* buf, size_t n) override {
    size_t k = std::min(n, data_.size() - pos_);
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  const std::string& name() const override { return name_; }
  uint64_t file_bytes_read() const override { return pos_; }
  uint64_t file_size() const override { return data_.size(); }

 private:
  std::string name_, data_;
  size_t pos_ = 0;
};

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool needs_libarchive(const unsigned char* h, size_t n) {
  auto starts = [&](std::initializer_list<unsigned char> m) {
    if (n < m.size()) return false;
    size_t i = 0;
    for (unsigned char c : m)
      if (h[i++] != c) return false;
    return true;
  };
  if (starts({0x1f, 0x8b})) return true;                               // gzip
  if (starts({'B', 'Z', 'h'})) return true;                            // bzip2
  if (starts({0xfd, '7', 'z', 'X', 'Z', 0x00})) return true;           // xz
  if (starts({0x28, 0xb5, 0x2f, 0xfd})) return true;                   // zstd
  if (n >= 262 && std::memcmp(h + 257, "ustar", 5) == 0) return true;  // tar
  return false;
}

}  // namespace

std::unique_ptr<ByteSource> memory_source(std::string name, std::string data) {
  return std::make_unique<MemorySource>(std::move(name), std::move(data));
}

void for_each_stream(const std::string& path, const std::function<void(ByteSource&)>& fn,
                     const std::string& member_suffix, uint64_t* skipped_members) {
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) throw InputError(path, 0, std::string("cannot open: ") + strerror(errno));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0 || S_ISDIR(st.st_mode))
    throw InputError(path, 0, "not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char head[512];
  ssize_t n = ::pread(fd.fd, head, sizeof head, 0);
  if (n < 0) throw InputError(path, 0, std::string("read failed: ") + strerror(errno));
#ifdef POSIX_FADV_SEQUENTIAL
  ::posix_fadvise(fd.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  if (!needs_libarchive(head, static_cast<size_t>(n))) {
    FdSource src(path, fd.fd, size);
    fn(src);
    return;
  }
  archive* a = archive_read_new();
  struct Closer {
    archive* a;
    ~Closer() { archive_read_free(a); }
  } closer{a};
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  archive_read_support_format_raw(a);
  if (archive_read_open_fd(a, fd.fd, 1 << 20) != ARCHIVE_OK)
    throw InputError(path, 0, std::string("cannot open archive: ") + archive_error_string(a));
  archive_entry* entry = nullptr;
  while (true) {
    int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      throw InputError(path, 0,
                       std::string("corrupt or truncated archive: ") + archive_error_string(a));
    bool raw = archive_format(a) == ARCHIVE_FORMAT_RAW;
    if (!raw && archive_entry_filetype(entry) != AE_IFREG) continue;
    const char* pn = archive_entry_pathname(entry);
    std::string member = pn ? pn : "";
    if (!raw && !member_suffix.empty() && !member.ends_with(member_suffix)) {
      if (skipped_members) ++*skipped_members;
      continue;
    }
    ArchiveSource src(raw ? path : path + ":" + member, a, size);
    fn(src);
  }
}

}  // namespace tracelm
