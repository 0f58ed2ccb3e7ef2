// A small synthetic raw CallGraph sample, for the built-in demo and tests.
//
// tracelm ships no real traces. This makes raw rows that look like
// Alibaba's published CallGraph files, messiness included, from documented
// parameters: `services` services, each with a fixed call-tree template
// (fan-out 1-3 per node, depth <= 4, types http at the root, then rpc/mc/db/mq);
// each trace samples a subset of its service's template; response times nest
// (a parent finishes after its children). Then raw-data defects are injected:
// a repeated row for some remote calls (recorded at caller and callee), rows
// whose caller is UNKNOWN, rows with rpctype UNKNOWN, traces whose root row
// is lost, and all rows shuffled. The data is SYNTHETIC and says so.
// Contract: deterministic for a given seed (same bytes on every run).
#pragma once

#include <cstdint>
#include <string>

namespace tracelm {

struct SyntheticRawOptions {
  uint64_t seed = 1;
  int traces = 400;
  int services = 6;
  double p_duplicate_row = 0.25;   // per remote call: a second (callee-side) row
  double p_unknown_caller = 0.03;  // per row: um = UNKNOWN
  double p_unknown_type = 0.01;    // per row: rpctype = UNKNOWN
  double p_lost_root = 0.05;       // per trace: root row missing
};

// The whole CSV text, with the header of the real raw sample:
// timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt
std::string synthetic_raw_csv(const SyntheticRawOptions& opt);

}  // namespace tracelm
