// Ingestion throughput benchmark (not a test).
//
// Makes an input of at least --gb GB in the v2022 CallGraph layout by
// replicating real call graphs (../shared/data/alibaba-v2022/callgraphs-train.csv,
// or the synthetic sample when absent) under new trace ids, with rows shuffled
// within windows of --window rows (a trace's rows spread over the file, as in
// the published data). Then, for the plain .csv and a .csv.gz of it:
//   - `wc -l` (and `gzip -dc | wc -l`) on the same file, best of 2 runs;
//   - tracelm ingestion in a child process (rows/s, MB/s, peak RSS), writing
//     a real corpus file;
// and prints each figure with its ratio to wc -l measured in the same run.
//
// Usage: bench_ingest [--gb 1.0] [--dir /tmp] [--memory-mb 256] [--keep]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "corpus/corpus.h"
#include "export/alibaba_csv.h"
#include "ingest/ingest.h"
#include "sample/synthetic_raw.h"

using namespace tracelm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double time_shell(const std::string& cmd) {
  double best = 1e30;
  for (int i = 0; i < 2; ++i) {
    double t = now();
    if (std::system((cmd + " > /dev/null").c_str()) != 0) {
      std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
      std::exit(1);
    }
    best = std::min(best, now() - t);
  }
  return best;
}

uint64_t file_size(const std::string& p) {
  FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return 0;
  std::fseek(f, 0, SEEK_END);
  long n = std::ftell(f);
  std::fclose(f);
  return static_cast<uint64_t>(n);
}

struct Run {
  double seconds;
  long peak_rss_kb;
  uint64_t rows, graphs;
};

// Ingests `path` in a child process; the child reports rows and graphs via a pipe.
Run ingest_in_child(const std::string& path, const std::string& out, size_t memory_mb,
                    const std::string& tmp) {
  int fds[2];
  if (pipe(fds) != 0) std::exit(1);
  double t = now();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    IngestOptions opt;
    opt.memory_budget = memory_mb << 20;
    opt.tmp_dir = tmp;
    CorpusWriter w(out);
    IngestStats st = ingest({path}, opt, {[&](CallGraph&& g) { w.write(g); }, nullptr, nullptr});
    w.close();
    uint64_t msg[2] = {st.rows_read, st.graphs_kept};
    if (write(fds[1], msg, sizeof msg) != sizeof msg) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  uint64_t msg[2] = {0, 0};
  if (read(fds[0], msg, sizeof msg) != sizeof msg) {
    std::fprintf(stderr, "ingestion child failed\n");
    std::exit(1);
  }
  close(fds[0]);
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  return {now() - t, ru.ru_maxrss, msg[0], msg[1]};
}

}  // namespace

int main(int argc, char** argv) {
  double gb = 1.0;
  std::string dir = "/tmp";
  size_t memory_mb = 256, window = 200000;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
    if (a == "--gb")
      gb = std::stod(next());
    else if (a == "--dir")
      dir = next();
    else if (a == "--memory-mb")
      memory_mb = std::stoul(next());
    else if (a == "--window")
      window = std::stoul(next());
    else if (a == "--keep")
      keep = true;
    else {
      std::fprintf(stderr, "usage: bench_ingest [--gb G] [--dir D] [--memory-mb M] [--keep]\n");
      return 2;
    }
  }
  // Source graphs.
  std::vector<CallGraph> base;
  std::string real =
      std::string(TRACELM_SOURCE_DIR) + "/../shared/data/alibaba-v2022/callgraphs-train.csv";
  std::string source = "real callgraphs-train.csv";
  std::string work = dir + "/tracelm-bench-" + std::to_string(getpid());
  std::system(("mkdir -p " + work).c_str());
  if (file_size(real) == 0) {
    source = "synthetic sample (../shared absent)";
    std::string p = work + "/sample.csv";
    FILE* f = std::fopen(p.c_str(), "wb");
    std::string s = synthetic_raw_csv({});
    std::fwrite(s.data(), 1, s.size(), f);
    std::fclose(f);
    real = p;
  }
  ingest({real}, {}, {[&](CallGraph&& g) { base.push_back(std::move(g)); }, nullptr, nullptr});

  // Generate the input: whole graphs under new trace ids, rows shuffled in windows.
  std::string csv_path = work + "/callgraph.csv", gz_path = csv_path + ".gz";
  double t = now();
  FILE* f = std::fopen(csv_path.c_str(), "wb");
  gzFile gz = gzopen(gz_path.c_str(), "wb1");
  std::string header = std::string(kAlibabaCsvHeader) + "\n";
  std::fwrite(header.data(), 1, header.size(), f);
  gzwrite(gz, header.data(), static_cast<unsigned>(header.size()));
  std::mt19937_64 rng(42);
  uint64_t target = static_cast<uint64_t>(gb * 1e9), written = header.size(), rows = 0, n = 0;
  std::vector<std::string> lines;
  std::string rowbuf, chunk;
  while (written < target) {
    lines.clear();
    while (lines.size() < window) {
      CallGraph g = base[rng() % base.size()];
      g.trace_id = "T_" + std::to_string(10000000000ull + n++);
      rowbuf.clear();
      append_alibaba_rows(g, 0, static_cast<int64_t>(rng() % 1800000), rowbuf);
      size_t p = 0;
      while (p < rowbuf.size()) {
        size_t e = rowbuf.find('\n', p);
        lines.emplace_back(rowbuf, p, e + 1 - p);
        p = e + 1;
      }
    }
    std::shuffle(lines.begin(), lines.end(), rng);
    chunk.clear();
    for (auto& l : lines) chunk += l;
    std::fwrite(chunk.data(), 1, chunk.size(), f);
    gzwrite(gz, chunk.data(), static_cast<unsigned>(chunk.size()));
    written += chunk.size();
    rows += lines.size();
  }
  std::fclose(f);
  gzclose(gz);
  uint64_t csv_bytes = file_size(csv_path), gz_bytes = file_size(gz_path);
  std::printf(
      "input: %.2f GB plain CSV (%.2f GB gzip), %llu rows, %llu traces, from %s (%.0f s to make)\n",
      csv_bytes / 1e9, gz_bytes / 1e9, static_cast<unsigned long long>(rows),
      static_cast<unsigned long long>(n), source.c_str(), now() - t);

  double wc = time_shell("wc -l " + csv_path);
  double zwc = time_shell("gzip -dc " + gz_path + " | wc -l");
  std::printf("wc -l               %7.2f s  %8.1f MB/s  %6.2f M rows/s\n", wc, csv_bytes / 1e6 / wc,
              rows / 1e6 / wc);
  std::printf("gzip -dc | wc -l    %7.2f s  %8.1f MB/s (uncompressed)\n", zwc,
              csv_bytes / 1e6 / zwc);

  for (const std::string& in : {csv_path, gz_path}) {
    Run r = ingest_in_child(in, work + "/corpus.jsonl", memory_mb, work);
    bool is_gz = in == gz_path;
    double ref = is_gz ? zwc : wc;
    std::printf(
        "tracelm ingest %-4s %7.2f s  %8.1f MB/s  %6.2f M rows/s  peak RSS %6.0f MB (%.0f%% of "
        "input)"
        "  ratio to %s: %.2f\n",
        is_gz ? ".gz" : ".csv", r.seconds, csv_bytes / 1e6 / r.seconds, r.rows / 1e6 / r.seconds,
        r.peak_rss_kb / 1024.0, 100.0 * r.peak_rss_kb * 1024.0 / csv_bytes,
        is_gz ? "gzip -dc | wc -l" : "wc -l", ref / r.seconds);
    if (is_gz)
      std::printf("                     ratio to wc -l on the plain file: %.2f\n", wc / r.seconds);
    std::printf("                     graphs kept %llu (memory budget %zu MiB)\n",
                static_cast<unsigned long long>(r.graphs), memory_mb);
  }
  if (!keep) std::system(("rm -rf " + work).c_str());
  return 0;
}
