// Generation split across data-parallel ranks (issue 15).
//
// Contract: rank r of W generates the contiguous block r of the requests
// (sizes differ by at most one) through `generate(part, first_index)`, where
// first_index is the global index of part[0]; a generator seeds graph i from
// (seed, first_index + i) (RecursiveGenerator::set_first_index), so graph i
// is the same whatever W is. The blocks are gathered in request order on
// every rank (through the group's store: each graph as its corpus JSON line
// plus its status). With a null group: generate(reqs, 0).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "generate/assembler.h"
#include "generate/generator.h"
#include "train/distributed.h"

namespace tracelm {

// [begin, end) of rank's block of n requests.
std::pair<size_t, size_t> request_block(size_t n, int rank, int world);

// GeneratedGraphs to bytes and back (lossless for what the CLI writes).
std::string encode_generated(const std::vector<GeneratedGraph>& gs);
std::vector<GeneratedGraph> decode_generated(const std::string& bytes);

// The counters of every rank added up (null group: `mine`).
GenerateStats sum_across_ranks(const GenerateStats& mine, DataParallelGroup* group);

std::vector<GeneratedGraph> generate_across_ranks(
    const std::vector<GenerateRequest>& reqs, DataParallelGroup* group,
    const std::function<std::vector<GeneratedGraph>(const std::vector<GenerateRequest>&, uint64_t)>&
        generate);

}  // namespace tracelm
