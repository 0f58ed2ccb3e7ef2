// Reading call graphs from whatever file a user hands over: a corpus (JSON
// Lines) or raw Alibaba CallGraph CSV (plain, compressed, tar).
//
// Contract:
//  - The format follows the file name (graph_file_format): `.jsonl` is a
//    corpus; `.csv`, `.tar` and `.tgz` are CallGraph CSV (a compression
//    suffix `.gz`, `.bz2`, `.xz` or `.zst` is looked through: `x.jsonl.gz`
//    is a corpus, `x.tar.gz` CSV). Any other name is told by content: a
//    corpus starts with '{'.
//  - A file with no content (empty, or only white space, once decompressed)
//    is an error whatever its name: InputError "PATH: no call graphs: the
//    file is empty".
//  - For CSV input the rows go through ingestion, with the default
//    preprocessing rules (mode kClean) or with every row and trace kept
//    (mode kAsIs, for validation: invalid graphs are reported, not dropped).
//  - Errors throw InputError naming the file and line.
#pragma once

#include <functional>
#include <string>

#include "core/call_graph.h"
#include "ingest/ingest.h"

namespace tracelm {

enum class CsvMode { kClean, kAsIs };

enum class GraphFileFormat { kCorpus, kCsv };

// The format of the graph file at `path` (rules above). Opens the file to
// check that it has content (and, for a name that says nothing, to look at
// it); throws InputError when it cannot be read or is empty.
GraphFileFormat graph_file_format(const std::string& path);

// Calls fn for each graph; returns ingestion statistics for CSV input (all
// zero for a corpus except graphs_kept and edges_kept).
IngestStats for_each_graph(const std::string& path, CsvMode mode,
                           const std::function<void(CallGraph&&)>& fn, bool progress = false);

}  // namespace tracelm
