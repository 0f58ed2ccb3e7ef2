// Reading call graphs from whatever file a user hands over: a corpus (JSON
// Lines) or raw Alibaba CallGraph CSV (plain, compressed, tar), told apart by
// content.
//
// Contract: for CSV input the rows go through ingestion, with the default
// preprocessing rules (mode kClean) or with every row and trace kept
// (mode kAsIs, for validation: invalid graphs are reported, not dropped).
// Errors throw InputError naming the file and line.
#pragma once

#include <functional>
#include <string>

#include "core/call_graph.h"
#include "ingest/ingest.h"

namespace tracelm {

enum class CsvMode { kClean, kAsIs };

// Calls fn for each graph; returns ingestion statistics for CSV input (all
// zero for a corpus except graphs_kept).
IngestStats for_each_graph(const std::string& path, CsvMode mode,
                           const std::function<void(CallGraph&&)>& fn, bool progress = false);

}  // namespace tracelm
