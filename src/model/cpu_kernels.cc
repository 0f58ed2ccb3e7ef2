#include "model/cpu_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <immintrin.h>

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
  return p * __builtin_bit_cast(v16, e);  // 2^n, bit for bit
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

// y = x / rms(x) * w for each of n rows of C floats.
TRACELM_INLINE void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t C,
                             float eps) {
  for (int64_t i = 0; i < n; ++i, x += C, y += C) {
    v16 acc = v16{};
    int64_t j = 0;
    for (; j + kPanel <= C; j += kPanel) {
      v16 a = load16(x + j);
      acc += a * a;
    }
    float ss = 0;
    for (int k = 0; k < kPanel; ++k) ss += acc[k];
    for (; j < C; ++j) ss += x[j] * x[j];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    j = 0;
    for (; j + kPanel <= C; j += kPanel) {
      v16 o = load16(x + j) * r * load16(w + j);
      std::memcpy(y + j, &o, sizeof o);
    }
    for (; j < C; ++j) y[j] = x[j] * r * w[j];
  }
}

// Writes a tile's sums: rows 0..R-1 of y (stride N), outputs out0 + 16p.
template <int R, int P>
TRACELM_INLINE void store_tile(const v16 (&acc)[R][P], float* y, int64_t N, int64_t out0) {
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
  store_tile<R, P>(acc, y, N, out0);
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

// bf16 products (see the header): x and W as pairs of bf16 in one uint32
// (element 2i in the low half, 2i+1 in the high half), C2 = ceil(C/2) pairs
// per row. A bf16 is the high half of an fp32, so a pair unpacks into two
// fp32 vectors by a shift and a mask; the products are exact in fp32, so
// fused or not, each sum below is rounded once, as VDPBF16PS rounds it.
typedef uint32_t v16u __attribute__((vector_size(64)));

TRACELM_INLINE v16u load16u(const uint32_t* p) {
  v16u v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <int R, int P>
TRACELM_INLINE void tile_pairs(const uint32_t* x, int64_t C2, const uint32_t* panel, float* y,
                               int64_t N, int64_t out0) {
  v16 acc[R][P];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) acc[r][p] = v16{};
  for (int64_t i = 0; i < C2; ++i) {
    v16 even[P], odd[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) {
      const v16u raw = load16u(panel + (p * C2 + i) * kPanel);
      even[p] = __builtin_bit_cast(v16, raw << 16);
      odd[p] = __builtin_bit_cast(v16, raw & 0xffff0000u);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint32_t s = x[r * C2 + i];
      const float se = __builtin_bit_cast(float, s << 16);
      const float so = __builtin_bit_cast(float, s & 0xffff0000u);
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        acc[r][p] += odd[p] * so;
        acc[r][p] += even[p] * se;
      }
    }
  }
  store_tile<R, P>(acc, y, N, out0);
}

template <int R, int P>
TRACELM_INLINE void tile_pairs_n(int rr, int pp, const uint32_t* x, int64_t C2,
                                 const uint32_t* panel, float* y, int64_t N, int64_t out0) {
  if constexpr (R > 1) {
    if (rr < R) return tile_pairs_n<R - 1, P>(rr, pp, x, C2, panel, y, N, out0);
  }
  if constexpr (P > 1) {
    if (pp < P) return tile_pairs_n<R, P - 1>(rr, pp, x, C2, panel, y, N, out0);
  }
  tile_pairs<R, P>(x, C2, panel, y, N, out0);
}

int64_t pairs_of(int64_t C) { return (C + 1) / 2; }

const uint32_t* panel_pairs(const PackedMatrix& w) {
  return reinterpret_cast<const uint32_t*>(w.panels_bf16.data());
}

template <int R, int P>
TRACELM_INLINE void product_pairs(const uint32_t* x, int64_t n, const PackedMatrix& w, float* y) {
  const int64_t C2 = pairs_of(w.cols), N = w.rows, panels = (N + kPanel - 1) / kPanel;
  for (int64_t p0 = 0; p0 < panels; p0 += P) {
    const int pp = static_cast<int>(std::min<int64_t>(P, panels - p0));
    const uint32_t* panel = panel_pairs(w) + p0 * C2 * kPanel;
    for (int64_t r0 = 0; r0 < n; r0 += R) {
      const int rr = static_cast<int>(std::min<int64_t>(R, n - r0));
      tile_pairs_n<R, P>(rr, pp, x + r0 * C2, C2, panel, y + r0 * N, N, p0 * kPanel);
    }
  }
}

// The query rows of one attend_rows() call: row k is token a = k / heads,
// head g = k % heads of the run; it sees the first len0 + a positions.
struct Rows {
  const float* q;
  int64_t q_token_stride, heads, rows, len0, D;
  float* out;
  int64_t out_token_stride;
  const float* query(int64_t k) const { return q + (k / heads) * q_token_stride + (k % heads) * D; }
  float* output(int64_t k) const { return out + (k / heads) * out_token_stride + (k % heads) * D; }
  int64_t len(int64_t k) const { return len0 + k / heads; }
};

// Scores of R rows k0.. over T blocks of 16 positions from t0: sc[k][t] =
// scale * q_k . key_t, each block of keys read once for the R rows. R x T
// independent sums: with few rows, one block's R sums over D would wait on
// each other's latency.
template <int R, int T>
TRACELM_INLINE void score_tile(const Rows& rw, int64_t k0, const float* kt, int64_t ldk, int64_t t0,
                               float scale, float* sc, int64_t ldsc) {
  v16 acc[R][T];
  const float* q[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int b = 0; b < T; ++b) acc[r][b] = v16{};
    q[r] = rw.query(k0 + r);
  }
  const float* kb = kt + (t0 / kPanel) * ldk;
  for (int64_t j = 0; j < rw.D; ++j) {
#pragma GCC unroll 8
    for (int b = 0; b < T; ++b) {
      const v16 key = load16(kb + b * ldk + j * kPanel);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][b] += key * q[r][j];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int b = 0; b < T; ++b) {
      acc[r][b] *= scale;
      std::memcpy(sc + (k0 + r) * ldsc + t0 + b * kPanel, &acc[r][b], sizeof(v16));
    }
}

// Blocks [t0, padded) of rows k0 .. k0 + R: T blocks at a time, then one.
template <int R>
TRACELM_INLINE void score_rows(const Rows& rw, int64_t k0, const float* kt, int64_t ldk,
                               int64_t padded, float scale, float* sc, int64_t ldsc) {
  constexpr int T = R >= 8 ? 1 : 8 / R;  // about 8 independent sums
  int64_t t0 = 0;
  if constexpr (T > 1)
    for (; t0 + T * kPanel <= padded; t0 += T * kPanel)
      score_tile<R, T>(rw, k0, kt, ldk, t0, scale, sc, ldsc);
  for (; t0 < padded; t0 += kPanel) score_tile<R, 1>(rw, k0, kt, ldk, t0, scale, sc, ldsc);
}

template <int R>
TRACELM_INLINE void score_rows_n(int rr, const Rows& rw, int64_t k0, const float* kt, int64_t ldk,
                                 int64_t padded, float scale, float* sc, int64_t ldsc) {
  if constexpr (R > 1) {
    if (rr < R) return score_rows_n<R - 1>(rr, rw, k0, kt, ldk, padded, scale, sc, ldsc);
  }
  score_rows<R>(rw, k0, kt, ldk, padded, scale, sc, ldsc);
}

// out_k = sum over t < tmax of p[k][t] v_t for R rows, NV vectors of 16
// (D = 16 NV): each value row read once for the R rows. With few
// accumulators (R NV < 8) even and odd positions sum apart, so that the
// sums do not wait on each other's latency.
template <int R, int NV>
TRACELM_INLINE void value_tile(const Rows& rw, int64_t k0, const float* v, int64_t vstride,
                               int64_t tmax, const float* sc, int64_t ldsc) {
  constexpr int S = R * NV < 8 ? 2 : 1;  // independent sums per output vector
  v16 acc[S][R][NV];
#pragma GCC unroll 8
  for (int u = 0; u < S; ++u)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[u][r][i] = v16{};
  auto add = [&](int u, int64_t t) __attribute__((always_inline)) {
    v16 val[NV];
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) val[i] = load16(v + t * vstride + i * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float p = sc[(k0 + r) * ldsc + t];
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[u][r][i] += val[i] * p;
    }
  };
  int64_t t = 0;
  for (; t + S <= tmax; t += S)
#pragma GCC unroll 2
    for (int u = 0; u < S; ++u) add(u, t + u);
  for (; t < tmax; ++t) add(0, t);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* o = rw.output(k0 + r);
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) {
      v16 a = acc[0][r][i];
#pragma GCC unroll 2
      for (int u = 1; u < S; ++u) a += acc[u][r][i];
      std::memcpy(o + i * kPanel, &a, sizeof(v16));
    }
  }
}

template <int R, int NV>
TRACELM_INLINE void value_tile_n(int rr, const Rows& rw, int64_t k0, const float* v,
                                 int64_t vstride, int64_t tmax, const float* sc, int64_t ldsc) {
  if constexpr (R > 1) {
    if (rr < R) return value_tile_n<R - 1, NV>(rr, rw, k0, v, vstride, tmax, sc, ldsc);
  }
  value_tile<R, NV>(rw, k0, v, vstride, tmax, sc, ldsc);
}

template <int NV>
TRACELM_INLINE void values(const Rows& rw, const float* v, int64_t vstride, int64_t tmax,
                           const float* sc, int64_t ldsc) {
  constexpr int R = NV >= 8 ? 1 : NV >= 4 ? 3 : NV >= 2 ? 6 : 8;  // R * NV accumulators <= 16
  for (int64_t k0 = 0; k0 < rw.rows; k0 += R)
    value_tile_n<R, NV>(static_cast<int>(std::min<int64_t>(R, rw.rows - k0)), rw, k0, v, vstride,
                        tmax, sc, ldsc);
}

TRACELM_INLINE void attend(const Rows& rw, const float* kt, int64_t ldk, const float* v,
                           int64_t vstride, float scale, float* sc) {
  const int64_t tmax = rw.len(rw.rows - 1);  // the longest row
  const int64_t padded = (tmax + kPanel - 1) / kPanel * kPanel, ldsc = padded;
  for (int64_t k0 = 0; k0 < rw.rows; k0 += 8)
    score_rows_n<8>(static_cast<int>(std::min<int64_t>(8, rw.rows - k0)), rw, k0, kt, ldk, padded,
                    scale, sc, ldsc);
  // Softmax of each row over its own positions; later ones weigh 0. In
  // vectors: scalar max and sum chains cost more than the scores.
  const v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  for (int64_t k = 0; k < rw.rows; ++k) {
    float* row = sc + k * ldsc;
    const int64_t len = rw.len(k);
    v16 m = load16(row);
    m = lane < static_cast<int32_t>(len) ? m : v16{} - INFINITY;
    for (int64_t t = kPanel; t < len; t += kPanel) {
      const v16 x = load16(row + t);
      const v16 xm = lane + static_cast<int32_t>(t) < static_cast<int32_t>(len) ? x : m;
      m = m > xm ? m : xm;
    }
    float mx = m[0];
    for (int i = 1; i < kPanel; ++i) mx = std::max(mx, m[i]);
    v16 z{};
    for (int64_t t = 0; t < padded; t += kPanel) {
      v16 e = exp16(load16(row + t) - mx);
      e = lane + static_cast<int32_t>(t) < static_cast<int32_t>(len) ? e : v16{};
      std::memcpy(row + t, &e, sizeof e);
      z += e;
    }
    float zs = 0;
    for (int i = 0; i < kPanel; ++i) zs += z[i];
    const v16 inv = v16{} + 1.0f / zs;
    for (int64_t t = 0; t < padded; t += kPanel) {
      const v16 p = load16(row + t) * inv;
      std::memcpy(row + t, &p, sizeof p);
    }
  }
  switch (rw.D) {
    case 16:
      return values<1>(rw, v, vstride, tmax, sc, ldsc);
    case 32:
      return values<2>(rw, v, vstride, tmax, sc, ldsc);
    case 64:
      return values<4>(rw, v, vstride, tmax, sc, ldsc);
    case 128:
      return values<8>(rw, v, vstride, tmax, sc, ldsc);
    default:
      break;
  }
  for (int64_t k = 0; k < rw.rows; ++k) {  // any other head size
    float* o = rw.output(k);
    const float* p = sc + k * ldsc;
    for (int64_t j = 0; j < rw.D; ++j) {
      float a = 0;
      for (int64_t t = 0; t < tmax; ++t) a += p[t] * v[t * vstride + j];
      o[j] = a;
    }
  }
}

__attribute__((target("avx512f,fma"))) void attend_avx512(const Rows& rw, const float* kt,
                                                          int64_t ldk, const float* v,
                                                          int64_t vstride, float scale, float* sc) {
  attend(rw, kt, ldk, v, vstride, scale, sc);
}

__attribute__((target("avx2,fma"))) void attend_avx2(const Rows& rw, const float* kt, int64_t ldk,
                                                     const float* v, int64_t vstride, float scale,
                                                     float* sc) {
  attend(rw, kt, ldk, v, vstride, scale, sc);
}

void attend_generic(const Rows& rw, const float* kt, int64_t ldk, const float* v, int64_t vstride,
                    float scale, float* sc) {
  attend(rw, kt, ldk, v, vstride, scale, sc);
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

__attribute__((target("avx512f,fma"))) void norm_avx512(const float* x, const float* w, float* y,
                                                        int64_t n, int64_t C, float eps) {
  rms_norm(x, w, y, n, C, eps);
}

__attribute__((target("avx2,fma"))) void norm_avx2(const float* x, const float* w, float* y,
                                                   int64_t n, int64_t C, float eps) {
  rms_norm(x, w, y, n, C, eps);
}

void norm_generic(const float* x, const float* w, float* y, int64_t n, int64_t C, float eps) {
  rms_norm(x, w, y, n, C, eps);
}

__attribute__((target("avx512f,fma"))) void product_avx512(const float* x, int64_t n,
                                                           const PackedMatrix& w, float* y) {
  product<4, 4>(x, n, w, y);  // 16 of 32 registers accumulate
}

__attribute__((target("avx2,fma"))) void product_avx2(const float* x, int64_t n,
                                                      const PackedMatrix& w, float* y) {
  product<4, 1>(x, n, w, y);  // 8 of 16 registers accumulate
}

void product_generic(const float* x, int64_t n, const PackedMatrix& w, float* y) {
  product<2, 1>(x, n, w, y);
}

__attribute__((target("avx512f,fma"))) void pairs_avx512(const uint32_t* x, int64_t n,
                                                         const PackedMatrix& w, float* y) {
  product_pairs<4, 4>(x, n, w, y);
}

__attribute__((target("avx2,fma"))) void pairs_avx2(const uint32_t* x, int64_t n,
                                                    const PackedMatrix& w, float* y) {
  product_pairs<4, 1>(x, n, w, y);
}

void pairs_generic(const uint32_t* x, int64_t n, const PackedMatrix& w, float* y) {
  product_pairs<2, 1>(x, n, w, y);
}

// The native bf16 product: VDPBF16PS adds a pair's two products to each
// fp32 lane (the same sums as tile_pairs). Its own region: the intrinsics
// inline only into functions compiled for AVX512-BF16.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512bf16,fma")

template <int R, int P>
TRACELM_INLINE void tile_dp(const uint32_t* x, int64_t C2, const uint32_t* panel, float* y,
                            int64_t N, int64_t out0) {
  v16 acc[R][P];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) acc[r][p] = v16{};
  for (int64_t i = 0; i < C2; ++i) {
    __m512bh w[P];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p)
      w[p] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(panel + (p * C2 + i) * kPanel));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh s =
          reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(x[r * C2 + i])));
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p)
        acc[r][p] =
            reinterpret_cast<v16>(_mm512_dpbf16_ps(reinterpret_cast<__m512>(acc[r][p]), s, w[p]));
    }
  }
  store_tile<R, P>(acc, y, N, out0);
}

template <int R, int P>
TRACELM_INLINE void tile_dp_n(int rr, int pp, const uint32_t* x, int64_t C2, const uint32_t* panel,
                              float* y, int64_t N, int64_t out0) {
  if constexpr (R > 1) {
    if (rr < R) return tile_dp_n<R - 1, P>(rr, pp, x, C2, panel, y, N, out0);
  }
  if constexpr (P > 1) {
    if (pp < P) return tile_dp_n<R, P - 1>(rr, pp, x, C2, panel, y, N, out0);
  }
  tile_dp<R, P>(x, C2, panel, y, N, out0);
}

void pairs_avx512bf16(const uint32_t* x, int64_t n, const PackedMatrix& w, float* y) {
  const int64_t C2 = pairs_of(w.cols), N = w.rows, panels = (N + kPanel - 1) / kPanel;
  constexpr int R = 4, P = 4;  // 16 of 32 registers accumulate
  for (int64_t p0 = 0; p0 < panels; p0 += P) {
    const int pp = static_cast<int>(std::min<int64_t>(P, panels - p0));
    const uint32_t* panel = panel_pairs(w) + p0 * C2 * kPanel;
    for (int64_t r0 = 0; r0 < n; r0 += R) {
      const int rr = static_cast<int>(std::min<int64_t>(R, n - r0));
      tile_dp_n<R, P>(rr, pp, x + r0 * C2, C2, panel, y + r0 * N, N, p0 * kPanel);
    }
  }
}

#pragma GCC pop_options

using Product = void (*)(const float*, int64_t, const PackedMatrix&, float*);
using Pairs = void (*)(const uint32_t*, int64_t, const PackedMatrix&, float*);
using Attend = void (*)(const Rows&, const float*, int64_t, const float*, int64_t, float, float*);

using Swiglu = void (*)(const float*, const float*, float*, int64_t);

using Norm = void (*)(const float*, const float*, float*, int64_t, int64_t, float);

struct Isa {
  const char* name;
  Product product;
  Pairs pairs;
  Attend attend;
  Swiglu swiglu;
  Norm norm;
};

const Isa kIsas[] = {
    {"avx512", product_avx512, pairs_avx512, attend_avx512, swiglu_avx512, norm_avx512},
    {"avx2", product_avx2, pairs_avx2, attend_avx2, swiglu_avx2, norm_avx2},
    {"generic", product_generic, pairs_generic, attend_generic, swiglu_generic, norm_generic}};

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

const char* precision_name(Precision p) { return p == Precision::kBF16 ? "bf16" : "fp32"; }

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kF32;
  if (name == "bf16") return Precision::kBF16;
  throw std::invalid_argument("unknown precision \"" + name + "\" (expected fp32 or bf16)");
}

uint16_t to_bf16(float x) {
  uint32_t u = __builtin_bit_cast(uint32_t, x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16(uint16_t b) { return __builtin_bit_cast(float, static_cast<uint32_t>(b) << 16); }

bool bf16_native() {
  static const bool native = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("fma");
  }();
  return native;
}

PackedMatrix pack_matrix(const float* w, int64_t rows, int64_t cols, Precision precision) {
  PackedMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.precision = precision;
  const int64_t panels = (rows + kPanel - 1) / kPanel;
  if (precision == Precision::kBF16) {
    const int64_t C2 = pairs_of(cols);
    m.panels_bf16.assign(static_cast<size_t>(panels * C2 * kPanel * 2), 0);
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t p = i / kPanel, j = i % kPanel;
      for (int64_t k = 0; k < cols; ++k)
        m.panels_bf16[static_cast<size_t>(((p * C2 + k / 2) * kPanel + j) * 2 + k % 2)] =
            to_bf16(w[i * cols + k]);
    }
    return m;
  }
  m.panels.assign(static_cast<size_t>(panels * cols * kPanel), 0.0f);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t p = i / kPanel, j = i % kPanel;
    for (int64_t k = 0; k < cols; ++k)
      m.panels[static_cast<size_t>((p * cols + k) * kPanel + j)] = w[i * cols + k];
  }
  return m;
}

namespace {

// x (n, C) rounded to bf16 pairs (n, ceil(C/2)) in a per-thread buffer
// (an odd C's last pair has a zero high half).
const uint32_t* to_pairs(const float* x, int64_t n, int64_t C) {
  thread_local std::vector<uint16_t> buf;
  const int64_t C2 = pairs_of(C);
  buf.resize(static_cast<size_t>(n * C2 * 2));
  typedef uint16_t v16h __attribute__((vector_size(32)));
  for (int64_t r = 0; r < n; ++r) {
    const float* src = x + r * C;
    uint16_t* dst = buf.data() + r * C2 * 2;
    int64_t k = 0;
    for (; k + kPanel <= C; k += kPanel) {
      const v16u u = __builtin_bit_cast(v16u, load16(src + k));
      const v16u rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
      const v16u nan = (u >> 16) | 0x40u;
      const v16h h = __builtin_convertvector((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded, v16h);
      std::memcpy(dst + k, &h, sizeof h);
    }
    for (; k < C; ++k) dst[k] = to_bf16(src[k]);
    if (C % 2) dst[C] = 0;
  }
  return reinterpret_cast<const uint32_t*>(buf.data());
}

}  // namespace

void matmul_packed(const float* x, int64_t n, const PackedMatrix& w, float* y) {
  if (n <= 0 || w.rows <= 0) return;
  if (w.precision == Precision::kBF16) {
    const uint32_t* xp = to_pairs(x, n, w.cols);
    if (bf16_native()) {
      pairs_avx512bf16(xp, n, w, y);
    } else {
      chosen().pairs(xp, n, w, y);
    }
    return;
  }
  chosen().product(x, n, w, y);
}

bool matmul_packed_isa(const std::string& isa, const float* x, int64_t n, const PackedMatrix& w,
                       float* y) {
  if (w.precision == Precision::kBF16 && isa == "avx512bf16") {
    if (!bf16_native()) return false;
    if (n > 0 && w.rows > 0) pairs_avx512bf16(to_pairs(x, n, w.cols), n, w, y);
    return true;
  }
  for (const Isa& i : kIsas)
    if (isa == i.name) {
      if (!supported(i)) return false;
      if (n > 0 && w.rows > 0) {
        if (w.precision == Precision::kBF16) {
          i.pairs(to_pairs(x, n, w.cols), n, w, y);
        } else {
          i.product(x, n, w, y);
        }
      }
      return true;
    }
  return false;
}

void attend_rows(const float* q, int64_t q_token_stride, int64_t tokens, int64_t heads,
                 const float* kt, int64_t ldk, const float* v, int64_t vstride, int64_t len0,
                 int64_t D, float scale, float* scores, float* out, int64_t out_token_stride) {
  if (tokens <= 0 || heads <= 0) return;
  Rows rw{q, q_token_stride, heads, tokens * heads, len0, D, out, out_token_stride};
  chosen().attend(rw, kt, ldk, v, vstride, scale, scores);
}

void swiglu_rows(const float* g, const float* u, float* out, int64_t n) {
  chosen().swiglu(g, u, out, n);
}

void rms_norm_rows(const float* x, const float* w, float* y, int64_t n, int64_t C, float eps) {
  chosen().norm(x, w, y, n, C, eps);
}

std::string kernel_isa() { return chosen().name; }

}  // namespace tracelm
