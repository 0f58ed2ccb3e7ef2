// The CPU engine's kernels against plain double-precision loops, for every
// instruction set this CPU has, on shapes that leave partial tiles (rows not
// a multiple of the tile, outputs not a multiple of 16).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/cpu_kernels.h"

using namespace tracelm;

namespace {

std::vector<float> randoms(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace

TEST(CpuKernels, PackedProductsMatchPlainLoopsOnEveryInstructionSet) {
  int checked = 0;
  for (const char* isa : {"avx512", "avx2", "generic"}) {
    for (auto [n, N, C] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {1, 16, 8}, {3, 17, 5}, {8, 32, 64}, {9, 33, 31}, {19, 50, 192}, {40, 1298, 192}}) {
      std::vector<float> x = randoms(static_cast<size_t>(n * C), 1);
      std::vector<float> w = randoms(static_cast<size_t>(N * C), 2);
      PackedMatrix p = pack_matrix(w.data(), N, C);
      std::vector<float> y(static_cast<size_t>(n * N), -7.0f);
      if (!matmul_packed_isa(isa, x.data(), n, p, y.data())) break;  // not on this CPU
      for (int64_t i = 0; i < n; ++i)
        for (int64_t o = 0; o < N; ++o) {
          double want = 0, mag = 0;
          for (int64_t k = 0; k < C; ++k) {
            want += static_cast<double>(x[i * C + k]) * w[o * C + k];
            mag += std::abs(static_cast<double>(x[i * C + k]) * w[o * C + k]);
          }
          ASSERT_NEAR(y[i * N + o], want, 1e-5 * mag + 1e-6)
              << isa << " n=" << n << " N=" << N << " C=" << C << " at " << i << "," << o;
        }
      ++checked;
    }
  }
  EXPECT_GE(checked, 6);  // at least the generic path ran every shape
  std::vector<float> y(4, 1.0f);
  PackedMatrix p = pack_matrix(y.data(), 2, 2);
  EXPECT_FALSE(matmul_packed_isa("sse9", y.data(), 1, p, y.data()));
  EXPECT_FALSE(kernel_isa().empty());
}

TEST(CpuKernels, OneHeadsAttentionMatchesPlainSoftmax) {
  for (auto [len, D, stride] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 32, 96}, {7, 32, 32}, {300, 32, 96}, {5, 20, 40}, {3, 128, 256}}) {
    std::vector<float> q = randoms(static_cast<size_t>(D), 3);
    std::vector<float> k = randoms(static_cast<size_t>(len * stride), 4);
    std::vector<float> v = randoms(static_cast<size_t>(len * stride), 5);
    const int64_t ldk = (len + 15) / 16 * 16 + 16;  // keys transposed, padded columns
    std::vector<float> kt(static_cast<size_t>(D * ldk), 1e30f);
    for (int64_t t = 0; t < len; ++t)
      for (int64_t j = 0; j < D; ++j) kt[j * ldk + t] = k[t * stride + j];
    std::vector<float> scores(static_cast<size_t>(ldk)), out(static_cast<size_t>(D), 9.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    attend_head(q.data(), kt.data(), ldk, v.data(), stride, len, D, scale, scores.data(),
                out.data());
    std::vector<double> s(static_cast<size_t>(len));
    double mx = -1e300, z = 0;
    for (int64_t t = 0; t < len; ++t) {
      double d = 0;
      for (int64_t j = 0; j < D; ++j) d += static_cast<double>(q[j]) * k[t * stride + j];
      s[t] = d * scale;
      mx = std::max(mx, s[t]);
    }
    for (double& e : s) z += (e = std::exp(e - mx));
    for (int64_t j = 0; j < D; ++j) {
      double want = 0;
      for (int64_t t = 0; t < len; ++t) want += s[t] / z * v[t * stride + j];
      EXPECT_NEAR(out[j], want, 1e-5) << "len " << len << " D " << D << " j " << j;
    }
  }
}

TEST(CpuKernels, SwigluMatchesTheLibmFormulaOverTheWholeRange) {
  std::vector<float> g = randoms(100, 6), u = randoms(100, 7);
  for (size_t i = 0; i < g.size(); ++i) g[i] *= 12.0f;  // both tails of e^-g
  g[0] = -100.0f, g[1] = 100.0f, g[2] = 0.0f, g[3] = -87.0f, g[4] = 88.0f;
  std::vector<float> out(g.size());
  swiglu_rows(g.data(), u.data(), out.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    EXPECT_NEAR(out[i], want, 1e-6 * std::abs(want) + 1e-12) << "g = " << g[i];
  }
}
