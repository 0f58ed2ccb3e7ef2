// Labelled time windows: which graphs are normal traffic and which were
// recorded during an injected fault (docs/span-import.md, "Labels").
//
// Contract:
//  - read_label_csv() reads `start,end,label[,service]` rows (an optional
//    header line is skipped); times are epoch seconds (decimals allowed) or
//    RFC 3339 ("2023-01-29T08:43:04Z", "2023-01-29 08:43:04" = UTC,
//    "+08:00" offsets). Bad rows throw InputError with FILE:LINE.
//  - LabelIndex::label_of() gives the label of the first window (by start)
//    with start <= t < end whose service (when set) is a node of the graph
//    (a node "svc" or "svc#operation"); else `unlabelled`.
//  - fault_list_to_windows() converts a Nezha fault list ({"HH": [{inject_time,
//    inject_pod, inject_type}, ...]}) into windows [inject_time, +window_s)
//    labelled by the fault type, service = the pod's service. inject_time is
//    read as UTC: it is on the traces' clock (the inject_timestamp field of
//    the TrainTicket list is not: it is off by about 8 hours for most entries).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/call_graph.h"

namespace tracelm {

struct LabelWindow {
  int64_t start_ns = 0, end_ns = 0;
  std::string label, service;
};

// Epoch ns from epoch seconds or RFC 3339; false when neither.
bool parse_time_ns(std::string_view s, int64_t* ns);

std::vector<LabelWindow> read_label_csv(const std::string& path);
std::string label_csv(const std::vector<LabelWindow>& w);  // with header, RFC 3339 UTC times

std::vector<LabelWindow> fault_list_to_windows(const nlohmann::json& faults, int64_t window_s,
                                               const std::string& where);

class LabelIndex {
 public:
  LabelIndex() = default;
  LabelIndex(std::vector<LabelWindow> w, std::string unlabelled);
  bool empty() const { return w_.empty(); }
  std::string label_of(const CallGraph& g) const;

 private:
  std::vector<LabelWindow> w_;  // by start
  int64_t max_len_ = 0;
  std::string unlabelled_;
};

}  // namespace tracelm
