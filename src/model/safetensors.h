// Safetensors: reading and writing Hugging Face `.safetensors` checkpoints,
// single-file or sharded, as raw typed byte buffers (no libtorch here; the
// model layer turns them into tensors).
//
// Format (little-endian throughout):
//
//   file        := header_len header data
//   header_len  := u64, N: the length of `header` in bytes
//   header      := N bytes of UTF-8 JSON, one object:
//                  { NAME: {"dtype": DTYPE, "shape": [DIM, ...],
//                           "data_offsets": [BEGIN, END]}, ...,
//                    "__metadata__": {STRING: STRING, ...} }   (optional)
//                  (the Python library pads it with trailing spaces so that
//                  8 + N is a multiple of 8)
//   data        := the rest of the file; tensor NAME is the bytes
//                  [BEGIN, END) of it, row-major, little-endian elements
//   DTYPE       := F64 | F32 | F16 | BF16 | I64 | I32 | I16 | I8 | U64 | U32
//                  | U16 | U8 | BOOL | F8_E4M3 | F8_E5M2
//
// A sharded checkpoint is a directory with model.safetensors.index.json,
//   {"metadata": {...}, "weight_map": {NAME: SHARD_FILE_NAME, ...}}
// beside the shard files (model-00001-of-0000N.safetensors, ...).
//
// Contract:
//  - SafetensorsFile maps the file read-only (falling back to reading it into
//    memory where mmap is refused) and validates the whole header at open:
//    file at least 8 bytes; N <= file size - 8 and N <= 100 MB; the header
//    valid JSON (nesting at most 16 deep, checked before parsing), an object,
//    with no duplicate key in any object; every tensor entry an object with a
//    known dtype, a shape of non-negative integers whose element count (times
//    the dtype size) does not overflow, data_offsets two integers with
//    BEGIN <= END <= data size, END - BEGIN == elements * dtype size; no two
//    tensors sharing a byte; __metadata__ an object of strings (or null).
//    Unknown fields in a tensor entry are ignored, as the Python library does;
//    gaps between tensors and trailing bytes are allowed (the Rust reference
//    rejects them; a file it accepts is accepted here).
//    Any violation throws InputError naming the file, the tensor (if any) and
//    what is wrong. Memory is bounded by the header size, never by a count
//    read from the file.
//  - SafetensorsModel opens a directory (model.safetensors if present, as
//    transformers prefers, else model.safetensors.index.json), an index file
//    (*.json) or a single .safetensors file, and offers the same
//    names/has/get across shards. Shard names in the index must be plain file
//    names in the index's directory ("../x" and "a/b" are rejected); every
//    tensor of the weight map must exist in its shard. Tensors present in a
//    shard but absent from the weight map are not visible.
//  - Ownership: a TensorView points into its file's mapping: it is valid while
//    the SafetensorsFile / SafetensorsModel that returned it lives (moving the
//    owner keeps it valid). Its data is NOT aligned in general (the data
//    region starts at byte 8 + N); read elements with memcpy, or use
//    to_float32(). The mapping is of a file that must not be truncated while
//    open (the OS would deliver SIGBUS on access).
//  - Thread-safety: an opened SafetensorsFile / SafetensorsModel is immutable;
//    its const methods may be called from many threads at once.
//  - Writers: write_safetensors() writes tensors sorted by name, contiguous in
//    that order, the header padded with spaces so that the data region starts
//    at a multiple of 8, __metadata__ first when non-empty. Files are written
//    to a temporary name in the same directory, fsync'ed and renamed, so a
//    killed run leaves the old file or the new one. Invalid arguments (empty
//    or duplicate name, unknown dtype, negative dimension, nbytes not matching
//    the shape, a name not valid UTF-8) throw std::invalid_argument before
//    anything is written; I/O failures throw std::runtime_error.
//  - write_sharded() writes model.safetensors when the tensors' bytes total at
//    most max_shard_bytes, else shards of at most max_shard_bytes each (a
//    larger tensor gets a shard of its own), filled in the given order, plus
//    model.safetensors.index.json (written last), then removes the other
//    layout's entry file (model.safetensors or the index) if it was there.
//    Each file is replaced atomically, but overwriting a sharded checkpoint
//    in place is not atomic as a whole (a shard may be replaced before the
//    index): write into a fresh directory and rename it when that matters.
//    Stale shard files of an older checkpoint are left alone.
//  - Host byte order must be little-endian (checked at compile time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tracelm {

// Bytes per element of a safetensors dtype ("F32" -> 4); 0 when unknown.
size_t dtype_size(std::string_view dtype);

// A tensor stored in a file: its bytes, in place.
struct TensorView {
  std::string dtype;              // "F32", "BF16", ...
  std::vector<int64_t> shape;     // {} for a scalar
  const uint8_t* data = nullptr;  // nbytes bytes, unaligned in general
  size_t nbytes = 0;

  int64_t numel() const;  // product of shape (1 for a scalar)
};

// A tensor to write. `data` holds nbytes bytes (numel * dtype_size), row-major
// little-endian; it is only read during the call.
struct TensorData {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;
};

// One .safetensors file, validated at open (see the contract above).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws InputError
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted by name
  size_t size() const { return tensors_.size(); }
  bool has(std::string_view name) const;
  // Throws InputError naming the file when there is no such tensor.
  TensorView get(std::string_view name) const;
  // The __metadata__ object (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // in the data region
  };
  void map_file();
  void parse_header();
  void release();

  std::string path_;
  const uint8_t* bytes_ = nullptr;  // the whole file
  size_t file_size_ = 0;
  bool mapped_ = false;            // bytes_ is an mmap, else owned by buffer_
  std::vector<uint8_t> buffer_;    // fallback when mmap is refused
  const uint8_t* data_ = nullptr;  // the data region
  uint64_t data_size_ = 0;
  std::map<std::string, Entry, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: one file, or the shards of an index (see the contract above).
class SafetensorsModel {
 public:
  // `path`: a directory, an index .json file, or a .safetensors file.
  explicit SafetensorsModel(const std::string& path);  // throws InputError

  std::vector<std::string> names() const;  // sorted by name
  size_t size() const { return where_.size(); }
  bool has(std::string_view name) const;
  TensorView get(std::string_view name) const;  // throws InputError when absent
  // A single file's __metadata__, or the index's "metadata" (values that are
  // not strings, such as total_size, as their JSON text).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The files opened: one, or the shards in weight-map order of first use.
  std::vector<std::string> files() const;
  bool sharded() const { return sharded_; }

 private:
  void open_index(const std::string& index_path);

  std::string path_;
  bool sharded_ = false;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t, std::less<>> where_;  // tensor -> files_ index
  std::map<std::string, std::string> metadata_;
};

// Writes one .safetensors file atomically (see the contract above).
void write_safetensors(const std::string& path, const std::vector<TensorData>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes `dir`/model.safetensors, or shards plus model.safetensors.index.json
// when the tensors total more than max_shard_bytes (> 0). `dir` is created
// if missing (one level). `metadata` goes into every file's __metadata__ and
// the index's "metadata", where "total_size" (the tensors' bytes) is added.
void write_sharded(const std::string& dir, const std::vector<TensorData>& tensors,
                   uint64_t max_shard_bytes,
                   const std::map<std::string, std::string>& metadata = {});

// Half-precision conversions. F16 is IEEE binary16 (subnormals, inf and NaN
// kept); BF16 is the top half of a float32. float -> 16 bits rounds to
// nearest, ties to even; values beyond the F16 range become +-inf; NaN stays
// a (quiet) NaN.
float f16_to_float(uint16_t h);
float bf16_to_float(uint16_t b);
uint16_t float_to_f16(float f);
uint16_t float_to_bf16(float f);

// Converts a F32, F16, BF16 or F64 tensor to float32: `out` holds numel()
// floats. Other dtypes throw std::invalid_argument.
void to_float32(const TensorView& t, float* out);

// Converts n floats to `dtype` (F32, F16 or BF16; else std::invalid_argument)
// into `out`, which holds n * dtype_size(dtype) bytes.
void from_float32(const float* in, size_t n, std::string_view dtype, void* out);

}  // namespace tracelm
