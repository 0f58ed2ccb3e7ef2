// libFuzzer target: the bytes as a .safetensors file -> SafetensorsFile.
//
// The bytes are written to a temporary file (made with mkstemp under $TMPDIR
// and unlinked at once; see input_path) and opened. InputError is expected for bad input; anything
// else escapes and crashes.
//
// Invariants (a violation traps):
//  - names() is sorted, and has()/get() agree with it;
//  - every tensor's bytes are exactly the file's bytes at 8 + N + BEGIN (the
//    header is re-read here for the offsets), nbytes == numel * dtype size,
//    and no two tensors share a byte (their sizes sum to at most the data
//    region);
//  - F32/F16/BF16 tensors convert with to_float32; F16/BF16 values survive
//    float and back bit for bit (NaNs aside);
//  - writing the tensors and metadata with write_safetensors and reading the
//    result gives the same names, dtypes, shapes, bytes and metadata.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/input_error.h"
#include "model/safetensors.h"

namespace {

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "fuzz_safetensors: invariant failed at %s:%d: %s\n", __FILE__, \
                   __LINE__, #cond);                                                      \
      __builtin_trap();                                                                   \
    }                                                                                     \
  } while (0)

// A fresh temporary file under `dir`, or under $TMPDIR (else /tmp).
std::string temp_path(const char* dir = nullptr) {
  if (!dir) dir = std::getenv("TMPDIR");
  std::string p = std::string(dir && *dir ? dir : "/tmp") + "/fuzz-safetensors-XXXXXX";
  int fd = ::mkstemp(p.data());
  if (fd < 0) {
    std::perror("fuzz_safetensors: mkstemp");
    std::abort();
  }
  ::close(fd);
  return p;
}

// The input file: created once under $TMPDIR with mkstemp and unlinked at
// once (nothing is left behind, even after a crash); each input is written
// into it and opened through /proc/self/fd. Creating and unlinking a file per
// input costs ~10x the parsing on a slow file system.
const std::string& input_path(const uint8_t* data, size_t size) {
  static int fd = -1;
  static std::string path;
  if (fd < 0) {
    std::string p = temp_path();
    fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      std::perror("fuzz_safetensors: open");
      std::abort();
    }
    ::unlink(p.c_str());
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  bool ok = ::ftruncate(fd, 0) == 0;
  size_t done = 0;
  while (ok && done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  if (!ok) {
    std::perror("fuzz_safetensors: write");
    std::abort();
  }
  return path;
}

void check_file(const tracelm::SafetensorsFile& f, const uint8_t* data, size_t size) {
  using tracelm::TensorView;
  uint64_t n;
  std::memcpy(&n, data, 8);
  FUZZ_CHECK(n <= size - 8);
  const uint8_t* region = data + 8 + n;
  uint64_t region_size = size - 8 - n;
  // The header parsed once already; read it again for the offsets.
  nlohmann::json header = nlohmann::json::parse(data + 8, region, nullptr, false);
  FUZZ_CHECK(header.is_object());

  std::vector<std::string> names = f.names();
  FUZZ_CHECK(names.size() == f.size());
  uint64_t total = 0, sum = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) FUZZ_CHECK(names[i - 1] < names[i]);
    FUZZ_CHECK(f.has(names[i]));
    TensorView v = f.get(names[i]);
    size_t es = tracelm::dtype_size(v.dtype);
    FUZZ_CHECK(es > 0);
    FUZZ_CHECK(v.nbytes == static_cast<uint64_t>(v.numel()) * es);
    const nlohmann::json& off = header.at(names[i]).at("data_offsets");
    uint64_t begin = off.at(0).get<uint64_t>(), end = off.at(1).get<uint64_t>();
    FUZZ_CHECK(end - begin == v.nbytes && end <= region_size);
    FUZZ_CHECK(v.nbytes == 0 || std::memcmp(v.data, region + begin, v.nbytes) == 0);
    for (size_t b = 0; b < v.nbytes; ++b) sum += v.data[b];
    total += v.nbytes;
    if (v.dtype == "F32" || v.dtype == "F16" || v.dtype == "BF16") {
      std::vector<float> out(static_cast<size_t>(v.numel()));
      tracelm::to_float32(v, out.data());
      if (v.dtype != "F32") {
        std::vector<uint8_t> back(v.nbytes);
        tracelm::from_float32(out.data(), out.size(), v.dtype, back.data());
        for (size_t k = 0; k < out.size(); ++k) {
          if (std::isnan(out[k])) continue;
          FUZZ_CHECK(std::memcmp(back.data() + 2 * k, v.data + 2 * k, 2) == 0);
        }
      }
    }
  }
  FUZZ_CHECK(total <= region_size);  // no byte shared by two tensors
  (void)sum;
  FUZZ_CHECK(!f.has("__metadata__"));
}

void check_round_trip(const tracelm::SafetensorsFile& f) {
  std::vector<tracelm::TensorData> ts;
  for (const std::string& name : f.names()) {
    tracelm::TensorView v = f.get(name);
    ts.push_back({name, v.dtype, v.shape, v.data, v.nbytes});
  }
  // The writer fsyncs: on a disk that costs most of the run, on tmpfs nothing.
  std::string out = temp_path(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : nullptr);
  bool wrote = true;
  try {
    tracelm::write_safetensors(out, ts, f.metadata());
  } catch (const std::invalid_argument&) {
    wrote = false;  // only an empty tensor name is readable but not writable
  }
  if (!wrote) {
    bool empty_name = false;
    for (const auto& t : ts) empty_name |= t.name.empty();
    FUZZ_CHECK(empty_name);
    ::unlink(out.c_str());
    return;
  }
  {
    tracelm::SafetensorsFile g(out);  // an InputError here escapes: a crash
    FUZZ_CHECK(g.names() == f.names());
    FUZZ_CHECK(g.metadata() == f.metadata());
    for (const auto& t : ts) {
      tracelm::TensorView v = g.get(t.name);
      FUZZ_CHECK(v.dtype == t.dtype && v.shape == t.shape && v.nbytes == t.nbytes);
      FUZZ_CHECK(v.nbytes == 0 || std::memcmp(v.data, t.data, v.nbytes) == 0);
    }
  }
  ::unlink(out.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = input_path(data, size);
  try {
    tracelm::SafetensorsFile f(path);
    FUZZ_CHECK(size >= 8);
    check_file(f, data, size);
    check_round_trip(f);
  } catch (const tracelm::InputError& e) {
    FUZZ_CHECK(e.file() == path);
    FUZZ_CHECK(std::strlen(e.what()) > path.size() + 2);
  }
  return 0;
}
