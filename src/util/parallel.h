// parallel_for: runs fn(begin, end) over [0, n) cut into `threads` contiguous
// parts, one per thread (the calling thread takes the first part), and
// returns when all are done. Exceptions from any part are rethrown (the
// first one) after all parts have finished. threads <= 1 runs inline.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace tracelm {

inline void parallel_for(size_t n, size_t threads,
                         const std::function<void(size_t begin, size_t end)>& fn) {
  if (threads <= 1 || n < 2) {
    fn(0, n);
    return;
  }
  if (threads > n) threads = n;
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> pool;
  auto part = [&](size_t k) {
    try {
      fn(n * k / threads, n * (k + 1) / threads);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  };
  for (size_t k = 1; k < threads; ++k) pool.emplace_back(part, k);
  part(0);
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Worker threads to use by default: the machine's hardware threads.
inline size_t default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace tracelm
