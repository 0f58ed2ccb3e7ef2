// libFuzzer target: OTLP JSON and Jaeger JSON (outside input) -> call graphs
// (through the span importer) -> tracelm's writers -> call graphs.
//
// The same bytes go to parse_otlp_json and to parse_jaeger_json.
// Invariants (a violation traps):
//  - the readers never throw or crash; a failure comes with a message;
//  - parsed graphs have edges, in canonical order, with times >= 0;
//  - every writer (OTLP, OTLP JSON Lines, Jaeger) takes the parsed graphs
//    without throwing, and its output parses back to the same graphs (same
//    content and trace ids, same order);
//  - validate() and index() run on whatever graph was parsed.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "core/validate.h"
#include "export/jaeger.h"
#include "export/otlp.h"

#define FUZZ_CHECK(cond)                                                                        \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "fuzz_exports: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                      \
      __builtin_trap();                                                                         \
    }                                                                                           \
  } while (0)

namespace {

using Parser = bool (*)(std::string_view, std::vector<tracelm::CallGraph>*, std::string*);

bool parse_otlp(std::string_view t, std::vector<tracelm::CallGraph>* g, std::string* e) {
  return tracelm::parse_otlp_json(t, g, e);
}
bool parse_jaeger(std::string_view t, std::vector<tracelm::CallGraph>* g, std::string* e) {
  return tracelm::parse_jaeger_json(t, g, e);
}

void round_trip(const std::vector<tracelm::CallGraph>& graphs, const std::string& text,
                Parser parse, const char* what) {
  std::vector<tracelm::CallGraph> back;
  std::string err;
  bool ok = parse(text, &back, &err);
  if (!ok) std::fprintf(stderr, "fuzz_exports: %s round trip failed: %s\n", what, err.c_str());
  FUZZ_CHECK(ok);
  FUZZ_CHECK(back.size() == graphs.size());
  for (size_t i = 0; i < back.size(); ++i) {
    FUZZ_CHECK(back[i].same_content(graphs[i]));
    FUZZ_CHECK(back[i].trace_id == graphs[i].trace_id);
  }
}

void check(std::string_view input, Parser parse) {
  std::vector<tracelm::CallGraph> graphs;
  std::string err;
  if (!parse(input, &graphs, &err)) {
    FUZZ_CHECK(!err.empty());
    return;
  }
  for (const tracelm::CallGraph& g : graphs) {
    FUZZ_CHECK(!g.edges.empty());
    FUZZ_CHECK(g.is_canonical());
    for (const tracelm::Edge& e : g.edges)
      for (int64_t t : {e.start_ms, e.finish_ms}) FUZZ_CHECK(t >= 0);
    (void)tracelm::validate(g);
    FUZZ_CHECK(g.index().parent.size() == g.edges.size());
  }
  std::string otlp, lines, jaeger;
  try {
    otlp = tracelm::to_otlp_json(graphs);
    lines = tracelm::to_otlp_json_lines(graphs);
    jaeger = tracelm::to_jaeger_json(graphs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_exports: a writer threw: %s\n", e.what());
    FUZZ_CHECK(false);
  }
  round_trip(graphs, otlp, parse_otlp, "otlp");
  round_trip(graphs, lines, parse_otlp, "otlp lines");
  round_trip(graphs, jaeger, parse_jaeger, "jaeger");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check(input, parse_otlp);
  check(input, parse_jaeger);
  return 0;
}
