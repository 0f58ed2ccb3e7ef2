// How a synthetic set was made, written beside it so that `evaluate` can
// say which protocol each set follows (docs/metrics.md):
//
//   like  one request per graph of a real file (the paper's protocol:
//         service, calls, depth and latency of each graph; `--like FILE`)
//   open  requests drawn from the training statistics (the model's or the
//         baseline's own: `-n N` without conditions)
//   fixed every request states the same conditions (`--service`, `--edges`,
//         `--depth`, `--latency`, `--high-latency`, `--rare-call`)
//
// `generate` and `baseline generate` write OUT.provenance.json next to OUT:
//   {"format": "tracelm-provenance", "generator": "tracelm", "protocol": "like",
//    "like": "val.jsonl", "model": "run/", "seed": 1, "requests": 181,
//    "settings": {"temperature": "0.6", "known_types": "on", ...}}
// ("settings": what else decided the graphs, generator_settings; tracelm
// generate only.)
//
// Contract: read_provenance() returns nullopt when the file does not exist
// and throws InputError (naming the file) when it exists but is malformed;
// writes are atomic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tracelm {

struct SetProvenance {
  std::string generator;  // "tracelm", "tracelm-tabular", "probabilistic", ...
  std::string protocol;   // "like", "open" or "fixed"
  std::string like;       // the real file of the "like" protocol
  std::string model;      // the model directory, when there is one
  uint64_t seed = 0, requests = 0;
  // (name, value), written in this order, read back sorted by name; e.g.
  // ("temperature", "0.6").
  std::vector<std::pair<std::string, std::string>> settings;
};

std::string provenance_path(const std::string& set_path);
void write_provenance(const std::string& set_path, const SetProvenance& p);
std::optional<SetProvenance> read_provenance(const std::string& set_path);

// "like val.jsonl", "open" or "fixed": the label the summary table shows.
std::string protocol_label(const SetProvenance& p);

}  // namespace tracelm
