#include "model/safetensors.h"

#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <utility>

#include "io/input_error.h"
#include "util/json_text.h"
#include "util/path.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this host is not");

namespace tracelm {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeader = 100ull * 1000 * 1000;  // 100 MB, as the Rust reference
constexpr uint64_t kMaxIndex = 100ull * 1000 * 1000;
constexpr int kMaxNesting = 16;
constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

struct DtypeInfo {
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2},    {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
    {"U16", 2}, {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

std::string shown(std::string_view s) {
  // For messages: the name as JSON would print it, cut short.
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 200; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 200) out += "...";
  return out + "'";
}

// nlohmann's message without its "[json.exception...] parse error at ...: "
// prefix, cut short, in ASCII (it quotes the offending bytes).
std::string json_reason(const nlohmann::json::exception& e) {
  std::string msg = e.what();
  size_t start = msg.find("] ");
  start = start == std::string::npos ? 0 : start + 2;
  if (msg.compare(start, 12, "parse error ") == 0) {
    size_t colon = msg.find(": ", start);
    if (colon != std::string::npos) start = colon + 2;
  }
  std::string out;
  for (size_t i = start; i < msg.size() && out.size() < 300; ++i) {
    unsigned char u = static_cast<unsigned char>(msg[i]);
    if (u >= 0x20 && u < 0x7f) {
      out += static_cast<char>(u);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return out;
}

// Parses JSON text strictly: nesting bounded, duplicate keys in any object
// rejected (nlohmann would keep the last one silently). Throws InputError.
json parse_json_strict(const std::string& file, std::string_view text, uint64_t base_offset,
                       const char* what) {
  if (json_nesting_depth(text, kMaxNesting) > kMaxNesting)
    throw InputError(
        file, 0,
        std::string(what) + " is nested more than " + std::to_string(kMaxNesting) + " levels deep");
  std::vector<std::set<std::string, std::less<>>> open;  // keys of the objects being parsed
  std::string dup;
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& j) {
    switch (ev) {
      case json::parse_event_t::object_start:
        open.emplace_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && j.is_string()) {
          const std::string& k = j.get_ref<const std::string&>();
          if (!open.back().insert(k).second && dup.empty()) dup = k;
        }
        break;
      case json::parse_event_t::object_end:
        if (!open.empty()) open.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true);
  } catch (const json::parse_error& e) {
    throw InputError(file, 0,
                     std::string(what) + " is not valid JSON (at byte offset " +
                         std::to_string(base_offset + (e.byte > 0 ? e.byte - 1 : 0)) +
                         "): " + json_reason(e));
  } catch (const json::exception& e) {
    // A number too large for a double (out_of_range.406) and the like.
    throw InputError(file, 0, std::string(what) + " is not valid JSON here: " + json_reason(e));
  }
  if (!dup.empty())
    throw InputError(file, 0,
                     std::string(what) + " has the key " + shown(dup) +
                         " twice in one object (duplicate keys are rejected)");
  return j;
}

[[noreturn]] void tensor_error(const std::string& file, const std::string& name,
                               const std::string& what) {
  throw InputError(file, 0, "tensor " + shown(name) + ": " + what);
}

// a * b, false on uint64 overflow.
bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// A JSON integer >= 0 (not a float, not a bool); false otherwise.
bool non_negative_int(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    int64_t x = v.get<int64_t>();
    if (x < 0) return false;
    *out = static_cast<uint64_t>(x);
    return true;
  }
  return false;
}

// Element count of a shape; false on overflow (of the count or of the count
// times elem_size) or a dimension beyond int64.
bool shape_bytes(const std::vector<int64_t>& shape, size_t elem_size, uint64_t* numel,
                 uint64_t* nbytes) {
  uint64_t n = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) zero = true;
  }
  if (zero) {
    *numel = 0;
    *nbytes = 0;
    return true;
  }
  for (int64_t d : shape)
    if (!mul_ok(n, static_cast<uint64_t>(d), &n)) return false;
  uint64_t b;
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || !mul_ok(n, elem_size, &b))
    return false;
  *numel = n;
  *nbytes = b;
  return true;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool plain_file_name(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos &&
         s.find('\0') == std::string_view::npos;
}

// Writes pieces to `path` atomically (io/atomic_file.h).
void write_atomically(const std::string& path,
                      const std::vector<std::pair<const void*, size_t>>& pieces) {
  AtomicFile f(path);
  for (const auto& [ptr, len] : pieces) f.write({static_cast<const char*>(ptr), len});
  f.close();
}

std::string json_string(const std::string& s, const char* what) {
  try {
    return json(s).dump();
  } catch (const json::type_error&) {
    throw std::invalid_argument(std::string(what) + " " + shown(s) + " is not valid UTF-8");
  }
}

// Checks one tensor to write; returns its byte count.
uint64_t check_tensor(const TensorData& t) {
  if (t.name.empty()) throw std::invalid_argument("safetensors: a tensor has an empty name");
  if (t.name == "__metadata__")
    throw std::invalid_argument("safetensors: '__metadata__' is reserved, not a tensor name");
  size_t es = dtype_size(t.dtype);
  if (es == 0)
    throw std::invalid_argument("safetensors: tensor " + shown(t.name) + " has unknown dtype " +
                                shown(t.dtype));
  uint64_t numel, nbytes;
  if (!shape_bytes(t.shape, es, &numel, &nbytes))
    throw std::invalid_argument("safetensors: tensor " + shown(t.name) +
                                " has a negative dimension or a shape whose size overflows");
  if (nbytes != t.nbytes)
    throw std::invalid_argument("safetensors: tensor " + shown(t.name) + " has nbytes " +
                                std::to_string(t.nbytes) + " but its shape and dtype need " +
                                std::to_string(nbytes));
  if (nbytes > 0 && t.data == nullptr)
    throw std::invalid_argument("safetensors: tensor " + shown(t.name) + " has no data");
  return nbytes;
}

void check_tensors(const std::vector<TensorData>& tensors) {
  std::set<std::string_view> seen;
  for (const TensorData& t : tensors) {
    check_tensor(t);
    if (!seen.insert(t.name).second)
      throw std::invalid_argument("safetensors: tensor " + shown(t.name) + " given twice");
    json_string(t.name, "safetensors: tensor name");
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// dtypes and conversions

size_t dtype_size(std::string_view dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (dtype == d.name) return d.size;
  return 0;
}

int64_t TensorView::numel() const {
  for (int64_t d : shape)
    if (d == 0) return 0;  // (before multiplying: the other dimensions may be huge)
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return static_cast<int64_t>(n);
}

float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float.
    float f = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, or NaN with its payload
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t float_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // inf or NaN (kept quiet, top payload bits kept)
    if (x == 0x7f800000u) return sign | 0x7c00;
    return static_cast<uint16_t>(sign | 0x7e00 | ((x >> 13) & 0x3ff));
  }
  if (x >= 0x477ff000u) return sign | 0x7c00;  // >= 65520: rounds to inf
  if (x >= 0x38800000u) {                      // >= 2^-14: normal
    uint32_t h = ((x >> 23) - 112) << 10 | ((x >> 13) & 0x3ff);
    uint32_t rem = x & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into the exponent
    return static_cast<uint16_t>(sign | h);
  }
  if (x <= 0x33000000u) return sign;  // <= 2^-25: rounds to zero (the tie to even)
  // Subnormal: value / 2^-24 = mant * 2^(e - 126), rounded.
  uint32_t e = x >> 23;
  uint32_t mant = (x & 0x7fffff) | 0x800000;
  uint32_t shift = 126 - e;  // 14..24
  uint32_t h = mant >> shift;
  uint32_t rem = mant & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1))) ++h;  // 0x400 is the smallest normal: right
  return static_cast<uint16_t>(sign | h);
}

float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

uint16_t float_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fffu + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

void to_float32(const TensorView& t, float* out) {
  const uint8_t* p = t.data;
  if (t.dtype == "F32") {
    if (t.nbytes) std::memcpy(out, p, t.nbytes);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    bool f16 = t.dtype == "F16";
    size_t n = t.nbytes / 2;
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = f16 ? f16_to_float(h) : bf16_to_float(h);
    }
  } else if (t.dtype == "F64") {
    size_t n = t.nbytes / 8;
    for (size_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    throw std::invalid_argument("to_float32: dtype " + t.dtype +
                                " is not a floating-point type (F32, F16, BF16, F64)");
  }
}

void from_float32(const float* in, size_t n, std::string_view dtype, void* out) {
  uint8_t* o = static_cast<uint8_t*>(out);
  if (dtype == "F32") {
    if (n) std::memcpy(o, in, n * 4);
  } else if (dtype == "F16" || dtype == "BF16") {
    bool f16 = dtype == "F16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t h = f16 ? float_to_f16(in[i]) : float_to_bf16(in[i]);
      std::memcpy(o + 2 * i, &h, 2);
    }
  } else {
    throw std::invalid_argument("from_float32: dtype " + std::string(dtype) +
                                " is not F32, F16 or BF16");
  }
}

// ---------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  map_file();
  try {
    parse_header();
  } catch (...) {
    release();
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() { release(); }

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      bytes_(std::exchange(o.bytes_, nullptr)),
      file_size_(std::exchange(o.file_size_, 0)),
      mapped_(std::exchange(o.mapped_, false)),
      buffer_(std::move(o.buffer_)),
      data_(std::exchange(o.data_, nullptr)),
      data_size_(std::exchange(o.data_size_, 0)),
      tensors_(std::move(o.tensors_)),
      metadata_(std::move(o.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    bytes_ = std::exchange(o.bytes_, nullptr);
    file_size_ = std::exchange(o.file_size_, 0);
    mapped_ = std::exchange(o.mapped_, false);
    buffer_ = std::move(o.buffer_);
    data_ = std::exchange(o.data_, nullptr);
    data_size_ = std::exchange(o.data_size_, 0);
    tensors_ = std::move(o.tensors_);
    metadata_ = std::move(o.metadata_);
  }
  return *this;
}

void SafetensorsFile::release() {
  if (mapped_ && bytes_) ::munmap(const_cast<uint8_t*>(bytes_), file_size_);
  mapped_ = false;
  bytes_ = nullptr;
  buffer_.clear();
  buffer_.shrink_to_fit();
}

void SafetensorsFile::map_file() {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path_, 0, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw InputError(path_, 0, std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(path_, 0, "not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw InputError(path_, 0,
                     "file is " + std::to_string(size) +
                         " bytes, shorter than the 8-byte header length of a safetensors file");
  }
  if (size > std::numeric_limits<size_t>::max()) {
    ::close(fd);
    throw InputError(path_, 0, "file too large to map");
  }
  file_size_ = static_cast<size_t>(size);
  void* m = ::mmap(nullptr, file_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m != MAP_FAILED) {
    bytes_ = static_cast<const uint8_t*>(m);
    mapped_ = true;
    ::close(fd);
    return;
  }
  // mmap refused (an odd file system): read the file into memory.
  buffer_.resize(file_size_);
  size_t done = 0;
  while (done < file_size_) {
    ssize_t n = ::read(fd, buffer_.data() + done, file_size_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : 0;
      ::close(fd);
      buffer_.clear();
      throw InputError(
          path_, 0,
          e ? std::string("cannot read: ") + std::strerror(e) : "file shrank while being read");
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes_ = buffer_.data();
}

void SafetensorsFile::parse_header() {
  uint64_t n;
  std::memcpy(&n, bytes_, 8);
  if (n > file_size_ - 8)
    throw InputError(path_, 0,
                     "header length " + std::to_string(n) + " exceeds the " +
                         std::to_string(file_size_ - 8) +
                         " bytes after the length field (truncated file, or not safetensors?)");
  if (n > kMaxHeader)
    throw InputError(path_, 0,
                     "header length " + std::to_string(n) + " exceeds the limit of " +
                         std::to_string(kMaxHeader) + " bytes");
  data_ = bytes_ + 8 + n;
  data_size_ = file_size_ - 8 - n;
  std::string_view text(reinterpret_cast<const char*>(bytes_ + 8), n);
  json header = parse_json_strict(path_, text, 8, "the header");
  if (!header.is_object())
    throw InputError(
        path_, 0,
        std::string("the header is not a JSON object (it is ") + header.type_name() + ")");

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object()) throw InputError(path_, 0, "__metadata__ is not an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw InputError(path_, 0,
                           "__metadata__ value of " + shown(m.key()) + " is not a string (it is " +
                               m.value().type_name() + ")");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object())
      tensor_error(
          path_, name,
          std::string("expected an object {\"dtype\", \"shape\", \"data_offsets\"}, got ") +
              v.type_name());
    Entry e;
    auto dt = v.find("dtype");
    if (dt == v.end()) tensor_error(path_, name, "no \"dtype\"");
    if (!dt->is_string()) tensor_error(path_, name, "\"dtype\" is not a string");
    e.dtype = dt->get<std::string>();
    size_t es = dtype_size(e.dtype);
    if (es == 0)
      tensor_error(
          path_, name,
          "unknown dtype " + shown(e.dtype) +
              " (expected F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3 "
              "or F8_E5M2)");
    auto sh = v.find("shape");
    if (sh == v.end()) tensor_error(path_, name, "no \"shape\"");
    if (!sh->is_array()) tensor_error(path_, name, "\"shape\" is not an array");
    for (const json& d : *sh) {
      uint64_t x;
      if (!non_negative_int(d, &x) ||
          x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        tensor_error(path_, name, "\"shape\" has " + d.dump() + ", not a non-negative integer");
      e.shape.push_back(static_cast<int64_t>(x));
    }
    uint64_t numel, nbytes;
    if (!shape_bytes(e.shape, es, &numel, &nbytes))
      tensor_error(path_, name, "the size of shape " + sh->dump() + " overflows");
    auto off = v.find("data_offsets");
    if (off == v.end()) tensor_error(path_, name, "no \"data_offsets\"");
    if (!off->is_array() || off->size() != 2 || !non_negative_int((*off)[0], &e.begin) ||
        !non_negative_int((*off)[1], &e.end))
      tensor_error(path_, name,
                   "\"data_offsets\" " + off->dump().substr(0, 200) +
                       " is not two non-negative integers [begin, end]");
    if (e.begin > e.end)
      tensor_error(path_, name,
                   "\"data_offsets\" begin " + std::to_string(e.begin) + " is after end " +
                       std::to_string(e.end));
    if (e.end > data_size_)
      tensor_error(path_, name,
                   "\"data_offsets\" end " + std::to_string(e.end) +
                       " is past the end of the data (" + std::to_string(data_size_) +
                       " bytes; truncated file?)");
    if (e.end - e.begin != nbytes)
      tensor_error(path_, name,
                   "\"data_offsets\" span " + std::to_string(e.end - e.begin) +
                       " bytes but dtype " + e.dtype + " and shape " + sh->dump() + " need " +
                       std::to_string(nbytes));
    auto [pos, inserted] = tensors_.emplace(name, std::move(e));
    (void)inserted;  // keys of a JSON object are unique (duplicates rejected above)
    if (pos->second.end > pos->second.begin)
      ranges.push_back({pos->second.begin, pos->second.end, &pos->first});
  }

  // No byte may belong to two tensors.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Range& a = ranges[i - 1];
    const Range& b = ranges[i];
    if (b.begin < a.end)
      throw InputError(path_, 0,
                       "tensors " + shown(*a.name) + " [" + std::to_string(a.begin) + ", " +
                           std::to_string(a.end) + ") and " + shown(*b.name) + " [" +
                           std::to_string(b.begin) + ", " + std::to_string(b.end) +
                           ") overlap in the data");
  }
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, e] : tensors_) out.push_back(name);
  return out;
}

bool SafetensorsFile::has(std::string_view name) const {
  return tensors_.find(name) != tensors_.end();
}

TensorView SafetensorsFile::get(std::string_view name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw InputError(path_, 0, "no tensor named " + shown(name));
  const Entry& e = it->second;
  TensorView v;
  v.dtype = e.dtype;
  v.shape = e.shape;
  v.data = data_ + e.begin;
  v.nbytes = static_cast<size_t>(e.end - e.begin);
  return v;
}

// ---------------------------------------------------------------------------
// SafetensorsModel

SafetensorsModel::SafetensorsModel(const std::string& path) : path_(path) {
  std::string file = path;
  if (is_dir(path)) {
    if (file_exists(path + "/" + kSingleName)) {
      file = path + "/" + kSingleName;
    } else if (file_exists(path + "/" + kIndexName)) {
      open_index(path + "/" + kIndexName);
      return;
    } else {
      throw InputError(path, 0,
                       std::string("directory has neither ") + kSingleName + " nor " + kIndexName);
    }
  } else if (path.ends_with(".json")) {
    open_index(path);
    return;
  }
  files_.emplace_back(file);
  metadata_ = files_[0].metadata();
  for (const std::string& n : files_[0].names()) where_.emplace(n, 0);
}

void SafetensorsModel::open_index(const std::string& index_path) {
  sharded_ = true;
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw InputError(index_path, 0, std::string("cannot open: ") + std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) throw InputError(index_path, 0, "cannot read");
  if (static_cast<uint64_t>(size) > kMaxIndex)
    throw InputError(index_path, 0,
                     "index is " + std::to_string(size) + " bytes, over the limit of " +
                         std::to_string(kMaxIndex));
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), size)) throw InputError(index_path, 0, "cannot read");
  json j = parse_json_strict(index_path, text, 0, "the index");
  if (!j.is_object()) throw InputError(index_path, 0, "the index is not a JSON object");
  auto md = j.find("metadata");
  if (md != j.end() && !md->is_null()) {
    if (!md->is_object()) throw InputError(index_path, 0, "\"metadata\" is not an object");
    for (auto it = md->begin(); it != md->end(); ++it)
      metadata_[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object())
    throw InputError(index_path, 0,
                     "no \"weight_map\" object {tensor name: shard file name} in the index");
  std::string dir = dir_of(index_path);
  std::map<std::string, size_t> shard_index;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string())
      throw InputError(index_path, 0,
                       "weight_map: the shard of tensor " + shown(it.key()) + " is not a string");
    const std::string& shard = it->get_ref<const std::string&>();
    if (!plain_file_name(shard))
      throw InputError(index_path, 0,
                       "weight_map: tensor " + shown(it.key()) + " is in shard " + shown(shard) +
                           ", which is not a plain file name in the index's directory");
    auto [pos, inserted] = shard_index.emplace(shard, files_.size());
    if (inserted) files_.emplace_back(dir + "/" + shard);
    const SafetensorsFile& f = files_[pos->second];
    if (!f.has(it.key()))
      throw InputError(index_path, 0,
                       "weight_map: tensor " + shown(it.key()) + " is mapped to shard " +
                           shown(shard) + ", which has no such tensor");
    where_.emplace(it.key(), pos->second);
  }
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, i] : where_) out.push_back(name);
  return out;
}

bool SafetensorsModel::has(std::string_view name) const {
  return where_.find(name) != where_.end();
}

TensorView SafetensorsModel::get(std::string_view name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw InputError(path_, 0, "no tensor named " + shown(name));
  return files_[it->second].get(name);
}

std::vector<std::string> SafetensorsModel::files() const {
  std::vector<std::string> out;
  for (const SafetensorsFile& f : files_) out.push_back(f.path());
  return out;
}

// ---------------------------------------------------------------------------
// Writers

namespace {

// The header text, padded so that 8 + size is a multiple of 8, and the data
// pieces in header order.
void write_one(const std::string& path, const std::vector<const TensorData*>& sorted,
               const std::map<std::string, std::string>& metadata) {
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) h += ',';
      first = false;
      h += json_string(k, "safetensors: metadata key");
      h += ':';
      h += json_string(v, "safetensors: metadata value");
    }
    h += '}';
  }
  uint64_t offset = 0;
  std::vector<std::pair<const void*, size_t>> pieces;
  pieces.reserve(sorted.size() + 2);
  for (const TensorData* t : sorted) {
    if (h.size() > 1) h += ',';
    h += json_string(t->name, "safetensors: tensor name");
    h += ":{\"dtype\":\"" + t->dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t->shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(t->shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," +
         std::to_string(offset + t->nbytes) + "]}";
    offset += t->nbytes;
    if (t->nbytes) pieces.emplace_back(t->data, t->nbytes);
  }
  h += '}';
  while ((8 + h.size()) % 8 != 0) h += ' ';
  uint64_t n = h.size();
  uint8_t len[8];
  std::memcpy(len, &n, 8);
  pieces.insert(pieces.begin(), {{len, 8}, {h.data(), h.size()}});
  write_atomically(path, pieces);
}

std::vector<const TensorData*> sorted_by_name(const std::vector<const TensorData*>& ts) {
  std::vector<const TensorData*> s = ts;
  std::sort(s.begin(), s.end(),
            [](const TensorData* a, const TensorData* b) { return a->name < b->name; });
  return s;
}

void remove_if_present(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error("cannot remove " + path + ": " + std::strerror(errno));
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  check_tensors(tensors);
  for (const auto& [k, v] : metadata) {
    json_string(k, "safetensors: metadata key");
    json_string(v, "safetensors: metadata value");
  }
  std::vector<const TensorData*> ptrs;
  ptrs.reserve(tensors.size());
  for (const TensorData& t : tensors) ptrs.push_back(&t);
  write_one(path, sorted_by_name(ptrs), metadata);
}

void write_sharded(const std::string& dir, const std::vector<TensorData>& tensors,
                   uint64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  if (max_shard_bytes == 0) throw std::invalid_argument("write_sharded: max_shard_bytes is 0");
  check_tensors(tensors);
  for (const auto& [k, v] : metadata) {
    json_string(k, "safetensors: metadata key");
    json_string(v, "safetensors: metadata value");
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create " + dir + ": " + std::strerror(errno));
  uint64_t total = 0;
  for (const TensorData& t : tensors) total += t.nbytes;
  const std::string single = dir + "/" + kSingleName;
  const std::string index = dir + "/" + kIndexName;
  if (total <= max_shard_bytes) {
    write_safetensors(single, tensors, metadata);
    remove_if_present(index);
    return;
  }
  // Greedy, in the given order: a shard takes tensors while they fit.
  std::vector<std::vector<const TensorData*>> shards(1);
  uint64_t used = 0;
  for (const TensorData& t : tensors) {
    if (!shards.back().empty() && used + t.nbytes > max_shard_bytes) {
      shards.emplace_back();
      used = 0;
    }
    shards.back().push_back(&t);
    used += t.nbytes;
  }
  size_t count = shards.size();
  json weight_map = json::object();
  for (size_t i = 0; i < count; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, count);
    write_one(dir + "/" + name, sorted_by_name(shards[i]), metadata);
    for (const TensorData* t : shards[i]) weight_map[t->name] = name;
  }
  json md = json::object();
  for (const auto& [k, v] : metadata) md[k] = v;
  md["total_size"] = total;
  json idx = {{"metadata", md}, {"weight_map", weight_map}};
  std::string text = idx.dump(2) + "\n";
  write_atomically(index, {{text.data(), text.size()}});
  remove_if_present(single);
}

}  // namespace tracelm
