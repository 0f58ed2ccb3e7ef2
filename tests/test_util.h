// Helpers shared by the tests: paths to the real data in ../shared (tests
// that need it skip with a message when it is absent), temporary files, and
// running the tracelm binary.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/call_graph.h"
#include "corpus/corpus.h"

namespace tracelm {
// Readable failure messages for graphs.
inline void PrintTo(const CallGraph& g, std::ostream* os) { *os << graph_to_json(g); }
}  // namespace tracelm

namespace tracelm::testing {

inline std::string shared_path(const std::string& rel) {
  return std::string(TRACELM_SOURCE_DIR) + "/../shared/" + rel;
}

inline bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

#define REQUIRE_SHARED(rel)                                                               \
  do {                                                                                    \
    if (!::tracelm::testing::exists(::tracelm::testing::shared_path(rel)))                \
      GTEST_SKIP() << "real data " << rel << " not found under ../shared (fresh clone?)"; \
  } while (0)

// A fresh temporary directory, removed (recursively) at destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tracelm-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A graph's calls, one line each ("0.1 A>B rpc 1-5"), for readable comparisons.
inline std::string edges_text(const CallGraph& g) {
  std::string out;
  for (const Edge& e : g.edges)
    out += e.id.str() + " " + e.caller + ">" + e.callee + " " +
           std::string(call_type_name(e.type)) + " " + std::to_string(e.start_ms) + "-" +
           std::to_string(e.finish_ms) + "\n";
  return out;
}

struct RunResult {
  int status;
  std::string out;  // stdout and stderr together
};

// Runs `tracelm ARGS` through the shell; returns the exit status and output.
inline RunResult run_tracelm(const std::string& args) {
  std::string cmd = std::string(TRACELM_BINARY) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  RunResult r{-1, ""};
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace tracelm::testing
