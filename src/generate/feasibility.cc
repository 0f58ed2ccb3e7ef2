#include "generate/feasibility.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "encode/unit_format.h"

namespace tracelm {

namespace {

constexpr int64_t kBig = 100'000'000'000'000'000;  // 1e17: no value goes above

int64_t pow10(int d) {
  int64_t p = 1;
  while (d-- > 0) p *= 10;
  return p;
}

}  // namespace

void IntSet::add(int64_t lo, int64_t hi) {
  if (lo > hi) return;
  if (n > 0 && lo <= iv[n - 1].second + 1) {
    iv[n - 1].second = std::max(iv[n - 1].second, hi);
    return;
  }
  if (n == static_cast<int>(iv.size())) return;
  iv[n++] = {lo, hi};
}

bool IntSet::contains(int64_t v) const { return intersects(v, v); }

int64_t IntSet::distance(int64_t v) const {
  int64_t d = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < n; ++i) {
    if (v < iv[i].first)
      d = std::min(d, iv[i].first - v);
    else if (v > iv[i].second)
      d = std::min(d, v - iv[i].second);
    else
      return 0;
  }
  return d;
}

bool IntSet::intersects(int64_t lo, int64_t hi) const {
  for (int i = 0; i < n; ++i)
    if (iv[i].first <= hi && lo <= iv[i].second) return true;
  return false;
}

bool IntSet::has_prefix(int64_t v, int digits) const {
  if (v == 0) return digits == 1 && contains(0);
  for (int d = 0; digits + d <= 18; ++d) {
    int64_t p = pow10(d);
    if (v > kBig / p) break;
    if (intersects(v * p, v * p + p - 1)) return true;
  }
  return false;
}

IntSet unite(const IntSet& a, const IntSet& b) {
  std::vector<std::pair<int64_t, int64_t>> v(a.iv.begin(), a.iv.begin() + a.n);
  v.insert(v.end(), b.iv.begin(), b.iv.begin() + b.n);
  std::sort(v.begin(), v.end());
  IntSet out;
  for (auto [lo, hi] : v) out.add(lo, hi);
  return out;
}

IntSet ChildBudget::edges_allowed(int64_t width, int64_t depth) const {
  IntSet out;
  // This child is not the deep one: a later line must still be, and needs
  // deep_target + 1 edges of the budget.
  bool later_deep = need_deep && depth != deep_target;
  int64_t extra = later_deep ? deep_target : 0;
  // Its own width, plus one call per level below it.
  int64_t lo = depth == 0 ? width : width + depth;
  int64_t hi = depth == 0 ? width : edges_left;
  if (lo > hi || lo > edges_left) return out;
  int64_t m1 = std::max<int64_t>(1, more_lines_min);
  if (!split) {
    // Further lines: each takes >= 1 edge, the deep one deep_target + 1.
    int64_t bmax = more_lines_max >= m1 ? edges_left - m1 - extra : -1;
    bool last = more_lines_min == 0 && !later_deep;  // this line may be the last
    if (!exact_edges) {
      int64_t top = std::max(last ? edges_left : -1, bmax);
      out.add(lo, std::min(hi, top));
      return out;
    }
    out.add(lo, std::min(hi, bmax));
    if (last && edges_left >= lo && edges_left <= hi && edges_left > bmax)
      out.add(edges_left, edges_left);
    return out;
  }
  int64_t width_after = width_left - width;
  if (width_after < 0) return out;
  if (more_lines_max >= m1 && width_after >= m1) {
    int64_t base = edges_left - width_after;  // n + (edges below the further items) = base
    if (deep_target == 0) {
      if (base >= lo && base <= hi) out.add(base, base);
    } else {
      out.add(lo, std::min(hi, base - extra));
    }
  }
  if (more_lines_min == 0 && width_after == 0 && !later_deep)
    out = unite(out, exact_edges ? (edges_left >= lo && edges_left <= hi
                                        ? IntSet::range(edges_left, edges_left)
                                        : IntSet{})
                                 : IntSet::range(lo, std::min(hi, edges_left)));
  return out;
}

IntSet values_allowed(const ChildLine& line, const ChildBudget& b, int64_t max_width) {
  using Attr = ChildLine::Attr;
  const int64_t kMaxSubgraphs = static_cast<int64_t>(kMaxLayerEdges);
  int64_t dom = line.asked == Attr::kWidth   ? max_width
                : line.asked == Attr::kDepth ? b.depth_max()
                : line.asked == Attr::kEdges ? b.edges_left
                                             : kMaxSubgraphs;
  if (dom < 0) return {};
  std::vector<int32_t> diff(static_cast<size_t>(dom) + 2, 0);
  auto mark = [&](int64_t lo, int64_t hi) {
    lo = std::max<int64_t>(lo, 0);
    hi = std::min(hi, dom);
    if (lo > hi) return;
    ++diff[static_cast<size_t>(lo)];
    --diff[static_cast<size_t>(hi) + 1];
  };
  const int64_t w0 = line.width.value_or(1), w1 = line.width.value_or(max_width);
  const int64_t d0 = line.depth.value_or(0), d1 = line.depth.value_or(b.depth_max());
  for (int64_t w = w0; w <= w1; ++w)
    for (int64_t d = d0; d <= d1; ++d) {
      IntSet g = b.edges_allowed(w, d);
      if (line.edges) {
        if (!g.contains(*line.edges)) continue;
        g = IntSet::range(*line.edges, *line.edges);
      }
      if (g.empty()) continue;
      int64_t gmax = g.iv[static_cast<size_t>(g.n - 1)].second;
      int64_t slo, shi;  // num_subgraphs
      if (is_split(w)) {
        slo = 2;
        shi = std::min<int64_t>(static_cast<int64_t>(kSplitFanout), w);
      } else if (d == 0) {
        slo = shi = 0;
      } else {
        slo = 1;
        shi = std::min(w, gmax - w - d + 1);
      }
      if (slo > shi || (line.subgraphs && (*line.subgraphs < slo || *line.subgraphs > shi)))
        continue;
      // A layer with sg subgraphs and depth d needs sg + d - 1 edges below it.
      int64_t nmin = line.subgraphs && !is_split(w) && d > 0 ? *line.subgraphs + w + d - 1 : 0;
      switch (line.asked) {
        case Attr::kWidth:
          mark(w, w);
          break;
        case Attr::kDepth:
          mark(d, d);
          break;
        case Attr::kEdges:
          for (int i = 0; i < g.n; ++i)
            mark(std::max(g.iv[static_cast<size_t>(i)].first, nmin),
                 g.iv[static_cast<size_t>(i)].second);
          break;
        case Attr::kSubgraphs:
          mark(slo, shi);
          break;
      }
    }
  IntSet out;
  int64_t run = 0;
  for (int64_t v = 0; v <= dom; ++v) {
    run += diff[static_cast<size_t>(v)];
    if (run > 0) out.add(v, v);
  }
  return out;
}

}  // namespace tracelm
