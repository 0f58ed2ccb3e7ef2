// ordered_parallel: produces items 0..n-1 on worker threads and consumes
// them on the calling thread in index order, with at most `lookahead` items
// produced ahead of the one being consumed (bounded memory).
//
// Contract:
//  - produce(i) runs on one of `threads` worker threads (inline when
//    threads <= 1), once per i, in any order and concurrently with other
//    produce calls and with consume; consume(i, item) runs on the calling
//    thread for i = 0, 1, ..., n-1 in order.
//  - An exception from produce or consume stops the workers (items not yet
//    started are never produced) and is rethrown once all have stopped.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tracelm {

template <typename T, typename Produce, typename Consume>
void ordered_parallel(size_t n, size_t threads, size_t lookahead, Produce produce,
                      Consume consume) {
  if (threads <= 1 || n < 2) {
    for (size_t i = 0; i < n; ++i) consume(i, produce(i));
    return;
  }
  lookahead = std::max(lookahead, threads);
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::optional<T>> slot(lookahead);  // item i in slot[i % lookahead]
  size_t next = 0, consumed = 0;                  // next item to claim; items consumed
  bool stop = false;
  std::exception_ptr error;
  auto work = [&] {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return stop || next >= n || next < consumed + lookahead; });
        if (stop || next >= n) return;
        i = next++;
      }
      try {
        T item = produce(i);
        std::lock_guard<std::mutex> l(m);
        slot[i % lookahead].emplace(std::move(item));
      } catch (...) {
        std::lock_guard<std::mutex> l(m);
        if (!error) error = std::current_exception();
        stop = true;
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (size_t k = 0; k < threads; ++k) pool.emplace_back(work);
  try {
    for (size_t i = 0; i < n; ++i) {
      std::optional<T> item;
      {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [&] { return stop || slot[i % lookahead].has_value(); });
        if (stop) break;
        item = std::move(slot[i % lookahead]);
        slot[i % lookahead].reset();
      }
      consume(i, std::move(*item));
      {
        std::lock_guard<std::mutex> l(m);
        ++consumed;
      }
      cv.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> l(m);
    if (!error) error = std::current_exception();
    stop = true;
  }
  cv.notify_all();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace tracelm
