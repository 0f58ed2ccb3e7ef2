#include "ingest/trace_spill.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace tracelm {

namespace {

// Record layout (host byte order; the files never leave the process):
//   u32 length of the whole record | u64 trace-id hash | u64 seq |
//   i64 timestamp | i64 rt | u8 type | u8 status | u8 len[5] |
//   bytes of traceid, service, rpc_id, um, dm
constexpr size_t kFixed = 4 + 8 + 8 + 8 + 8 + 1 + 1 + 5;

template <typename T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint32_t rec_len(const char* rec) { return load<uint32_t>(rec); }
uint64_t rec_hash(const char* rec) { return load<uint64_t>(rec + 4); }
std::string_view rec_traceid(const char* rec) {
  return std::string_view(rec + kFixed, static_cast<uint8_t>(rec[kFixed - 5]));
}

SpillRow decode(const char* rec) {
  SpillRow r;
  r.seq = load<uint64_t>(rec + 12);
  r.timestamp_ms = load<int64_t>(rec + 20);
  r.rt_ms = load<int64_t>(rec + 28);
  r.type = static_cast<CallType>(rec[36]);
  r.status = static_cast<RowReject>(rec[37]);
  const char* p = rec + kFixed;
  std::string_view* fs[5] = {&r.traceid, &r.service, &r.rpc_id, &r.um, &r.dm};
  for (int i = 0; i < 5; ++i) {
    size_t l = static_cast<uint8_t>(rec[38 + i]);
    *fs[i] = std::string_view(p, l);
    p += l;
  }
  return r;
}

// Groups the records of a blob by trace id: traces in order of first
// appearance, rows in blob order. O(rows) with an open-addressing table.
void group(std::string_view blob, std::vector<const char*>& out, std::vector<uint32_t>& begin) {
  std::vector<const char*> recs;
  const char* end = blob.data() + blob.size();
  for (const char* p = blob.data(); p + kFixed <= end; p += rec_len(p)) {
    if (rec_len(p) < kFixed || p + rec_len(p) > end)
      throw std::runtime_error("corrupt spill record");
    recs.push_back(p);
  }
  size_t cap = 16;
  while (cap < recs.size() * 2) cap <<= 1;
  std::vector<uint32_t> slot(cap, UINT32_MAX);  // -> trace index
  std::vector<const char*> first;               // trace index -> its first record
  std::vector<uint32_t> trace_of(recs.size()), count;
  for (size_t i = 0; i < recs.size(); ++i) {
    uint64_t h = rec_hash(recs[i]);
    std::string_view id = rec_traceid(recs[i]);
    for (size_t s = h & (cap - 1);; s = (s + 1) & (cap - 1)) {
      uint32_t t = slot[s];
      if (t == UINT32_MAX) {
        t = slot[s] = static_cast<uint32_t>(first.size());
        first.push_back(recs[i]);
        count.push_back(0);
      }
      if (rec_hash(first[t]) == h && rec_traceid(first[t]) == id) {
        trace_of[i] = t;
        ++count[t];
        break;
      }
    }
  }
  begin.assign(first.size() + 1, 0);
  for (size_t t = 0; t < first.size(); ++t) begin[t + 1] = begin[t] + count[t];
  out.resize(recs.size());
  std::vector<uint32_t> fill(begin.begin(), begin.end() - 1);
  for (size_t i = 0; i < recs.size(); ++i) out[fill[trace_of[i]]++] = recs[i];
}

}  // namespace

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

TraceSpill::TraceSpill(Options opt) : opt_(std::move(opt)) {
  if (opt_.partitions == 0) opt_.partitions = 1;
  if (opt_.tmp_dir.empty()) {
    const char* t = std::getenv("TMPDIR");
    opt_.tmp_dir = t && *t ? t : "/tmp";
  }
}

TraceSpill::~TraceSpill() {
  for (size_t p = 0; p < files_.size(); ++p) {
    if (files_[p]) {
      std::fclose(files_[p]);
      ::unlink(partition_path(p).c_str());
    }
  }
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

std::string TraceSpill::partition_path(size_t p) const {
  return fmt::format("{}/p{:04d}", dir_, p);
}

void TraceSpill::add(uint64_t seq, const RawRow& row, RowReject status) {
  bool keep = status == RowReject::kNone;
  std::string_view fs[5] = {row.traceid, keep ? row.service : std::string_view(),
                            keep ? row.rpc_id : std::string_view(),
                            keep ? row.um : std::string_view(), keep ? row.dm : std::string_view()};
  // Assemble the record on the stack (each field <= 255 bytes, checked by
  // parse_row), then append it with one copy.
  char rec[kFixed + 5 * 255];
  uint64_t h = fnv1a64(row.traceid);
  uint8_t type = static_cast<uint8_t>(row.type), st = static_cast<uint8_t>(status);
  std::memcpy(rec + 4, &h, 8);
  std::memcpy(rec + 12, &seq, 8);
  std::memcpy(rec + 20, &row.timestamp_ms, 8);
  std::memcpy(rec + 28, &row.rt_ms, 8);
  rec[36] = static_cast<char>(type);
  rec[37] = static_cast<char>(st);
  uint32_t len = static_cast<uint32_t>(kFixed);
  for (int i = 0; i < 5; ++i) {
    rec[38 + i] = static_cast<char>(static_cast<uint8_t>(fs[i].size()));
    if (!fs[i].empty()) std::memcpy(rec + len, fs[i].data(), fs[i].size());
    len += static_cast<uint32_t>(fs[i].size());
  }
  std::memcpy(rec, &len, 4);
  ++rows_;
  if (spilled_) {
    append(h % opt_.partitions, rec, len);
    return;
  }
  if (mem_.size() + len > mem_.capacity() &&
      std::max<size_t>(mem_.capacity() * 2, 1 << 20) > opt_.memory_budget) {
    spill_memory();
    append(h % opt_.partitions, rec, len);
    return;
  }
  mem_.append(rec, len);
}

void TraceSpill::append(size_t p, const char* rec, size_t len) {
  std::string& b = bufs_[p];
  if (b.capacity() < part_buffer_) b.reserve(part_buffer_);
  b.append(rec, len);
  if (b.size() + 1300 >= part_buffer_) flush(p);  // 1300 > the longest record
}

void TraceSpill::flush(size_t p) {
  std::string& b = bufs_[p];
  if (b.empty()) return;
  if (!files_[p]) {
    files_[p] = std::fopen(partition_path(p).c_str(), "w+b");
    if (!files_[p])
      throw std::runtime_error(
          fmt::format("cannot create spill file {}: {}", partition_path(p), std::strerror(errno)));
  }
  if (std::fwrite(b.data(), 1, b.size(), files_[p]) != b.size())
    throw std::runtime_error(fmt::format("cannot write spill file {}: {} (disk full?)",
                                         partition_path(p), std::strerror(errno)));
  spilled_bytes_ += b.size();
  b.clear();
}

void TraceSpill::spill_memory() {
  std::string tmpl = opt_.tmp_dir + "/tracelm-spill-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::runtime_error(fmt::format("cannot create a spill directory under {}: {}",
                                         opt_.tmp_dir, std::strerror(errno)));
  dir_ = tmpl;
  spilled_ = true;
  // Partition buffers share the budget, between 4 KiB and 256 KiB each.
  part_buffer_ = std::clamp<size_t>(opt_.memory_budget / opt_.partitions, 4 << 10, 256 << 10);
  bufs_.resize(opt_.partitions);
  files_.assign(opt_.partitions, nullptr);
  for (const char* p = mem_.data(); p < mem_.data() + mem_.size(); p += rec_len(p))
    append(rec_hash(p) % opt_.partitions, p, rec_len(p));
  std::string().swap(mem_);
}

void TraceSpill::Partition::rows(size_t t, std::vector<SpillRow>& out) const {
  out.clear();
  for (uint32_t i = begin_[t]; i < begin_[t + 1]; ++i) out.push_back(decode(recs_[i]));
}

void TraceSpill::Partition::prefetch(size_t t) const {
  if (t >= num_traces()) return;
  for (uint32_t i = begin_[t]; i < begin_[t + 1]; ++i) {
    __builtin_prefetch(recs_[i]);
    __builtin_prefetch(recs_[i] + 64);
  }
}

void TraceSpill::reserve_for_input(uint64_t bytes) {
  // Stored records are about 80% of the CSV size.
  if (!spilled_) mem_.reserve(std::min<uint64_t>(bytes, opt_.memory_budget));
}

void TraceSpill::for_each_partition(const std::function<void(const Partition&)>& fn) {
  Partition part;
  if (!spilled_) {
    group(mem_, part.recs_, part.begin_);
    fn(part);
    return;
  }
  std::string blob;
  for (size_t p = 0; p < bufs_.size(); ++p) {
    blob.clear();
    if (files_[p]) {
      flush(p);
      std::fflush(files_[p]);
      long size = std::ftell(files_[p]);
      blob.resize(static_cast<size_t>(size));
      std::rewind(files_[p]);
      if (std::fread(blob.data(), 1, blob.size(), files_[p]) != blob.size())
        throw std::runtime_error("cannot read spill file " + partition_path(p));
      std::fclose(files_[p]);
      files_[p] = nullptr;
      ::unlink(partition_path(p).c_str());
    } else {
      blob.swap(bufs_[p]);
    }
    std::string().swap(bufs_[p]);
    group(blob, part.recs_, part.begin_);
    fn(part);
  }
}

}  // namespace tracelm
