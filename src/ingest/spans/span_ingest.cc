#include "ingest/spans/span_ingest.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ingest/ingest.h"
#include "ingest/trace_spill.h"
#include "io/byte_source.h"
#include "io/csv.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "util/json_text.h"
#include "util/ordered_parallel.h"
#include "util/parallel.h"
#include "util/progress.h"

namespace tracelm {

namespace {

// Replays `head`, then the rest of the source.
class PrefixSource : public ByteSource {
 public:
  PrefixSource(std::string head, ByteSource& rest) : head_(std::move(head)), rest_(rest) {}
  size_t read(char* buf, size_t n) override {
    if (pos_ < head_.size()) {
      size_t k = std::min(n, head_.size() - pos_);
      std::memcpy(buf, head_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    return rest_.read(buf, n);
  }
  const std::string& name() const override { return rest_.name(); }
  uint64_t file_bytes_read() const override { return rest_.file_bytes_read(); }
  uint64_t file_size() const override { return rest_.file_size(); }

 private:
  std::string head_;
  size_t pos_ = 0;
  ByteSource& rest_;
};

// Reads the underlying source on its own thread (decompression), a few 1 MiB
// chunks ahead of the parser. Errors are rethrown by read().
class ReadAheadSource : public ByteSource {
 public:
  explicit ReadAheadSource(ByteSource& src) : src_(src), name_(src.name()) {
    worker_ = std::thread([this] { run(); });
  }
  ~ReadAheadSource() override {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  size_t read(char* buf, size_t n) override {
    std::unique_lock<std::mutex> l(m_);
    while (pos_ >= cur_.size()) {
      if (!cur_.empty()) {
        cur_.clear();
        pos_ = 0;
      }
      cv_.wait(l, [&] { return !q_.empty() || done_; });
      if (!q_.empty()) {
        cur_ = std::move(q_.front());
        q_.pop_front();
        pos_ = 0;
        cv_.notify_all();
      } else {
        if (error_) std::rethrow_exception(error_);
        return 0;
      }
    }
    size_t k = std::min(n, cur_.size() - pos_);
    std::memcpy(buf, cur_.data() + pos_, k);
    pos_ += k;
    bytes_ = src_bytes_;
    return k;
  }
  const std::string& name() const override { return name_; }
  uint64_t file_bytes_read() const override { return bytes_; }
  uint64_t file_size() const override { return src_.file_size(); }

 private:
  void run() {
    try {
      for (;;) {
        std::string chunk(size_t{1} << 20, '\0');
        size_t got = 0;
        while (got < chunk.size()) {
          size_t k = src_.read(chunk.data() + got, chunk.size() - got);
          if (k == 0) break;
          got += k;
        }
        chunk.resize(got);
        std::unique_lock<std::mutex> l(m_);
        src_bytes_ = src_.file_bytes_read();
        if (got == 0 || stop_) break;
        q_.push_back(std::move(chunk));
        cv_.notify_all();
        cv_.wait(l, [&] { return q_.size() < 4 || stop_; });
        if (stop_) break;
      }
    } catch (...) {
      std::lock_guard<std::mutex> l(m_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> l(m_);
    done_ = true;
    cv_.notify_all();
  }
  ByteSource& src_;
  std::string name_;
  std::thread worker_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> q_;
  std::string cur_;
  size_t pos_ = 0;
  bool stop_ = false, done_ = false;
  std::exception_ptr error_;
  uint64_t src_bytes_ = 0;
  std::atomic<uint64_t> bytes_{0};  // read by the progress line on another thread
};

std::string read_head(ByteSource& src, size_t n) {
  std::string h(n, '\0');
  size_t got = 0;
  while (got < n) {
    size_t k = src.read(h.data() + got, n - got);
    if (k == 0) break;
    got += k;
  }
  h.resize(got);
  return h;
}

// Spill record packing: the TraceSpill row fields carry a span.
//   traceid = trace id, service = service, rpc_id = span id,
//   um = parent id ("\x1e" + id when the parent is in another trace),
//   dm = name + '\x1f' + peer, type byte = kind | hint << 3,
//   timestamp = start ns, rt = end ns.
constexpr char kOtherTrace = '\x1e', kSep = '\x1f';

// What a span's spill record holds: the fields a span table has, and what
// resolve() and the attributes add.
struct SpanRecord {
  SpanTableRow row;
  std::string_view peer, rpc_id_attr, service_attr, trace_id_attr;
  bool parent_in_other_trace = false;
  CallType hint = CallType::kUnknown;
};

// Writes a span's spill record to out[0, TraceSpill::kMaxRecord); returns its
// length, or 0 when an id or the service is too long to store.
size_t encode_record(const SpanRecord& rec, std::string& scratch_um, std::string& scratch_dm,
                     char* out) {
  const SpanTableRow& s = rec.row;
  if (s.trace_id.size() > 255 || s.span_id.size() > 255 || s.parent_id.size() > 254 ||
      s.service.size() > 255)
    return 0;
  RawRow r;
  r.traceid = s.trace_id;
  r.service = s.service;
  r.rpc_id = s.span_id;
  if (rec.parent_in_other_trace) {
    scratch_um.assign(1, kOtherTrace);
    scratch_um += s.parent_id;
    r.um = scratch_um;
  } else {
    r.um = s.parent_id;
  }
  // dm = name \x1f peer \x1f rpc id \x1f tracelm.service \x1f tracelm.trace_id;
  // an extra longer than 100 bytes is dropped, the name gets what is left.
  std::string_view extras[4] = {rec.peer, rec.rpc_id_attr, rec.service_attr, rec.trace_id_attr};
  size_t room = 255 - 4;
  for (auto& x : extras) {
    if (x.size() > 100 || x.size() > room) {
      x = {};
    } else {
      room -= x.size();
    }
  }
  scratch_dm.assign(s.name.substr(0, room));
  for (auto& x : extras) {
    scratch_dm += kSep;
    scratch_dm += x;
  }
  r.dm = scratch_dm;
  r.type = static_cast<CallType>(static_cast<uint8_t>(s.kind) |
                                 static_cast<uint8_t>(static_cast<uint8_t>(rec.hint) << 3));
  r.timestamp_ms = s.start_ns;
  r.rt_ms = s.end_ns;
  return TraceSpill::encode(r, RowReject::kNone, out);
}

// The record of a (resolved) span.
size_t encode_span(const Span& s, std::string& scratch_um, std::string& scratch_dm, char* out) {
  SpanRecord r{
      {s.trace_id, s.span_id, s.parent_id, s.service, s.name, s.kind, s.start_ns, s.end_ns},
      s.peer,
      s.rpc_id_attr,
      s.service_attr,
      s.trace_id_attr,
      !s.parent_trace_id.empty(),
      s.hint};
  return encode_record(r, scratch_um, scratch_dm, out);
}

// The record of a span-table row: the record of the span parse() would give.
size_t encode_row(const SpanTableRow& row, SpanResolveCache& cache, std::string& scratch_um,
                  std::string& scratch_dm, char* out) {
  const SpanResolveCache::Resolved& res = cache.resolve(row.kind, row.name);
  SpanRecord r{row, res.peer, {}, {}, {}, false, res.hint};
  return encode_record(r, scratch_um, scratch_dm, out);
}

// The record marking a trace as holding an unreadable span, or 0 when the
// trace id cannot be stored (empty or too long).
size_t encode_bad(std::string_view trace_id, char* out) {
  if (trace_id.empty() || trace_id.size() > 255) return 0;
  RawRow r;
  r.traceid = trace_id;
  return TraceSpill::encode(r, RowReject::kMalformed, out);
}

// One parsed span-table row and the spill record it gives: the span's, or
// for a row or span that is dropped, the marker of its trace (when its trace
// id is known). Records are kept in the row's block (RowBatch::recs).
struct SpanRowResult {
  SpanRowError err = SpanRowError::kNone;
  bool skip = false;       // a blank line
  bool too_long = false;   // parsed, but a field is too long to store
  uint32_t rec_begin = 0;  // its record: recs[block][rec_begin, rec_end)
  uint32_t rec_end = 0;
};

// A batch of lines (copied) and their parses. Rows are parsed in blocks of
// kBlockRows; each block's records go to its own buffer, so that blocks can
// be parsed on different threads.
struct RowBatch {
  static constexpr size_t kBlockRows = 1024;
  std::string text;
  std::vector<size_t> begin;  // line k = text[begin[k], begin[k+1])
  std::vector<uint64_t> line_no;
  std::vector<uint8_t> overlong;
  std::vector<SpanRowResult> rows;
  std::vector<std::string> recs;  // per block
  size_t size() const { return line_no.size(); }
  size_t blocks() const { return (size() + kBlockRows - 1) / kBlockRows; }
  std::string_view line(size_t k) const {
    return std::string_view(text).substr(begin[k], begin[k + 1] - begin[k]);
  }
  std::string_view record(size_t k) const {
    const SpanRowResult& r = rows[k];
    return std::string_view(recs[k / kBlockRows]).substr(r.rec_begin, r.rec_end - r.rec_begin);
  }
  void clear() {
    text.clear();
    begin.assign(1, 0);
    line_no.clear();
    overlong.clear();
  }
};

// Parses block `blk` of a batch into its rows and records.
void parse_block(RowBatch& b, const SpanTableReader& reader, size_t blk, SpanResolveCache& cache) {
  std::vector<std::string_view> fields;
  std::string scratch, um, dm;
  SpanTableRow row;
  char rec[TraceSpill::kMaxRecord];
  std::string& recs = b.recs[blk];
  recs.clear();
  const size_t end = std::min(b.size(), (blk + 1) * RowBatch::kBlockRows);
  for (size_t k = blk * RowBatch::kBlockRows; k < end; ++k) {
    SpanRowResult& r = b.rows[k];
    r = SpanRowResult();
    size_t len = 0;
    if (b.overlong[k] || !split_csv_line(b.line(k), fields, scratch)) {
      r.err = SpanRowError::kMalformed;
    } else if (fields.size() == 1 && fields[0].empty()) {  // blank line
      r.skip = true;
    } else if ((r.err = reader.parse(fields, &row)) != SpanRowError::kNone) {
      if (r.err != SpanRowError::kMalformed && r.err != SpanRowError::kMissingId)
        len = encode_bad(reader.trace_of(fields), rec);
    } else if ((len = encode_row(row, cache, um, dm, rec)) == 0) {
      r.too_long = true;
      len = encode_bad(row.trace_id, rec);
    }
    r.rec_begin = static_cast<uint32_t>(recs.size());
    recs.append(rec, len);
    r.rec_end = static_cast<uint32_t>(recs.size());
  }
}

// Parses the blocks of a batch, on any number of threads at once: each
// call of work() takes the next block until none is left.
class ParseJob {
 public:
  ParseJob(RowBatch& b, const SpanTableReader& reader) : b_(b), reader_(reader) {
    b_.rows.resize(b_.size());
    b_.recs.resize(std::max(b_.recs.size(), b_.blocks()));
  }
  void work() {
    SpanResolveCache cache;
    for (size_t k; (k = next_.fetch_add(1)) < b_.blocks();) parse_block(b_, reader_, k, cache);
  }

 private:
  RowBatch& b_;
  const SpanTableReader& reader_;
  std::atomic<size_t> next_{0};
};

// Reads the rows after the header, parses them and calls on_row(batch, k)
// for each row k that is not blank, in input order, on this thread.
// threads > 1: threads - 1 other threads parse batch k+1 and one more reads
// batch k+2 while this one delivers batch k, then helps to parse.
void parse_span_rows(LineReader& lines, const SpanTableReader& reader, size_t threads,
                     const std::function<void(const RowBatch&, size_t)>& on_row) {
  constexpr size_t kBatchLines = 16384, kBatchBytes = size_t{4} << 20;
  auto fill = [&](RowBatch& b) {
    b.clear();
    std::string_view line;
    bool overlong = false;
    while (b.size() < kBatchLines && b.text.size() < kBatchBytes && lines.next(&line, &overlong)) {
      b.text += line;
      b.begin.push_back(b.text.size());
      b.line_no.push_back(lines.line_no());
      b.overlong.push_back(overlong);
    }
    return b.size() > 0;
  };
  auto deliver = [&](const RowBatch& b) {
    for (size_t k = 0; k < b.size(); ++k)
      if (!b.rows[k].skip) on_row(b, k);
  };
  RowBatch buf[3];
  if (threads <= 1) {
    while (fill(buf[0])) {
      ParseJob(buf[0], reader).work();
      deliver(buf[0]);
    }
    return;
  }
  // Pipeline over three batches: while this thread delivers batch k, the
  // workers parse batch k+1 (this thread helps once it has delivered) and
  // another thread reads batch k+2.
  RowBatch *ready = &buf[0], *parsing = &buf[1], *reading = &buf[2];
  if (!fill(*ready)) return;
  ParseJob(*ready, reader).work();
  bool have_next = fill(*parsing);
  std::mutex err_mutex;
  std::exception_ptr worker_err;
  auto caught = [&](std::function<void()> fn) {
    return [&, fn = std::move(fn)] {
      try {
        fn();
      } catch (...) {
        std::lock_guard<std::mutex> l(err_mutex);
        if (!worker_err) worker_err = std::current_exception();
      }
    };
  };
  for (;;) {
    std::optional<ParseJob> job;
    std::vector<std::thread> workers;
    bool more = false;
    if (have_next) {
      job.emplace(*parsing, reader);
      for (size_t t = 1; t < threads; ++t) workers.emplace_back(caught([&] { job->work(); }));
      workers.emplace_back(caught([&] { more = fill(*reading); }));
    }
    std::exception_ptr err;
    try {
      deliver(*ready);
      if (job) job->work();  // helps with the rest of the batch
    } catch (...) {
      err = std::current_exception();
    }
    for (std::thread& w : workers) w.join();
    if (err) std::rethrow_exception(err);
    if (worker_err) std::rethrow_exception(worker_err);
    if (!have_next) return;
    std::swap(ready, parsing);    // the parsed batch is delivered next
    std::swap(parsing, reading);  // the batch just read is parsed next
    have_next = more;
  }
}

void unspill(const SpillRow& r, Span& s) {
  s.parent_trace_id.clear();
  s.trace_id.assign(r.traceid);
  s.service.assign(r.service);
  s.span_id.assign(r.rpc_id);
  if (!r.um.empty() && r.um[0] == kOtherTrace) {
    s.parent_id.assign(r.um.substr(1));
    s.parent_trace_id = "(another trace)";
  } else {
    s.parent_id.assign(r.um);
  }
  std::string_view dm = r.dm;
  std::string* parts[5] = {&s.name, &s.peer, &s.rpc_id_attr, &s.service_attr, &s.trace_id_attr};
  for (std::string* p : parts) {
    size_t k = dm.find(kSep);
    p->assign(dm.substr(0, k));
    dm = k == std::string_view::npos ? std::string_view() : dm.substr(k + 1);
  }
  uint8_t b = static_cast<uint8_t>(r.type);
  s.kind = static_cast<SpanKind>(b & 7);
  s.hint = static_cast<CallType>((b >> 3) & 7);
  s.resolved = true;
  s.start_ns = r.timestamp_ms;
  s.end_ns = r.rt_ms;
}

// Builds the graphs of traces [begin, end) of a partition.
std::vector<SpanGraph> build_traces(const TraceSpill::Partition& part, size_t begin, size_t end,
                                    const SpanGraphOptions& opt) {
  std::vector<SpanGraph> out(end - begin);
  std::vector<SpillRow> rows;
  std::vector<Span> spans;  // reused from trace to trace (their strings keep their buffers)
  for (size_t t = begin; t < end; ++t) {
    part.prefetch(t + 6);
    part.rows(t, rows);
    size_t used = 0;
    uint64_t bad = 0;
    for (const SpillRow& r : rows) {
      if (r.status != RowReject::kNone) {
        ++bad;
        continue;
      }
      if (used == spans.size()) spans.emplace_back();
      unspill(r, spans[used++]);
    }
    SpanGraph& g = out[t - begin];
    if (bad) {
      g.graph.trace_id.assign(rows[0].traceid);
      g.reject = SpanReject::kBadSpan;
      g.detail = fmt::format("{} of {} spans unreadable", bad, rows.size());
      g.spans = rows.size();
    } else {
      g = build_span_graph(std::span<Span>(spans.data(), used), opt);
    }
  }
  return out;
}

}  // namespace

uint64_t SpanIngestStats::traces_rejected_total() const {
  uint64_t n = 0;
  for (uint64_t v : traces_rejected) n += v;
  return n;
}

std::string SpanIngestStats::to_text() const {
  std::string s;
  s += fmt::format("files            {:>12}  ({} streams:", files, streams);
  for (auto& [f, n] : streams_by_format) s += fmt::format(" {} {}", n, f);
  s += ")\n";
  s += fmt::format("bytes            {:>12}\n", bytes);
  if (documents) s += fmt::format("JSON documents   {:>12}\n", documents);
  if (bad_json_lines)
    s += fmt::format("  bad JSON lines {:>12}  (first: {})\n", bad_json_lines, first_bad_json_line);
  s += fmt::format("spans read       {:>12}\n", spans_read);
  for (int i = 1; i < kNumSpanRowErrors; ++i)
    if (rows_rejected[i])
      s += fmt::format("  rows dropped   {:>12}  {}\n", rows_rejected[i],
                       span_row_error_code(static_cast<SpanRowError>(i)));
  for (auto& [r, n] : bad_spans) s += fmt::format("  spans dropped  {:>12}  {}\n", n, r);
  if (duplicate_spans)
    s += fmt::format("  duplicate span ids {:>8}  (first kept)\n", duplicate_spans);
  s += fmt::format("traces           {:>12}\n", traces);
  for (int i = 1; i < kNumSpanRejects; ++i)
    if (traces_rejected[i])
      s += fmt::format("  traces dropped {:>12}  {}\n", traces_rejected[i],
                       span_reject_code(static_cast<SpanReject>(i)));
  s += fmt::format("graphs kept      {:>12}\n", graphs_kept);
  s += fmt::format("calls kept       {:>12}  ({} round to 0 ms, {:.1f}%)\n", calls, zero_ms_calls,
                   calls ? 100.0 * zero_ms_calls / calls : 0.0);
  s += fmt::format("  spans collapsed into their service's call {}\n", collapsed_spans);
  if (clamped_calls)
    s += fmt::format("  calls clamped into their parent (skew within tolerance) {}\n",
                     clamped_calls);
  if (type_fallbacks) s += fmt::format("  call types from the fallback {}\n", type_fallbacks);
  if (peer_fallbacks) s += fmt::format("  peers named 'external' {}\n", peer_fallbacks);
  for (auto& [l, n] : graphs_by_label) s += fmt::format("  label {:<24} {:>8}\n", l, n);
  if (dropped_by_label) s += fmt::format("  dropped by --keep-label {}\n", dropped_by_label);
  if (spilled_bytes) s += fmt::format("spilled bytes    {:>12}\n", spilled_bytes);
  s += fmt::format("time             {:>12.2f} s  (read {:.2f} s, build {:.2f} s)\n", seconds,
                   read_seconds, seconds - read_seconds);
  return s;
}

std::string SpanIngestStats::to_json() const {
  nlohmann::ordered_json j;
  j["files"] = files;
  j["streams"] = streams;
  j["streams_by_format"] = streams_by_format;
  j["bytes"] = bytes;
  j["documents"] = documents;
  j["bad_json_lines"] = bad_json_lines;
  j["spans_read"] = spans_read;
  nlohmann::ordered_json rr = nlohmann::ordered_json::object();
  for (int i = 1; i < kNumSpanRowErrors; ++i)
    rr[std::string(span_row_error_code(static_cast<SpanRowError>(i)))] = rows_rejected[i];
  j["rows_dropped"] = rr;
  j["spans_dropped"] = bad_spans;
  j["duplicate_spans"] = duplicate_spans;
  j["traces"] = traces;
  nlohmann::ordered_json tr = nlohmann::ordered_json::object();
  for (int i = 1; i < kNumSpanRejects; ++i)
    tr[std::string(span_reject_code(static_cast<SpanReject>(i)))] = traces_rejected[i];
  j["traces_dropped"] = tr;
  j["graphs_kept"] = graphs_kept;
  j["calls"] = calls;
  j["zero_ms_calls"] = zero_ms_calls;
  j["collapsed_spans"] = collapsed_spans;
  j["clamped_calls"] = clamped_calls;
  j["type_fallbacks"] = type_fallbacks;
  j["peer_fallbacks"] = peer_fallbacks;
  j["graphs_by_label"] = graphs_by_label;
  j["dropped_by_label"] = dropped_by_label;
  j["spilled_bytes"] = spilled_bytes;
  j["seconds"] = seconds;
  return j.dump();
}

SpanFormat sniff_file_format(const std::string& path) {
  SpanFormat f = SpanFormat::kUnknown;
  bool first = true;
  for_each_stream(path, [&](ByteSource& src) {
    if (!first) return;
    first = false;
    f = detect_span_format(read_head(src, 64 << 10));
  });
  return f;
}

SpanIngestStats ingest_spans(const std::vector<std::string>& inputs, const SpanIngestOptions& opt,
                             const SpanIngestCallbacks& cb) {
  auto t0 = std::chrono::steady_clock::now();
  SpanIngestStats st;
  TraceSpill::Options so;
  so.tmp_dir = opt.tmp_dir;
  so.partitions = opt.partitions;
  so.memory_budget = opt.memory_budget;
  TraceSpill spill(so);
  // Progress on stderr (util/progress.h, as Alibaba ingestion): input bytes
  // read (compressed bytes for compressed files) and spans, then traces built.
  const uint64_t input_bytes = total_size(inputs);
  Progress progress("ingest spans", input_bytes, opt.progress);
  uint64_t done_bytes = 0;
  ByteSource* current = nullptr;
  uint64_t seq = 0;
  auto count_span = [&] {
    if ((++st.spans_read & 0xffff) == 0 && current)
      progress.update(
          done_bytes + current->file_bytes_read(), st.spans_read,
          fmt::format("{} spans, file {} of {}", st.spans_read, st.files, inputs.size()));
  };
  // A trace with an unreadable span: a marker record (when the trace id can
  // be stored) rejects it.
  auto mark_bad = [&](std::string_view trace_id) {
    char rec[TraceSpill::kMaxRecord];
    if (encode_bad(trace_id, rec)) spill.add_encoded(seq, rec);
    ++seq;
  };
  std::string sum, sdm;
  auto add_span = [&](const Span& s) {
    char rec[TraceSpill::kMaxRecord];
    if (!encode_span(s, sum, sdm, rec)) {
      ++st.bad_spans["field_too_long"];
      ++seq;
      mark_bad(s.trace_id);
      return;
    }
    spill.add_encoded(seq++, rec);
    count_span();
  };
  SpanSink sink;
  sink.on_span = [&](Span&& s) { add_span(s); };
  sink.on_bad_span = [&](std::string_view trace, std::string_view) { mark_bad(trace); };

  for (const std::string& path : inputs) {
    ++st.files;
    for_each_stream(path, [&](ByteSource& raw0) {
      ++st.streams;
      ReadAheadSource raw(raw0);
      current = &raw;  // its byte count is kept on this thread
      std::string head = read_head(raw, 64 << 10);
      SpanFormat f = detect_span_format(head);
      PrefixSource src(std::move(head), raw);
      if (f == SpanFormat::kUnknown) {
        std::string h = read_head(src, 200);
        std::string shown;
        for (char c : h.substr(0, h.find('\n')).substr(0, 80))
          shown += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
        if (h.empty()) throw InputError(src.name(), 0, "empty file: no spans");
        throw InputError(src.name(), 1,
                         "not a span format: tried OTLP/JSON, Jaeger JSON, Zipkin v2 JSON, span "
                         "table CSV (a header with trace, span and parent id columns); found '" +
                             shown + "'");
      }
      if (f == SpanFormat::kAlibabaCsv)
        throw InputError(src.name(), 1,
                         "an Alibaba CallGraph CSV among span files: ingest it separately");
      ++st.streams_by_format[std::string(span_format_name(f))];
      if (f == SpanFormat::kSpanTable) {
        LineReader lines(src, opt.max_line);
        std::string_view line;
        bool overlong = false;
        std::vector<std::string_view> fields;
        std::string scratch;
        if (!lines.next(&line, &overlong) || overlong)
          throw InputError(src.name(), 1, "span table without a header line");
        if (!split_csv_line(line, fields, scratch))
          throw InputError(src.name(), 1, "span table header: bad CSV quoting");
        std::optional<SpanTableReader> reader;
        try {
          reader.emplace(fields, opt.columns);
        } catch (const std::invalid_argument& e) {
          throw InputError(src.name(), 1, e.what());
        }
        // Rows are parsed (into spill records) in batches on other threads
        // while this one reads the next batch and spills the previous one
        // (in input order, so the result does not depend on the threads).
        auto on_row = [&](const RowBatch& b, size_t k) {
          const SpanRowResult& r = b.rows[k];
          std::string_view rec = b.record(k);
          if (r.err == SpanRowError::kNone && !r.too_long) {
            spill.add_encoded(seq++, rec.data());
            count_span();
            return;
          }
          if (r.too_long) {
            ++st.bad_spans["field_too_long"];
            ++seq;
          } else {
            ++st.rows_rejected[static_cast<int>(r.err)];
            if (cb.on_rejected_row)
              cb.on_rejected_row(src.name(), b.line_no[k], span_row_error_code(r.err), b.line(k));
            if (r.err == SpanRowError::kMalformed || r.err == SpanRowError::kMissingId) return;
          }
          if (!rec.empty()) spill.add_encoded(seq, rec.data());
          ++seq;
        };
        parse_span_rows(lines, *reader, opt.parse_threads, on_row);
        st.bytes += lines.bytes();
      } else {
        JsonReadStats js;
        read_json_spans(src, opt.max_document, sink, &js);
        st.documents += js.documents;
        st.bad_json_lines += js.bad_lines;
        if (st.first_bad_json_line.empty()) st.first_bad_json_line = js.first_bad_line;
        for (auto& [r, n] : js.bad_spans) st.bad_spans[r] += n;
        st.bytes += src.file_bytes_read();
      }
      current = nullptr;
    });
    done_bytes += total_size({path});
    progress.update(done_bytes, st.spans_read,
                    fmt::format("{} spans, file {} of {}", st.spans_read, st.files, inputs.size()));
  }
  progress.finish();
  st.read_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  st.spilled_bytes = spill.spilled_bytes();

  LabelIndex labels;
  if (!opt.labels.empty()) labels = LabelIndex(opt.labels, opt.unlabelled);
  // Traces are built on worker threads and handed on in order (the labels
  // and the callbacks run on this thread only): whole partitions at a time,
  // or windows of traces when all rows form one partition.
  auto hand_on = [&](SpanGraph& g) {
    ++st.traces;
    st.duplicate_spans += g.duplicate_spans;
    if (g.reject != SpanReject::kNone) {
      ++st.traces_rejected[static_cast<int>(g.reject)];
      if (cb.on_rejected_trace) cb.on_rejected_trace(g);
      return;
    }
    st.collapsed_spans += g.collapsed_spans;
    st.type_fallbacks += g.type_fallbacks;
    st.peer_fallbacks += g.peer_fallbacks;
    st.clamped_calls += g.clamped_calls;
    if (!labels.empty()) {
      g.graph.label = labels.label_of(g.graph);
      if (!opt.keep_labels.empty() && std::find(opt.keep_labels.begin(), opt.keep_labels.end(),
                                                g.graph.label) == opt.keep_labels.end()) {
        ++st.dropped_by_label;
        return;
      }
      ++st.graphs_by_label[g.graph.label];
    }
    ++st.graphs_kept;
    st.calls += g.graph.edges.size();
    st.zero_ms_calls += g.zero_ms_calls;
    cb.on_graph(std::move(g.graph));
  };
  Progress progress2("build graphs", spill.stored_rows(), opt.progress, "spans");
  uint64_t spans_done = 0;
  auto hand_on_all = [&](size_t, std::vector<SpanGraph>&& graphs) {
    for (SpanGraph& g : graphs) spans_done += g.spans;
    progress2.update(spans_done, 0, fmt::format("{} traces", st.traces + graphs.size()));
    for (SpanGraph& g : graphs) hand_on(g);
  };
  const size_t threads = default_threads();
  spill.finish();
  if (spill.num_partitions() > 1) {
    ordered_parallel<std::vector<SpanGraph>>(
        spill.num_partitions(), threads, 2 * threads,
        [&](size_t p) {
          TraceSpill::Partition part = spill.load(p);
          return build_traces(part, 0, part.num_traces(), opt.graph);
        },
        hand_on_all);
  } else {
    constexpr size_t kWindow = 1024;
    const TraceSpill::Partition part = spill.load(0);
    ordered_parallel<std::vector<SpanGraph>>(
        (part.num_traces() + kWindow - 1) / kWindow, threads, 4 * threads,
        [&](size_t w) {
          return build_traces(part, w * kWindow, std::min(part.num_traces(), (w + 1) * kWindow),
                              opt.graph);
        },
        hand_on_all);
  }
  progress2.finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace tracelm
