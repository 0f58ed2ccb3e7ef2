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

typedef int32_t v16i __attribute__((vector_size(64)));

// e^x of 16 floats (Cephes' expf: x = n ln2 + r, |r| <= ln2/2, a degree-6
// polynomial in r, times 2^n; within 2 ulp of expf over [-87, 88], x
// clamped to that range).
TRACELM_INLINE v16 exp16(v16 x) {
  const v16 hi = v16{} + 88.3762626647949f, lo = v16{} - 87.3365447504f;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  v16 n = (x * 1.44269504088896341f + magic) - magic;
  v16 r = x - n * 0.693359375f + n * 2.12194440e-4f;
  v16 p = v16{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
  return p * reinterpret_cast<v16&>(e);
}

// out = silu(g) * u = g / (1 + e^-g) * u over n floats.
TRACELM_INLINE void swiglu(const float* g, const float* u, float* out, int64_t n) {
  int64_t j = 0;
  for (; j + kPanel <= n; j += kPanel) {
    v16 gv = load16(g + j);
    v16 o = gv / (exp16(-gv) + 1.0f) * load16(u + j);
    std::memcpy(out + j, &o, sizeof o);
  }
  for (; j < n; ++j) out[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
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

// out[0 .. 16*NV) = c * sum over t < len of p[t] * v_t[0 .. 16*NV), the sums
// kept in registers: U interleaved sets of NV, so that U * NV independent
// multiply-add chains hide their latency.
template <int NV>
TRACELM_INLINE void weighted_rows(const float* p, const float* v, int64_t vstride, int64_t len,
                                  float c, float* out) {
  constexpr int U = NV >= 8 ? 1 : NV >= 4 ? 2 : 4;
  v16 acc[U][NV];
#pragma GCC unroll 4
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) acc[u][i] = v16{};
  int64_t t = 0;
  for (; t + U <= len; t += U)
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) {
      const float s = p[t + u];
      const float* row = v + (t + u) * vstride;
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[u][i] += load16(row + i * kPanel) * s;
    }
  for (; t < len; ++t)
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) acc[0][i] += load16(v + t * vstride + i * kPanel) * p[t];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) {
#pragma GCC unroll 4
    for (int u = 1; u < U; ++u) acc[0][i] += acc[u][i];
    acc[0][i] *= c;
    std::memcpy(out + i * kPanel, &acc[0][i], sizeof(v16));
  }
}

// sc[t0 .. t0+16*B) = scale * q . k_t: B blocks of 16 positions at once (B
// independent chains over D; each key row read 16*B floats at a time).
template <int B>
TRACELM_INLINE void score_blocks(const float* q, const float* kt, int64_t ldk, int64_t t0,
                                 int64_t D, float scale, float* sc) {
  v16 acc[B];
#pragma GCC unroll 4
  for (int b = 0; b < B; ++b) acc[b] = v16{};
  for (int64_t j = 0; j < D; ++j) {
    const float qj = q[j];
    const float* row = kt + j * ldk + t0;
#pragma GCC unroll 4
    for (int b = 0; b < B; ++b) acc[b] += load16(row + b * kPanel) * qj;
  }
#pragma GCC unroll 4
  for (int b = 0; b < B; ++b) {
    acc[b] *= scale;
    std::memcpy(sc + t0 + b * kPanel, &acc[b], sizeof(v16));
  }
}

template <int NV>
TRACELM_INLINE void weighted_rows_n(int nv, const float* p, const float* v, int64_t vstride,
                                    int64_t len, float c, float* out) {
  if constexpr (NV > 1) {
    if (nv < NV) return weighted_rows_n<NV - 1>(nv, p, v, vstride, len, c, out);
  }
  weighted_rows<NV>(p, v, vstride, len, c, out);
}

TRACELM_INLINE void attend(const float* q, const float* kt, int64_t ldk, const float* v,
                           int64_t vstride, int64_t len, int64_t D, float scale, float* sc,
                           float* out) {
  const int64_t padded = (len + kPanel - 1) / kPanel * kPanel;
  int64_t t0 = 0;
  for (; t0 + 4 * kPanel <= padded; t0 += 4 * kPanel) score_blocks<4>(q, kt, ldk, t0, D, scale, sc);
  for (; t0 < padded; t0 += kPanel) score_blocks<1>(q, kt, ldk, t0, D, scale, sc);
  float mx = sc[0];
  for (int64_t t = 1; t < len; ++t) mx = std::max(mx, sc[t]);
  for (int64_t t = 0; t < padded; t += kPanel) {  // past len: unused
    v16 e = exp16(load16(sc + t) - mx);
    std::memcpy(sc + t, &e, sizeof e);
  }
  float z = 0;
  for (int64_t t = 0; t < len; ++t) z += sc[t];
  const float inv = 1.0f / z;
  int64_t j = 0;
  while (j + kPanel <= D) {  // up to 8 vectors of out at a time
    const int nv = static_cast<int>(std::min<int64_t>(8, (D - j) / kPanel));
    weighted_rows_n<8>(nv, sc, v + j, vstride, len, inv, out + j);
    j += nv * kPanel;
  }
  for (; j < D; ++j) {
    float a = 0;
    for (int64_t t = 0; t < len; ++t) a += sc[t] * v[t * vstride + j];
    out[j] = a * inv;
  }
}

__attribute__((target("avx512f,fma"))) void attend_avx512(const float* q, const float* kt,
                                                          int64_t ldk, const float* v,
                                                          int64_t vstride, int64_t len, int64_t D,
                                                          float scale, float* sc, float* out) {
  attend(q, kt, ldk, v, vstride, len, D, scale, sc, out);
}

__attribute__((target("avx2,fma"))) void attend_avx2(const float* q, const float* kt, int64_t ldk,
                                                     const float* v, int64_t vstride, int64_t len,
                                                     int64_t D, float scale, float* sc,
                                                     float* out) {
  attend(q, kt, ldk, v, vstride, len, D, scale, sc, out);
}

__attribute__((target("avx512f,fma"))) void swiglu_avx512(const float* g, const float* u,
                                                          float* out, int64_t n) {
  swiglu(g, u, out, n);
}

__attribute__((target("avx2,fma"))) void swiglu_avx2(const float* g, const float* u, float* out,
                                                     int64_t n) {
  swiglu(g, u, out, n);
}

void swiglu_generic(const float* g, const float* u, float* out, int64_t n) { swiglu(g, u, out, n); }

void attend_generic(const float* q, const float* kt, int64_t ldk, const float* v, int64_t vstride,
                    int64_t len, int64_t D, float scale, float* sc, float* out) {
  attend(q, kt, ldk, v, vstride, len, D, scale, sc, out);
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
using Attend = void (*)(const float*, const float*, int64_t, const float*, int64_t, int64_t,
                        int64_t, float, float*, float*);

using Swiglu = void (*)(const float*, const float*, float*, int64_t);

struct Isa {
  const char* name;
  Product product;
  Attend attend;
  Swiglu swiglu;
};

const Isa kIsas[] = {{"avx512", product_avx512, attend_avx512, swiglu_avx512},
                     {"avx2", product_avx2, attend_avx2, swiglu_avx2},
                     {"generic", product_generic, attend_generic, swiglu_generic}};

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

void attend_head(const float* q, const float* kt, int64_t ldk, const float* v, int64_t vstride,
                 int64_t len, int64_t D, float scale, float* scores, float* out) {
  chosen().attend(q, kt, ldk, v, vstride, len, D, scale, scores, out);
}

void swiglu_rows(const float* g, const float* u, float* out, int64_t n) {
  chosen().swiglu(g, u, out, n);
}

std::string kernel_isa() { return chosen().name; }

}  // namespace tracelm
