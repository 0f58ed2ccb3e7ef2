#include "export/alibaba_csv.h"

#include <fmt/format.h>

namespace tracelm {

void append_alibaba_rows(const CallGraph& g, uint64_t index, int64_t base_ms, std::string& out) {
  std::string trace = g.trace_id.empty() ? fmt::format("T_{:011d}", index) : g.trace_id;
  for (const Edge& e : g.edges) {
    auto inst = [](const std::string& ms) {
      return ms == kUserNode ? std::string(kUserNode) : "?";
    };
    fmt::format_to(std::back_inserter(out), "{},{},{},{},{},{},{},?,{},{},{}.0\n",
                   base_ms + e.start_ms, trace, g.service, e.id.str(), e.caller, inst(e.caller),
                   call_type_name(e.type), e.callee, inst(e.callee), e.duration_ms());
  }
}

}  // namespace tracelm
