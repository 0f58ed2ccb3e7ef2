// Progress: a progress line on stderr for long work (rate, ETA when the
// total is known). Silent for the first second, then updates at most twice a
// second on a terminal (rewriting one line) and every 10 s otherwise.
// Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tracelm {

class Progress {
 public:
  // total: units of work when known (bytes, items), 0 if unknown.
  // unit: what `done` counts ("B" formats as MB).
  Progress(std::string label, uint64_t total, bool enabled, std::string unit = "B");
  // done: units finished; items: a secondary count (rows, graphs) shown as a rate.
  void update(uint64_t done, uint64_t items, const std::string& extra = "");
  void finish();
  // A better estimate of the total (e.g. the steps a time budget allows).
  void set_total(uint64_t total) { total_ = total; }
  // Units done before this run (a resumed job): rates and the ETA count
  // from there; the percentage stays of the whole.
  void set_start(uint64_t done) { base_ = done; }

 private:
  std::string label_, unit_;
  uint64_t total_;
  bool enabled_, tty_, printed_ = false;
  std::chrono::steady_clock::time_point start_, last_;
  uint64_t done_ = 0, items_ = 0, base_ = 0;
  std::string extra_;
  void print(bool final);
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace tracelm
