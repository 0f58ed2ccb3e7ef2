// libFuzzer target: the whole Alibaba CSV path.
//
//  1. In memory: memory_source -> LineReader (small max_line, so overlong lines
//     are hit) -> split_csv_line -> map_header (first line) -> parse_row (the
//     other lines, with keep_missing false and true).
//  2. End to end: the bytes are written to a temporary file and ingest()ed
//     with a tiny memory budget and 4 partitions, so the spill path runs.
//     InputError is expected for bad input; anything else escapes and crashes.
//
// Invariants (a violation traps):
//  - split_csv_line never returns more fields than bytes + 1;
//  - every graph handed to on_graph is canonical, valid (validate() has no
//    error), not deeper than max_depth, and survives a corpus round trip
//    (graph_to_json -> parse_graph_json) (ingest rejects non-UTF-8 names);
//  - the counts in IngestStats agree with the callbacks, and every row read is
//    accounted for: rows_read == rejected rows (by reason) + accepted rows,
//    where accepted rows are the kept edges, the duplicate-rpc-id rows and the
//    usable rows of rejected traces.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "core/validate.h"
#include "corpus/corpus.h"
#include "ingest/alibaba_schema.h"
#include "ingest/ingest.h"
#include "io/byte_source.h"
#include "io/csv.h"
#include "io/input_error.h"
#include "io/line_reader.h"

namespace {

constexpr size_t kMaxLine = 4096;

#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "fuzz_csv: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                  \
      __builtin_trap();                                                                     \
    }                                                                                       \
  } while (0)

// Strict UTF-8 check (no overlongs, no surrogates, <= U+10FFFF), as JSON
// parsers require.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0)
      n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      n = 3, cp = c & 0x07;
    else
      return false;
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool graph_is_utf8(const tracelm::CallGraph& g) {
  if (!valid_utf8(g.service) || !valid_utf8(g.trace_id)) return false;
  for (const tracelm::Edge& e : g.edges)
    if (!valid_utf8(e.caller) || !valid_utf8(e.callee)) return false;
  return true;
}

// Part 1: the in-memory CSV path, piece by piece.
void fuzz_pieces(const uint8_t* data, size_t size) {
  auto src = tracelm::memory_source("fuzz", std::string(reinterpret_cast<const char*>(data), size));
  // A small buffer as well as a small max_line, so that refills split lines.
  tracelm::LineReader lines(*src, kMaxLine, 1024);
  std::vector<std::string_view> fields;
  std::string scratch;
  std::optional<tracelm::ColumnMap> cols;
  std::string_view line;
  bool overlong = false;
  bool first = true;
  uint64_t prev_line_no = 0;
  while (lines.next(&line, &overlong)) {
    FUZZ_CHECK(line.size() <= kMaxLine);
    FUZZ_CHECK(!overlong || line.size() == kMaxLine);
    FUZZ_CHECK(lines.line_no() == prev_line_no + 1);
    FUZZ_CHECK(lines.bytes() <= size);
    prev_line_no = lines.line_no();
    if (overlong) {
      if (first) break;  // ingest rejects an overlong header
      continue;
    }
    bool ok = tracelm::split_csv_line(line, fields, scratch);
    if (ok) FUZZ_CHECK(fields.size() <= line.size() + 1);
    if (first) {
      first = false;
      if (!ok) break;
      std::string err;
      cols = tracelm::map_header(fields, &err);
      if (!cols) {
        FUZZ_CHECK(!err.empty());
        break;
      }
      FUZZ_CHECK(cols->num_columns == fields.size());
      continue;
    }
    if (!ok) continue;
    for (std::string_view f : fields) FUZZ_CHECK(tracelm::is_valid_utf8(f) == valid_utf8(f));
    for (bool keep_missing : {false, true}) {
      tracelm::RawRow row;
      tracelm::RowReject why = tracelm::parse_row(fields, *cols, keep_missing, &row);
      FUZZ_CHECK(static_cast<int>(why) < tracelm::kNumRowRejects);
      (void)tracelm::row_reject_code(why);
      if (why == tracelm::RowReject::kNone) {
        FUZZ_CHECK(!row.traceid.empty());
        FUZZ_CHECK(row.rt_ms >= 0);
        FUZZ_CHECK(tracelm::RpcId::valid(row.rpc_id));
        if (!keep_missing) FUZZ_CHECK(row.type != tracelm::CallType::kUnknown);
      }
    }
  }
  FUZZ_CHECK(lines.bytes() <= size);
}

// Part 2: ingest() end to end through a temporary file.
void fuzz_ingest(const uint8_t* data, size_t size) {
  static const std::string tmp_dir = [] {
    const char* t = std::getenv("TMPDIR");
    return std::string(t && *t ? t : "/tmp");
  }();
  std::string path = tmp_dir + "/fuzz_csv.XXXXXX";
  int fd = ::mkstemp(path.data());
  if (fd < 0) {
    std::perror("fuzz_csv: mkstemp");
    std::abort();
  }
  size_t off = 0;
  while (off < size) {
    ssize_t w = ::write(fd, data + off, size - off);
    if (w <= 0) {
      std::perror("fuzz_csv: write");
      ::close(fd);
      ::unlink(path.c_str());
      std::abort();
    }
    off += static_cast<size_t>(w);
  }
  ::close(fd);

  tracelm::IngestOptions opt;
  opt.tmp_dir = tmp_dir;
  opt.memory_budget = 4096;
  opt.partitions = 4;
  opt.max_line = kMaxLine;

  uint64_t graphs = 0, edges = 0, rejected_rows = 0, rejected_traces = 0;
  uint64_t rejected_trace_rows = 0;  // usable rows of rejected traces, duplicates excluded
  tracelm::IngestCallbacks cb;
  cb.on_graph = [&](tracelm::CallGraph&& g) {
    ++graphs;
    edges += g.edges.size();
    FUZZ_CHECK(!g.edges.empty());
    FUZZ_CHECK(g.is_canonical());
    FUZZ_CHECK(g.depth() <= opt.build.max_depth);
    FUZZ_CHECK(tracelm::is_valid(tracelm::validate(g)));
    // Ingest rejects non-UTF-8 names (bad_encoding), so every kept graph
    // survives the corpus round trip. valid_utf8 is an independent check.
    FUZZ_CHECK(graph_is_utf8(g));
    {
      std::string err;
      std::optional<tracelm::CallGraph> back =
          tracelm::parse_graph_json(tracelm::graph_to_json(g), &err);
      if (!back) std::fprintf(stderr, "fuzz_csv: corpus round trip failed: %s\n", err.c_str());
      FUZZ_CHECK(back.has_value());
      FUZZ_CHECK(back->same_content(g));
      FUZZ_CHECK(back->trace_id == g.trace_id);
    }
  };
  cb.on_rejected_trace = [&](const tracelm::BuiltTrace& t) {
    ++rejected_traces;
    FUZZ_CHECK(t.reject != tracelm::GraphReject::kNone);
    FUZZ_CHECK(t.duplicate_rows <= t.rows);
    rejected_trace_rows += t.rows - t.duplicate_rows;
  };
  cb.on_rejected_row = [&](const tracelm::RejectedRow& r) {
    ++rejected_rows;
    FUZZ_CHECK(r.reason != tracelm::RowReject::kNone);
    FUZZ_CHECK(r.text.size() <= kMaxLine);
  };

  bool ok = false;
  tracelm::IngestStats st;
  try {
    st = tracelm::ingest({path}, opt, cb);
    ok = true;
  } catch (const tracelm::InputError&) {
    // Expected for malformed input (no header, corrupt compression, ...).
  }
  ::unlink(path.c_str());
  if (!ok) return;

  uint64_t rows_rejected = 0;
  for (uint64_t v : st.rows_rejected) rows_rejected += v;
  FUZZ_CHECK(st.rows_rejected[0] == 0);  // kNone is never counted
  FUZZ_CHECK(st.rows_rejected_total() == rows_rejected + st.rows_duplicate_rpc_id);
  FUZZ_CHECK(rejected_rows == rows_rejected);
  FUZZ_CHECK(st.graphs_kept == graphs);
  FUZZ_CHECK(st.edges_kept == edges);
  FUZZ_CHECK(st.graphs_rejected[0] == 0);
  FUZZ_CHECK(st.graphs_rejected_total() == rejected_traces);
  FUZZ_CHECK(st.traces == graphs + rejected_traces);
  // Every row read is rejected with a reason, dropped as a duplicate rpc id,
  // part of a kept graph, or part of a rejected trace.
  FUZZ_CHECK(st.rows_read ==
             rows_rejected + st.rows_duplicate_rpc_id + st.edges_kept + rejected_trace_rows);
  (void)st.to_text();
  (void)st.to_json();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_pieces(data, size);
  fuzz_ingest(data, size);
  return 0;
}
