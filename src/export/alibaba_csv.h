// Writing call graphs as Alibaba v2022 CallGraph CSV (docs/corpus-format.md).
//
// Column order (the documented one):
//   timestamp,traceid,service,rpc_id,um,uminstanceid,rpctype,interface,dm,dminstanceid,rt
// - timestamp = base_ms + edge start; rt = finish - start, written as "N.0";
// - traceid = the graph's trace id, or T_<11 digits> from its index when empty;
// - instance ids and interface are not modelled: "?" (USER for the client).
// Contract: ingest(export(graphs)) gives back the same graphs (same service
// and edges) for graphs whose earliest edge starts at 0.
#pragma once

#include <cstdint>
#include <string>

#include "core/call_graph.h"

namespace tracelm {

inline constexpr const char* kAlibabaCsvHeader =
    "timestamp,traceid,service,rpc_id,um,uminstanceid,rpctype,interface,dm,dminstanceid,rt";

// Appends the rows of one graph (no header) to `out`. `index` numbers graphs
// without a trace id.
void append_alibaba_rows(const CallGraph& g, uint64_t index, int64_t base_ms, std::string& out);

}  // namespace tracelm
