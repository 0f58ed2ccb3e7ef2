// Rng: the one seeded random generator type of tracelm, passed explicitly
// (no global randomness). Draws are portable: the same seed gives the same
// values with any standard library (std::*_distribution are not portable).
// Not thread-safe; give each thread its own.
#pragma once

#include <cstdint>
#include <random>
#include <utility>

namespace tracelm {

// The seed of a sub-stream: splitmix64 of a combination of a and b (e.g. a
// run's seed and an item's index), so that sub-streams do not overlap.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

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
