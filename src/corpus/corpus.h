// The corpus: call graphs as JSON Lines, one graph per line (docs/corpus-format.md).
//
// Contract:
//  - graph_to_json() writes one line (no newline) with the fields trace_id
//    (when set), service, num_edges, depth, latency and edges; derived
//    attributes are written for readers' convenience.
//  - parse_graph_json() reads one line. Malformed JSON, missing or mistyped
//    fields, a non-canonical rpc id, or derived attributes that disagree with
//    the edges are errors (returned as a message, never thrown, never a
//    crash); an unknown type string is data (CallType::kUnknown), so invalid
//    graphs can be stored and validated. Nesting deeper than 8 and lines over
//    the reader's limit are rejected before parsing.
//  - CorpusWriter writes to "<path>.tmp" and renames on close(): a killed run
//    leaves the old file or the new one, never half of one.
//  - read_corpus() streams a file (plain or compressed) and throws
//    InputError naming the file and line of the first bad line.
#pragma once

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_graph.h"
#include "io/atomic_file.h"

namespace tracelm {

std::string graph_to_json(const CallGraph& g);
// Returns the graph, or nullopt with *error set.
std::optional<CallGraph> parse_graph_json(std::string_view line, std::string* error);

class CorpusWriter {
 public:
  explicit CorpusWriter(std::string path) : file_(std::move(path)) {}
  void write(const CallGraph& g);
  void close() { file_.close(); }
  uint64_t count() const { return n_; }

 private:
  AtomicFile file_;
  std::string line_;
  uint64_t n_ = 0;
};

// Calls fn for each graph of a corpus file; returns the number of graphs.
uint64_t read_corpus(const std::string& path, const std::function<void(CallGraph&&)>& fn);
std::vector<CallGraph> load_corpus(const std::string& path);

}  // namespace tracelm
