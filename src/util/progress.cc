#include "util/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace tracelm {

std::string format_duration(double s) {
  if (s < 0) s = 0;
  auto t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

Progress::Progress(std::string label, uint64_t total, bool enabled, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::update(uint64_t done, uint64_t items, const std::string& extra) {
  done_ = done;
  items_ = items;
  extra_ = extra;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double since_start = std::chrono::duration<double>(now - start_).count();
  double since_last = std::chrono::duration<double>(now - last_).count();
  if (since_start < 1.0 || since_last < (tty_ ? 0.5 : 10.0)) return;
  last_ = now;
  print(false);
}

void Progress::finish() {
  if (enabled_ && printed_) print(true);
}

void Progress::print(bool final) {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (el <= 0) el = 1e-9;
  std::string line = fmt::format("{}: ", label_);
  const double since = static_cast<double>(done_ - std::min(base_, done_));  // this run's
  if (unit_ == "B") {
    line += fmt::format("{:.1f} MB, {:.1f} MB/s", done_ / 1e6, done_ / 1e6 / el);
  } else {
    line += fmt::format("{} {}, {:.1f} {}/s", done_, unit_, since / el, unit_);
  }
  if (items_) line += fmt::format(", {:.0f} rows/s", items_ / el);
  if (total_ && !final) {
    double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
    line += fmt::format(", {:.0f}%", frac * 100);
    // The ETA at this run's rate: the share of the rest done since the start.
    double run = total_ > base_ ? since / static_cast<double>(total_ - base_) : frac;
    if (run > 0.001) line += ", ETA " + format_duration(el / std::min(1.0, run) - el);
  }
  if (!extra_.empty()) line += ", " + extra_;
  line += fmt::format(", {} elapsed", format_duration(el));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  printed_ = true;
}

}  // namespace tracelm
