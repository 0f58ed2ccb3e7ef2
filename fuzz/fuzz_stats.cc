// libFuzzer target: the bytes as a model's stats.json -> TrainedStats::from_json.
//
// Invariants (a violation traps):
//  - bytes that are not JSON, or JSON that is not a stats file, give
//    InputError (or a json parse failure); nothing else escapes;
//  - CorpusPriors' per-name lists come out sorted by name, so find_named and
//    entries_for can search them;
//  - to_json then from_json gives the same priors (the file's contract);
//  - entries_for returns sorted callees of that service only;
//  - types_of gives back each (caller, callee) mask read;
//  - split_item_names gives `count` names of the caller's layers, or none;
//  - draw_shape gives one of the callee's shapes, or none.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "io/input_error.h"
#include "stats/trained_stats.h"

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz_stats: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                    \
      __builtin_trap();                                                                       \
    }                                                                                         \
  } while (0)

namespace {

template <class V>
bool sorted_by_name(const std::vector<std::pair<std::string, V>>& v) {
  return std::is_sorted(v.begin(), v.end(),
                        [](const auto& a, const auto& b) { return a.first < b.first; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  tracelm::TrainedStats t;
  try {
    t = tracelm::TrainedStats::from_json(j, "fuzz.json");
  } catch (const tracelm::InputError&) {
    return 0;
  }
  const tracelm::CorpusPriors& p = t.priors;
  FUZZ_CHECK(sorted_by_name(p.subtree_max));
  FUZZ_CHECK(sorted_by_name(p.layers));
  FUZZ_CHECK(sorted_by_name(p.entries));
  FUZZ_CHECK(sorted_by_name(p.durations));
  FUZZ_CHECK(sorted_by_name(p.types));
  for (const auto& [callee, by_caller] : p.types) FUZZ_CHECK(sorted_by_name(by_caller));
  FUZZ_CHECK(sorted_by_name(p.shapes));
  FUZZ_CHECK(sorted_by_name(p.entry_layers));
  for (const auto& [service, by_entry] : p.entry_layers) FUZZ_CHECK(sorted_by_name(by_entry));

  tracelm::TrainedStats back = tracelm::TrainedStats::from_json(t.to_json(), "round-trip");
  FUZZ_CHECK(back.priors.services == p.services);
  FUZZ_CHECK(back.priors.roots == p.roots);
  FUZZ_CHECK(back.priors.layers == p.layers);
  FUZZ_CHECK(back.priors.entries == p.entries);
  FUZZ_CHECK(back.priors.durations == p.durations);
  FUZZ_CHECK(back.priors.types == p.types);
  FUZZ_CHECK(back.priors.shapes == p.shapes);
  FUZZ_CHECK(back.priors.entry_layers == p.entry_layers);
  struct Any {
    bool contains(int64_t) const { return true; }
  };
  for (const auto& [callee, shapes] : p.shapes)
    for (double u : {0.0, 0.5, 0.999}) {
      auto c = tracelm::draw_shape(
          shapes, [](int64_t b) { return b < 0 ? 1 : 0; }, Any{}, Any{}, u);
      FUZZ_CHECK(!c || std::find(shapes.begin(), shapes.end(), *c) != shapes.end());
    }

  for (const auto& [callee, by_caller] : p.types)
    for (const auto& [caller, mask] : by_caller)
      FUZZ_CHECK(tracelm::types_of(p.types, caller, callee) == mask);
  for (const auto& [caller, seqs] : p.layers)
    for (size_t width : {16, 40})
      for (size_t offset : {0, 15, 39}) {
        std::vector<std::string> out = tracelm::split_item_names(seqs, width, offset, 3, offset);
        FUZZ_CHECK(out.empty() || out.size() == 3);
        for (const std::string& n : out)
          FUZZ_CHECK(std::any_of(seqs.begin(), seqs.end(), [&](const auto& q) {
            return std::find(q.begin(), q.end(), n) != q.end();
          }));
      }

  for (const auto& [service, entries] : p.entries) {
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{500}}) {
      std::vector<std::string> out = tracelm::entries_for(p.entries, service, n);
      FUZZ_CHECK(!entries.empty() ? !out.empty() : out.empty());
      for (const std::string& c : out)
        FUZZ_CHECK(std::any_of(entries.begin(), entries.end(),
                               [&](const auto& e) { return e.callee == c; }));
    }
  }
  return 0;
}
