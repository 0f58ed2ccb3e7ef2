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

// Record layout (little-endian, host order; files never leave the process):
//   u32 length of the whole record | u64 seq | i64 timestamp | i64 rt |
//   u8 type | u8 status | u8 len[5] | bytes of traceid, service, rpc_id, um, dm
constexpr size_t kFixed = 4 + 8 + 8 + 8 + 1 + 1 + 5;

template <typename T>
void put(std::string& b, T v) {
  b.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
T get(const char*& p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return v;
}

void decode_all(std::string_view blob, std::vector<SpillRow>& out) {
  const char* p = blob.data();
  const char* end = p + blob.size();
  while (p + kFixed <= end) {
    const char* rec = p;
    uint32_t len = get<uint32_t>(p);
    if (len < kFixed || rec + len > end) throw std::runtime_error("corrupt spill record");
    SpillRow r;
    r.seq = get<uint64_t>(p);
    r.timestamp_ms = get<int64_t>(p);
    r.rt_ms = get<int64_t>(p);
    r.type = static_cast<CallType>(get<uint8_t>(p));
    r.status = static_cast<RowReject>(get<uint8_t>(p));
    uint8_t l[5];
    for (auto& x : l) x = get<uint8_t>(p);
    std::string_view* fs[5] = {&r.traceid, &r.service, &r.rpc_id, &r.um, &r.dm};
    for (int i = 0; i < 5; ++i) {
      *fs[i] = std::string_view(p, l[i]);
      p += l[i];
    }
    out.push_back(r);
    p = rec + len;
  }
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
  buffers_.resize(opt_.partitions);
  files_.assign(opt_.partitions, nullptr);
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

std::string TraceSpill::partition_path(size_t p) const { return fmt::format("{}/p{:04d}", dir_, p); }

void TraceSpill::add(uint64_t seq, const RawRow& row, RowReject status) {
  size_t p = opt_.partitions == 1 ? 0 : fnv1a64(row.traceid) % opt_.partitions;
  std::string& b = buffers_[p];
  bool keep = status == RowReject::kNone;
  std::string_view fs[5] = {row.traceid, keep ? row.service : std::string_view(),
                            keep ? row.rpc_id : std::string_view(),
                            keep ? row.um : std::string_view(), keep ? row.dm : std::string_view()};
  uint32_t len = static_cast<uint32_t>(kFixed);
  for (auto& f : fs) len += static_cast<uint32_t>(f.size());  // each <= 255 (checked by parse_row)
  size_t before = b.size();
  put<uint32_t>(b, len);
  put<uint64_t>(b, seq);
  put<int64_t>(b, row.timestamp_ms);
  put<int64_t>(b, row.rt_ms);
  put<uint8_t>(b, static_cast<uint8_t>(row.type));
  put<uint8_t>(b, static_cast<uint8_t>(status));
  for (auto& f : fs) put<uint8_t>(b, static_cast<uint8_t>(f.size()));
  for (auto& f : fs) b.append(f);
  buffered_ += b.size() - before;
  ++rows_;
  if (buffered_ > opt_.memory_budget) flush_all();
}

void TraceSpill::flush_all() {
  if (dir_.empty()) {
    std::string tmpl = opt_.tmp_dir + "/tracelm-spill-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error(fmt::format("cannot create a spill directory under {}: {}",
                                           opt_.tmp_dir, std::strerror(errno)));
    dir_ = tmpl;
  }
  spilled_ = true;
  for (size_t p = 0; p < buffers_.size(); ++p) {
    std::string& b = buffers_[p];
    if (b.empty()) continue;
    if (!files_[p]) {
      files_[p] = std::fopen(partition_path(p).c_str(), "w+b");
      if (!files_[p])
        throw std::runtime_error(fmt::format("cannot create spill file {}: {}",
                                             partition_path(p), std::strerror(errno)));
    }
    if (std::fwrite(b.data(), 1, b.size(), files_[p]) != b.size())
      throw std::runtime_error(fmt::format("cannot write spill file {}: {} (disk full?)",
                                           partition_path(p), std::strerror(errno)));
    spilled_bytes_ += b.size();
    b.clear();
    b.shrink_to_fit();
  }
  buffered_ = 0;
}

void TraceSpill::for_each_partition(const std::function<void(std::vector<SpillRow>&)>& fn) {
  std::vector<SpillRow> rows;
  if (!spilled_) {
    // Everything is in memory: visit all partitions at once, in input order.
    for (const std::string& b : buffers_) decode_all(b, rows);
    std::sort(rows.begin(), rows.end(),
              [](const SpillRow& a, const SpillRow& b) { return a.seq < b.seq; });
    fn(rows);
    return;
  }
  std::string blob;
  for (size_t p = 0; p < buffers_.size(); ++p) {
    blob.clear();
    if (files_[p]) {
      std::fflush(files_[p]);
      long size = std::ftell(files_[p]);
      blob.resize(static_cast<size_t>(size));
      std::rewind(files_[p]);
      if (std::fread(blob.data(), 1, blob.size(), files_[p]) != blob.size())
        throw std::runtime_error("cannot read spill file " + partition_path(p));
      std::fclose(files_[p]);
      files_[p] = nullptr;
      ::unlink(partition_path(p).c_str());
    }
    blob += buffers_[p];
    std::string().swap(buffers_[p]);
    rows.clear();
    decode_all(blob, rows);
    fn(rows);
  }
}

}  // namespace tracelm
