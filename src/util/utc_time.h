// Epoch times as text: one formatter for every place that prints a UTC time.
// Contract: utc_seconds_text(ns) is "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339, whole
// seconds, rounded down) for any int64 nanoseconds since the Unix epoch.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace tracelm {

inline std::string utc_seconds_text(int64_t unix_ns) {
  int64_t s = unix_ns / 1000000000;
  if (unix_ns < 0 && s * 1000000000 != unix_ns) --s;  // round down before the epoch
  std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf);
}

}  // namespace tracelm
