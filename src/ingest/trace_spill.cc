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

// Groups the records of `pieces` (each a sequence of whole records) by trace
// id: traces in order of first appearance, rows in input order. O(rows) with
// an open-addressing table.
void group(const std::vector<std::string_view>& pieces, std::vector<const char*>& out,
           std::vector<uint32_t>& begin) {
  std::vector<const char*> recs;
  for (std::string_view blob : pieces) {
    const char* end = blob.data() + blob.size();
    for (const char* p = blob.data(); p < end; p += rec_len(p)) {
      if (p + kFixed > end || rec_len(p) < kFixed || p + rec_len(p) > end)
        throw std::runtime_error("corrupt spill record");
      recs.push_back(p);
    }
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

// Records are held in chunks of this size; chunks freed while reading (the
// single group routed to partitions, a partition moved to disk) are reused,
// at most kMaxSpare of them kept.
constexpr size_t kChunk = size_t{256} << 10, kMaxSpare = 64;

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
  for (size_t p = 0; p < parts_.size(); ++p) {
    if (parts_[p].file) {
      std::fclose(parts_[p].file);
      ::unlink(partition_path(p).c_str());
    }
  }
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

std::string TraceSpill::partition_path(size_t p) const {
  return fmt::format("{}/p{:04d}", dir_, p);
}

size_t TraceSpill::encode(const RawRow& row, RowReject status, char* rec) {
  bool keep = status == RowReject::kNone;
  std::string_view fs[5] = {row.traceid, keep ? row.service : std::string_view(),
                            keep ? row.rpc_id : std::string_view(),
                            keep ? row.um : std::string_view(), keep ? row.dm : std::string_view()};
  uint64_t h = fnv1a64(row.traceid), seq = 0;
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
  return len;
}

void TraceSpill::add(uint64_t seq, const RawRow& row, RowReject status) {
  // Each field <= 255 bytes, checked by the callers (parse_row, the span readers).
  char rec[kMaxRecord];
  encode(row, status, rec);
  add_encoded(seq, rec);
}

void TraceSpill::Chunks::append(const char* rec, size_t len, std::vector<std::string>& spare) {
  if (chunks.empty() || chunks.back().size() + len > chunks.back().capacity()) {
    if (!spare.empty()) {
      chunks.push_back(std::move(spare.back()));
      spare.pop_back();
    } else {
      chunks.emplace_back();
      chunks.back().reserve(kChunk);
    }
  }
  chunks.back().append(rec, len);
  bytes += len;
}

void TraceSpill::Chunks::release(std::vector<std::string>& spare) {
  for (std::string& c : chunks) {
    if (spare.size() < kMaxSpare) {
      c.clear();
      spare.push_back(std::move(c));
    }
  }
  chunks.clear();
  bytes = 0;
}

void TraceSpill::add_encoded(uint64_t seq, const char* rec) {
  const size_t len = rec_len(rec);
  char copy[kMaxRecord];  // the record with its sequence number
  std::memcpy(copy, rec, len);
  std::memcpy(copy + 12, &seq, 8);
  ++rows_;
  if (!partitioned_ && held_ + len > opt_.memory_budget) partition_all();
  if (partitioned_) {
    route(copy, len);
    return;
  }
  whole_.append(copy, len, spare_);
  held_ += len;
}

void TraceSpill::route(const char* rec, size_t len) {
  size_t p = rec_hash(rec) % opt_.partitions;
  Part& part = parts_[p];
  if (part.file) {
    write(p, rec, len);
    return;
  }
  part.mem.append(rec, len, spare_);
  held_ += len;
  while (held_ > opt_.memory_budget && move_largest_to_disk()) {
  }
}

void TraceSpill::partition_all() {
  partitioned_ = true;
  parts_.resize(opt_.partitions);
  // Write buffers share the budget, between 4 KiB and 256 KiB each.
  part_buffer_ = std::clamp<size_t>(opt_.memory_budget / opt_.partitions, 4 << 10, 256 << 10);
  Chunks whole = std::move(whole_);
  whole_ = Chunks();
  held_ = 0;
  for (std::string& c : whole.chunks) {
    for (const char* p = c.data(); p < c.data() + c.size(); p += rec_len(p)) route(p, rec_len(p));
    c.clear();  // reused as it is routed
    spare_.push_back(std::move(c));
  }
}

bool TraceSpill::move_largest_to_disk() {
  size_t best = parts_.size();
  for (size_t p = 0; p < parts_.size(); ++p)
    if (!parts_[p].file && (best == parts_.size() || parts_[p].mem.bytes > parts_[best].mem.bytes))
      best = p;
  if (best == parts_.size() || parts_[best].mem.bytes == 0) return false;  // only buffers left
  if (dir_.empty()) {
    std::string tmpl = opt_.tmp_dir + "/tracelm-spill-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error(fmt::format("cannot create a spill directory under {}: {}",
                                           opt_.tmp_dir, std::strerror(errno)));
    dir_ = tmpl;
  }
  Part& part = parts_[best];
  part.file = std::fopen(partition_path(best).c_str(), "w+b");
  if (!part.file)
    throw std::runtime_error(
        fmt::format("cannot create spill file {}: {}", partition_path(best), std::strerror(errno)));
  held_ -= part.mem.bytes;
  held_ += part_buffer_;
  for (std::string& c : part.mem.chunks) write(best, c.data(), c.size());
  flush(best);
  part.mem.release(spare_);
  return true;
}

void TraceSpill::write(size_t p, const char* data, size_t len) {
  std::string& b = parts_[p].buf;
  if (b.size() + len > part_buffer_) flush(p);
  if (len >= part_buffer_) {  // a whole chunk: straight to the file
    write_file(p, data, len);
    return;
  }
  if (b.capacity() < part_buffer_) b.reserve(part_buffer_);
  b.append(data, len);
}

void TraceSpill::flush(size_t p) {
  std::string& b = parts_[p].buf;
  write_file(p, b.data(), b.size());
  b.clear();
}

void TraceSpill::write_file(size_t p, const char* data, size_t len) {
  if (len == 0) return;
  if (std::fwrite(data, 1, len, parts_[p].file) != len)
    throw std::runtime_error(fmt::format("cannot write spill file {}: {} (disk full?)",
                                         partition_path(p), std::strerror(errno)));
  spilled_bytes_ += len;
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

void TraceSpill::finish() {
  for (size_t p = 0; p < parts_.size(); ++p)
    if (parts_[p].file) {
      flush(p);
      std::string().swap(parts_[p].buf);
      if (std::fflush(parts_[p].file) != 0)
        throw std::runtime_error(fmt::format("cannot write spill file {}: {} (disk full?)",
                                             partition_path(p), std::strerror(errno)));
    }
  spare_.clear();
  spare_.shrink_to_fit();
}

TraceSpill::Partition TraceSpill::load(size_t p) {
  Partition part;
  Chunks& mem = partitioned_ ? parts_[p].mem : whole_;
  if (partitioned_ && parts_[p].file) {
    FILE* f = parts_[p].file;
    long size = std::ftell(f);
    part.data_.emplace_back(static_cast<size_t>(size), '\0');
    std::rewind(f);
    if (std::fread(part.data_[0].data(), 1, part.data_[0].size(), f) != part.data_[0].size())
      throw std::runtime_error("cannot read spill file " + partition_path(p));
    std::fclose(f);
    parts_[p].file = nullptr;
    ::unlink(partition_path(p).c_str());
  } else {
    part.data_ = std::move(mem.chunks);
    mem = Chunks();
  }
  std::vector<std::string_view> pieces(part.data_.begin(), part.data_.end());
  group(pieces, part.recs_, part.begin_);
  return part;
}

void TraceSpill::for_each_partition(const std::function<void(const Partition&)>& fn) {
  finish();
  for (size_t p = 0; p < num_partitions(); ++p) fn(load(p));
}

}  // namespace tracelm
