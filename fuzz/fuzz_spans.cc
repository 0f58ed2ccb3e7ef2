// libFuzzer target: the span import path (src/ingest/spans).
//
// The bytes are written to a temporary file and ingest_spans()ed with a tiny
// memory budget (so the spill partitions are used), a 64 KiB JSON document
// limit and both node modes. The first byte picks a header to prepend (none,
// a span-table header, an OTLP prefix), so the fuzzer reaches every reader
// quickly. InputError is expected for bad input; anything else escapes and
// crashes.
//
// Invariants (a violation traps):
//  - every graph handed on is canonical, strictly valid (no violation), not
//    deeper than max_depth, and survives a corpus round trip;
//  - graphs_kept + rejected traces == traces; graphs_kept == graphs handed on.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/validate.h"
#include "corpus/corpus.h"
#include "ingest/spans/span_ingest.h"
#include "io/input_error.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void run(const std::string& path, tracelm::NodeMode mode) {
  tracelm::SpanIngestOptions opt;
  opt.graph.node = mode;
  opt.max_document = 64 << 10;
  opt.memory_budget = 4 << 10;
  opt.partitions = 4;
  opt.max_line = 4096;
  uint64_t handed = 0;
  tracelm::SpanIngestCallbacks cb;
  cb.on_graph = [&](tracelm::CallGraph&& g) {
    ++handed;
    check(g.is_canonical());
    check(tracelm::is_valid(tracelm::validate(g), true));
    check(g.depth() <= opt.graph.max_depth);
    std::string err;
    auto back = tracelm::parse_graph_json(tracelm::graph_to_json(g), &err);
    check(back.has_value() && *back == g);
  };
  try {
    tracelm::SpanIngestStats st = tracelm::ingest_spans({path}, opt, cb);
    check(st.graphs_kept == handed);
    check(st.graphs_kept + st.traces_rejected_total() == st.traces);
  } catch (const tracelm::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kHeads[] = {
      "",
      "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n",
      "{\"resourceSpans\":[", "{\"data\":[{\"traceID\":\"1\",\"spans\":[", "[{\"traceId\":\"1\","};
  std::string text = kHeads[data[0] % 5];
  text.append(reinterpret_cast<const char*>(data + 1), size - 1);
  char path[] = "/tmp/fuzz_spans_XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return 0;
  FILE* f = ::fdopen(fd, "wb");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  run(path, data[0] & 0x80 ? tracelm::NodeMode::kOperation : tracelm::NodeMode::kService);
  ::unlink(path);
  return 0;
}
