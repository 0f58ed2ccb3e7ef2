// What `tracelm generate` asks the generator for, built from the command's
// options or from a corpus, and what it reports back: stage logic that the
// CLI only calls.
//
//  - same_requests(): n copies of one request; with high_latency, recursive
//    prompts get a latency drawn uniformly from [p90, 2 p90] of the
//    service's training latencies (ConditionStats), instruction prompts the
//    sentence "with high latency" (GenerateRequest::high_latency).
//  - requests_like(): one request per graph of a corpus, with that graph's
//    service, number of calls, depth and latency: the paper's protocol of
//    generating from the validation set's prompts (`generate --like FILE`).
//  - summarize(): keeps the complete and valid graphs and counts the rest by
//    reason, so that nothing is dropped silently.
//
// Contract: same_requests() throws std::invalid_argument for requests that
// cannot be met (high latency without a service, or with a latency, or for
// a service without latency statistics); it is deterministic for a seed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/call_graph.h"
#include "encode/condition_stats.h"
#include "generate/assembler.h"

namespace tracelm {

std::vector<GenerateRequest> same_requests(const GenerateRequest& r, int64_t n, bool high_latency,
                                           bool instruction, const ConditionStats& stats,
                                           uint64_t seed);

std::vector<GenerateRequest> requests_like(const std::vector<CallGraph>& graphs);

struct GenerationSummary {
  std::vector<CallGraph> graphs;  // complete and valid, in request order
  uint64_t requested = 0, complete = 0, valid = 0;
  uint64_t with_call = 0;  // valid graphs containing their request's call (when it had one)
  std::map<std::string, uint64_t> failed;  // reason (first 60 bytes) -> graphs
};

// Takes the graphs out of `out`; reqs[i] is the request of out[i].
GenerationSummary summarize(std::vector<GeneratedGraph>&& out,
                            const std::vector<GenerateRequest>& reqs);

}  // namespace tracelm
