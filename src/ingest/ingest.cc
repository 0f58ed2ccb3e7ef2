#include "ingest/ingest.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ingest/trace_spill.h"
#include "io/byte_source.h"
#include "io/csv.h"
#include "io/input_error.h"
#include "io/line_reader.h"
#include "util/parallel.h"
#include "util/progress.h"

namespace tracelm {

uint64_t IngestStats::rows_rejected_total() const {
  uint64_t n = rows_duplicate_rpc_id;
  for (uint64_t v : rows_rejected) n += v;
  return n;
}

uint64_t IngestStats::graphs_rejected_total() const {
  uint64_t n = 0;
  for (uint64_t v : graphs_rejected) n += v;
  return n;
}

std::string IngestStats::to_text() const {
  std::string s;
  s += fmt::format("files            {:>12}  ({} streams, {} members skipped)\n", files, streams,
                   skipped_members);
  s += fmt::format("bytes            {:>12}\n", bytes);
  s += fmt::format("rows read        {:>12}\n", rows_read);
  for (int i = 1; i < kNumRowRejects; ++i)
    if (rows_rejected[i])
      s += fmt::format("  rows dropped   {:>12}  {}\n", rows_rejected[i],
                       row_reject_code(static_cast<RowReject>(i)));
  if (rows_duplicate_rpc_id)
    s += fmt::format("  rows dropped   {:>12}  duplicate_rpc_id\n", rows_duplicate_rpc_id);
  s += fmt::format("traces           {:>12}\n", traces);
  for (int i = 1; i < kNumGraphRejects; ++i)
    if (graphs_rejected[i])
      s += fmt::format("  graphs dropped {:>12}  {}\n", graphs_rejected[i],
                       graph_reject_code(static_cast<GraphReject>(i)));
  s += fmt::format("graphs kept      {:>12}\n", graphs_kept);
  s += fmt::format("edges kept       {:>12}\n", edges_kept);
  if (kept_start_before_parent)
    s += fmt::format("  kept with start_before_parent (clock skew) {}\n", kept_start_before_parent);
  if (spilled_bytes) s += fmt::format("spilled bytes    {:>12}\n", spilled_bytes);
  s += fmt::format("time             {:>12.2f} s  (read {:.2f} s, build {:.2f} s)\n", seconds,
                   read_seconds, seconds - read_seconds);
  return s;
}

std::string IngestStats::to_json() const {
  nlohmann::ordered_json j;
  j["files"] = files;
  j["streams"] = streams;
  j["skipped_members"] = skipped_members;
  j["bytes"] = bytes;
  j["rows_read"] = rows_read;
  nlohmann::ordered_json rr = nlohmann::ordered_json::object();
  for (int i = 1; i < kNumRowRejects; ++i)
    rr[std::string(row_reject_code(static_cast<RowReject>(i)))] = rows_rejected[i];
  rr["duplicate_rpc_id"] = rows_duplicate_rpc_id;
  j["rows_dropped"] = rr;
  j["traces"] = traces;
  nlohmann::ordered_json gr = nlohmann::ordered_json::object();
  for (int i = 1; i < kNumGraphRejects; ++i)
    gr[std::string(graph_reject_code(static_cast<GraphReject>(i)))] = graphs_rejected[i];
  j["graphs_dropped"] = gr;
  j["graphs_kept"] = graphs_kept;
  j["edges_kept"] = edges_kept;
  j["kept_start_before_parent"] = kept_start_before_parent;
  j["spilled_bytes"] = spilled_bytes;
  j["seconds"] = seconds;
  j["read_seconds"] = read_seconds;
  return j.dump(2);
}

bool is_validation(std::string_view trace_id, double fraction) {
  if (fraction <= 0) return false;
  // Mix the FNV hash so that similar ids spread evenly.
  uint64_t h = fnv1a64(trace_id);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return static_cast<double>(h % 1000000) < fraction * 1e6;
}

std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const std::string& p : patterns) {
    if (p.find_first_of("*?[") == std::string::npos) {
      out.push_back(p);  // opened (and errors reported) by ingest
      continue;
    }
    glob_t g{};
    int r = ::glob(p.c_str(), 0, nullptr, &g);
    if (r != 0 || g.gl_pathc == 0) {
      globfree(&g);
      throw InputError(p, 0, "pattern matches no file");
    }
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return out;
}

uint64_t total_size(const std::vector<std::string>& inputs) {
  uint64_t n = 0;
  for (const std::string& p : inputs) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) n += static_cast<uint64_t>(st.st_size);
  }
  return n;
}

IngestStats ingest(const std::vector<std::string>& inputs, const IngestOptions& opt,
                   const IngestCallbacks& cb) {
  auto t_start = std::chrono::steady_clock::now();
  IngestStats st;
  TraceSpill spill({opt.tmp_dir, opt.partitions, opt.memory_budget});
  Progress progress("ingest", total_size(inputs), opt.progress);
  uint64_t seq = 0, done_bytes = 0;

  std::vector<std::string_view> fields;
  std::string scratch;
  RawRow row;
  for (const std::string& path : inputs) {
    ++st.files;
    for_each_stream(
        path,
        [&](ByteSource& src) {
          ++st.streams;
          LineReader lines(src, opt.max_line);
          std::string_view line;
          bool overlong = false;
          if (!lines.next(&line, &overlong))
            throw InputError(src.name(), 1, "empty input: expected a CallGraph CSV header line");
          std::string err;
          std::optional<ColumnMap> cols;
          if (overlong || !split_csv_line(line, fields, scratch) ||
              !(cols = map_header(fields, &err)))
            throw InputError(src.name(), 1, err.empty() ? "malformed header line" : err);
          while (lines.next(&line, &overlong)) {
            if (line.empty() && !overlong) continue;  // blank line
            ++st.rows_read;
            RowReject why = RowReject::kNone;
            if (overlong) {
              why = RowReject::kLineTooLong;
            } else if (!split_csv_line(line, fields, scratch)) {
              why = RowReject::kMalformed;
            } else {
              why = parse_row(fields, *cols, opt.build.keep_all, &row);
            }
            if (why != RowReject::kNone) {
              ++st.rows_rejected[static_cast<int>(why)];
              if (cb.on_rejected_row) cb.on_rejected_row({src.name(), lines.line_no(), why, line});
              // Keep a marker so that the trace is still accounted for.
              if (why > RowReject::kMissingTraceId) spill.add(seq++, row, why);
              continue;
            }
            spill.add(seq++, row, RowReject::kNone);
            if ((st.rows_read & 0xffff) == 0)
              progress.update(done_bytes + src.file_bytes_read(), st.rows_read);
          }
          st.bytes += lines.bytes();
        },
        ".csv", &st.skipped_members);
    done_bytes += total_size({path});
    progress.update(done_bytes, st.rows_read);
  }
  progress.finish();
  st.spilled_bytes = spill.spilled_bytes();
  st.read_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  // Phase 2: build graphs trace by trace.
  GraphDeduper dedup;
  Progress progress2("build graphs", spill.stored_rows(), opt.progress, "rows");
  uint64_t rows_done = 0;
  // Traces are built in windows, in parallel; then emitted in order (the
  // de-duplication and the callbacks run on this thread only).
  constexpr size_t kWindow = 8192;
  size_t threads = opt.threads ? opt.threads : default_threads();
  std::vector<BuiltTrace> window;
  spill.for_each_partition([&](const TraceSpill::Partition& part) {
    for (size_t w0 = 0; w0 < part.num_traces(); w0 += kWindow) {
      size_t wn = std::min(kWindow, part.num_traces() - w0);
      window.resize(wn);
      parallel_for(wn, threads, [&](size_t begin, size_t end) {
        std::vector<SpillRow> rows;
        for (size_t i = begin; i < end; ++i) {
          part.prefetch(w0 + i + 6);
          part.rows(w0 + i, rows);
          window[i] = build_trace(rows, opt.build);
          if (window[i].reject == GraphReject::kNone && !opt.build.keep_all)
            window[i].fingerprint = GraphDeduper::fingerprint(window[i].graph);
        }
      });
      for (BuiltTrace& b : window) {
        ++st.traces;
        rows_done += b.rows;
        st.rows_duplicate_rpc_id += b.duplicate_rows;
        if (b.reject == GraphReject::kNone && !opt.build.keep_all && dedup.seen(b.fingerprint)) {
          b.reject = GraphReject::kDuplicate;
          b.detail = "same service and edges as an earlier graph";
        }
        if (b.reject != GraphReject::kNone) {
          ++st.graphs_rejected[static_cast<int>(b.reject)];
          if (cb.on_rejected_trace) cb.on_rejected_trace(b);
          continue;
        }
        ++st.graphs_kept;
        st.edges_kept += b.graph.edges.size();
        st.kept_start_before_parent += b.start_before_parent;
        cb.on_graph(std::move(b.graph));
      }
      progress2.update(rows_done, 0);
    }
  });
  progress2.finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return st;
}

}  // namespace tracelm
