#include "generate/requests.h"

#include <cmath>
#include <stdexcept>

#include "core/validate.h"
#include "util/rng.h"

namespace tracelm {

std::vector<GenerateRequest> same_requests(const GenerateRequest& r, int64_t n, bool high_latency,
                                           bool instruction, const ConditionStats& stats,
                                           uint64_t seed) {
  std::vector<GenerateRequest> reqs(static_cast<size_t>(std::max<int64_t>(0, n)), r);
  if (!high_latency) return reqs;
  if (r.latency) throw std::invalid_argument("--high-latency and --latency exclude each other");
  if (!r.service) throw std::invalid_argument("--high-latency needs --service");
  if (instruction) {  // the question says it in words
    for (auto& q : reqs) q.high_latency = true;
    return reqs;
  }
  double p90 = stats.latency_p90(*r.service);
  if (p90 <= 0)
    throw std::invalid_argument("the model's statistics have no latency for service " + *r.service);
  Rng rng(seed);
  for (auto& q : reqs)  // uniform in [p90, 2 p90]
    q.latency = static_cast<int64_t>(std::ceil(p90)) +
                static_cast<int64_t>(rng.next() % (static_cast<uint64_t>(p90) + 1));
  return reqs;
}

std::vector<GenerateRequest> requests_like(const std::vector<CallGraph>& graphs) {
  std::vector<GenerateRequest> reqs;
  reqs.reserve(graphs.size());
  for (const CallGraph& g : graphs) {
    GenerateRequest r;
    r.service = g.service;
    r.num_edges = static_cast<int64_t>(g.edges.size());
    r.depth = g.depth();
    r.latency = g.latency();
    reqs.push_back(r);
  }
  return reqs;
}

GenerationSummary summarize(std::vector<GeneratedGraph>&& out,
                            const std::vector<GenerateRequest>& reqs) {
  GenerationSummary s;
  s.requested = out.size();
  for (size_t i = 0; i < out.size(); ++i) {
    GeneratedGraph& x = out[i];
    if (!x.complete) {
      ++s.failed[x.error.substr(0, 60)];
      continue;
    }
    ++s.complete;
    if (!is_valid(validate(x.graph))) {
      ++s.failed["complete but invalid"];
      continue;
    }
    ++s.valid;
    if (i < reqs.size() && reqs[i].call && has_call(x.graph, *reqs[i].call)) ++s.with_call;
    s.graphs.push_back(std::move(x.graph));
  }
  return s;
}

}  // namespace tracelm
