// Rng: the one seeded random generator type of tracelm, passed explicitly
// (no global randomness). Draws are portable: the same seed gives the same
// values with any standard library (std::*_distribution are not portable).
// Not thread-safe; give each thread its own.
#pragma once

#include <cstdint>
#include <random>
#include <utility>

namespace tracelm {

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  uint64_t next() { return g_(); }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(g_() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [lo, hi] (inclusive).
  int64_t range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(g_() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }
  // Fisher-Yates shuffle of [first, last).
  template <typename It>
  void shuffle(It first, It last) {
    for (auto n = last - first; n > 1; --n) std::swap(first[n - 1], first[g_() % n]);
  }

 private:
  std::mt19937_64 g_;
};

}  // namespace tracelm
