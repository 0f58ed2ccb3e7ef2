// libFuzzer target: one corpus line (JSON) -> parse_graph_json.
//
// Invariants (a violation traps):
//  - parse_graph_json never throws or crashes; a failure comes with a message;
//  - a parsed graph is canonical, and graph_to_json(g) parses back to a graph
//    with the same content and trace id, whose JSON is the same text again;
//  - validate(), index() and layers() run on whatever graph was parsed (an
//    invalid graph is data).
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/call_graph.h"
#include "core/validate.h"
#include "corpus/corpus.h"

#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz_corpus: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                     \
      __builtin_trap();                                                                        \
    }                                                                                          \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  std::string err;
  std::optional<tracelm::CallGraph> g = tracelm::parse_graph_json(line, &err);
  if (!g) {
    FUZZ_CHECK(!err.empty());
    return 0;
  }
  FUZZ_CHECK(g->is_canonical());

  std::string json = tracelm::graph_to_json(*g);
  std::string err2;
  std::optional<tracelm::CallGraph> back = tracelm::parse_graph_json(json, &err2);
  if (!back) std::fprintf(stderr, "fuzz_corpus: round trip failed: %s\n", err2.c_str());
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(back->same_content(*g));
  FUZZ_CHECK(back->trace_id == g->trace_id);
  FUZZ_CHECK(tracelm::graph_to_json(*back) == json);

  // The rest of the core must cope with any parsed graph.
  std::vector<tracelm::Violation> vs = tracelm::validate(*g);
  for (const tracelm::Violation& v : vs) {
    FUZZ_CHECK(static_cast<int>(v.rule) < tracelm::kNumRules);
    FUZZ_CHECK(v.edge >= -1 && v.edge < static_cast<int64_t>(g->edges.size()));
  }
  if (g->edges.empty()) FUZZ_CHECK(!tracelm::is_valid(vs));
  tracelm::GraphIndex idx = g->index();
  FUZZ_CHECK(idx.parent.size() == g->edges.size());
  (void)g->layers();
  return 0;
}
