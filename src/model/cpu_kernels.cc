#include "model/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// The 64-byte vector type below only ever lives inside always-inlined
// functions: no call passes it, so the ABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace tracelm {

namespace {

// 16 floats: one AVX-512 register, two AVX2 registers or four SSE ones,
// depending on the instruction set of the function it is inlined into.
typedef float v16 __attribute__((vector_size(64)));

#define TRACELM_INLINE __attribute__((always_inline)) inline

TRACELM_INLINE v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Rows r0 .. r0+R-1 of y, outputs of panels p0 .. p0+P-1: R x P registers
// of sums over k.
template <int R, int P>
TRACELM_INLINE void tile(const float* x, int64_t C, const float* panel, float* y, int64_t N,
                         int64_t out0) {
  v16 acc[R][P];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) acc[r][p] = v16{};
  for (int64_t k = 0; k < C; ++k) {
    v16 w[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) w[p] = load16(panel + (p * C + k) * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float s = x[r * C + k];
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) acc[r][p] += w[p] * s;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) {
      int64_t o = out0 + p * kPanel;
      float* dst = y + r * N + o;
      if (o + kPanel <= N) {
        std::memcpy(dst, &acc[r][p], sizeof(v16));
      } else {
        float tmp[kPanel];
        std::memcpy(tmp, &acc[r][p], sizeof tmp);
        std::memcpy(dst, tmp, static_cast<size_t>(N - o) * sizeof(float));
      }
    }
}

// A tile of rr <= R rows and pp <= P panels (the last, partial tiles).
template <int R, int P>
TRACELM_INLINE void tile_n(int rr, int pp, const float* x, int64_t C, const float* panel, float* y,
                           int64_t N, int64_t out0) {
  if constexpr (R > 1) {
    if (rr < R) return tile_n<R - 1, P>(rr, pp, x, C, panel, y, N, out0);
  }
  if constexpr (P > 1) {
    if (pp < P) return tile_n<R, P - 1>(rr, pp, x, C, panel, y, N, out0);
  }
  tile<R, P>(x, C, panel, y, N, out0);
}

// Panels outermost: a group of P panels (P x 16 outputs x C weights, a few
// tens of KB) stays in the L1 cache while every row tile uses it.
template <int R, int P>
TRACELM_INLINE void product(const float* x, int64_t n, const PackedMatrix& w, float* y) {
  const int64_t C = w.cols, N = w.rows, panels = (N + kPanel - 1) / kPanel;
  for (int64_t p0 = 0; p0 < panels; p0 += P) {
    const int pp = static_cast<int>(std::min<int64_t>(P, panels - p0));
    const float* panel = w.panels.data() + p0 * C * kPanel;
    for (int64_t r0 = 0; r0 < n; r0 += R) {
      const int rr = static_cast<int>(std::min<int64_t>(R, n - r0));
      tile_n<R, P>(rr, pp, x + r0 * C, C, panel, y + r0 * N, N, p0 * kPanel);
    }
  }
}

TRACELM_INLINE float dot(const float* a, const float* b, int64_t D) {
  int64_t j = 0;
  v16 acc = v16{};
  for (; j + kPanel <= D; j += kPanel) acc += load16(a + j) * load16(b + j);
  float s = 0;
  for (int i = 0; i < kPanel; ++i) s += acc[i];
  for (; j < D; ++j) s += a[j] * b[j];
  return s;
}

// out += p * v over D floats.
TRACELM_INLINE void axpy(float p, const float* v, float* out, int64_t D) {
  int64_t j = 0;
  for (; j + kPanel <= D; j += kPanel) {
    v16 o = load16(out + j) + load16(v + j) * p;
    std::memcpy(out + j, &o, sizeof o);
  }
  for (; j < D; ++j) out[j] += p * v[j];
}

TRACELM_INLINE void attend(const float* q, const float* k, const float* v, int64_t stride,
                           int64_t len, int64_t D, float scale, float* sc, float* out) {
  float mx = -3.4e38f;
  for (int64_t t = 0; t < len; ++t) {
    sc[t] = scale * dot(q, k + t * stride, D);
    mx = std::max(mx, sc[t]);
  }
  float z = 0;
  for (int64_t t = 0; t < len; ++t) {
    sc[t] = std::exp(sc[t] - mx);
    z += sc[t];
  }
  const float inv = 1.0f / z;
  std::fill(out, out + D, 0.0f);
  for (int64_t t = 0; t < len; ++t) axpy(sc[t] * inv, v + t * stride, out, D);
}

__attribute__((target("avx512f,fma"))) void attend_avx512(const float* q, const float* k,
                                                          const float* v, int64_t stride,
                                                          int64_t len, int64_t D, float scale,
                                                          float* sc, float* out) {
  attend(q, k, v, stride, len, D, scale, sc, out);
}

__attribute__((target("avx2,fma"))) void attend_avx2(const float* q, const float* k, const float* v,
                                                     int64_t stride, int64_t len, int64_t D,
                                                     float scale, float* sc, float* out) {
  attend(q, k, v, stride, len, D, scale, sc, out);
}

void attend_generic(const float* q, const float* k, const float* v, int64_t stride, int64_t len,
                    int64_t D, float scale, float* sc, float* out) {
  attend(q, k, v, stride, len, D, scale, sc, out);
}

__attribute__((target("avx512f,fma"))) void product_avx512(const float* x, int64_t n,
                                                           const PackedMatrix& w, float* y) {
  product<8, 2>(x, n, w, y);  // 16 of 32 registers accumulate
}

__attribute__((target("avx2,fma"))) void product_avx2(const float* x, int64_t n,
                                                      const PackedMatrix& w, float* y) {
  product<4, 1>(x, n, w, y);  // 8 of 16 registers accumulate
}

void product_generic(const float* x, int64_t n, const PackedMatrix& w, float* y) {
  product<2, 1>(x, n, w, y);
}

using Product = void (*)(const float*, int64_t, const PackedMatrix&, float*);
using Attend = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t, float,
                        float*, float*);

struct Isa {
  const char* name;
  Product product;
  Attend attend;
};

const Isa kIsas[] = {{"avx512", product_avx512, attend_avx512},
                     {"avx2", product_avx2, attend_avx2},
                     {"generic", product_generic, attend_generic}};

bool supported(const Isa& isa) {
  __builtin_cpu_init();
  std::string n = isa.name;
  if (n == "avx512") return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  if (n == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true;
}

const Isa& chosen() {
  static const Isa* isa = [] {
    for (const Isa& i : kIsas)
      if (supported(i)) return &i;
    return &kIsas[2];
  }();
  return *isa;
}

}  // namespace

PackedMatrix pack_matrix(const float* w, int64_t rows, int64_t cols) {
  PackedMatrix m;
  m.rows = rows;
  m.cols = cols;
  const int64_t panels = (rows + kPanel - 1) / kPanel;
  m.panels.assign(static_cast<size_t>(panels * cols * kPanel), 0.0f);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t p = i / kPanel, j = i % kPanel;
    for (int64_t k = 0; k < cols; ++k)
      m.panels[static_cast<size_t>((p * cols + k) * kPanel + j)] = w[i * cols + k];
  }
  return m;
}

void matmul_packed(const float* x, int64_t n, const PackedMatrix& w, float* y) {
  if (n <= 0 || w.rows <= 0) return;
  chosen().product(x, n, w, y);
}

bool matmul_packed_isa(const std::string& isa, const float* x, int64_t n, const PackedMatrix& w,
                       float* y) {
  for (const Isa& i : kIsas)
    if (isa == i.name) {
      if (!supported(i)) return false;
      if (n > 0 && w.rows > 0) i.product(x, n, w, y);
      return true;
    }
  return false;
}

void attend_head(const float* q, const float* k, const float* v, int64_t stride, int64_t len,
                 int64_t D, float scale, float* scores, float* out) {
  chosen().attend(q, k, v, stride, len, D, scale, scores, out);
}

std::string kernel_isa() { return chosen().name; }

}  // namespace tracelm
