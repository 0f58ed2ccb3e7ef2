// The CPU engine's kernels against plain double-precision loops, for every
// instruction set this CPU has, on shapes that leave partial tiles (rows not
// a multiple of the tile, outputs not a multiple of 16).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
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

TEST(CpuKernels, Bf16RoundsToNearestEven) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(-2.0f), 0xc000);
  auto f = [](uint32_t bits) { return __builtin_bit_cast(float, bits); };
  EXPECT_EQ(to_bf16(f(0x3f808000u)), 0x3f80);  // a tie: to the even 0x3f80
  EXPECT_EQ(to_bf16(f(0x3f818000u)), 0x3f82);  // a tie: to the even 0x3f82
  EXPECT_EQ(to_bf16(f(0x3f808001u)), 0x3f81);  // above the tie
  EXPECT_EQ(to_bf16(f(0x7f7fffffu)), 0x7f80);  // the largest float rounds to infinity
  EXPECT_EQ(to_bf16(f(0x7f800000u)), 0x7f80);  // infinity stays
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(std::nanf("")))));
  EXPECT_EQ(from_bf16(0x3f81), 1.0078125f);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBF16);
  EXPECT_STREQ(precision_name(Precision::kF32), "fp32");
  EXPECT_THROW(parse_precision("fp16"), std::invalid_argument);
}

// bf16 products: the sums of the bf16-rounded inputs' products (within fp32
// rounding), the same bits on every path this CPU has (native AVX512-BF16
// and the fp32-vector paths), and a row's result whatever rows come with it.
TEST(CpuKernels, Bf16ProductsAreTheSameBitsOnEveryPathAndRowAlone) {
  int native = 0;
  for (auto [n, N, C] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 16, 8}, {3, 17, 5}, {9, 33, 31}, {19, 50, 192}, {40, 130, 512}}) {
    std::vector<float> x = randoms(static_cast<size_t>(n * C), 11);
    std::vector<float> w = randoms(static_cast<size_t>(N * C), 12);
    PackedMatrix p = pack_matrix(w.data(), N, C, Precision::kBF16);
    std::vector<float> ref(static_cast<size_t>(n * N), -7.0f);
    ASSERT_TRUE(matmul_packed_isa("generic", x.data(), n, p, ref.data()));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t o = 0; o < N; ++o) {
        double want = 0, mag = 0;
        for (int64_t k = 0; k < C; ++k) {
          double t = static_cast<double>(from_bf16(to_bf16(x[i * C + k]))) *
                     from_bf16(to_bf16(w[o * C + k]));
          want += t;
          mag += std::abs(t);
        }
        ASSERT_NEAR(ref[i * N + o], want, 1e-5 * mag + 1e-6)
            << "n=" << n << " N=" << N << " C=" << C;
      }
    for (const char* isa : {"avx512bf16", "avx512", "avx2"}) {
      std::vector<float> y(ref.size(), 3.0f);
      if (!matmul_packed_isa(isa, x.data(), n, p, y.data())) continue;  // not on this CPU
      native += std::string(isa) == "avx512bf16";
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_EQ(y[i], ref[i]) << isa << " n=" << n << " N=" << N << " C=" << C << " at " << i;
    }
    std::vector<float> all(ref.size()), one(static_cast<size_t>(N));
    matmul_packed(x.data(), n, p, all.data());
    for (int64_t i = 0; i < n; ++i) {
      matmul_packed(x.data() + i * C, 1, p, one.data());
      for (int64_t o = 0; o < N; ++o) ASSERT_EQ(one[o], all[i * N + o]) << "row " << i;
    }
  }
  if (!bf16_native())
    std::printf("note: no AVX512-BF16 on this CPU: the native path was not run\n");
  EXPECT_EQ(native > 0, bf16_native());
}

// A run of tokens x heads query rows against plain causal softmax, each row
// over its own length (len0 + token index), for head sizes with a vector path
// (16, 32, 128) and without (20).
TEST(CpuKernels, AttentionRunsMatchPlainCausalSoftmax) {
  for (auto [len0, tokens, heads, D] :
       std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>>{{1, 1, 1, 32},
                                                                   {7, 1, 2, 32},
                                                                   {1, 35, 2, 32},
                                                                   {300, 3, 2, 32},
                                                                   {5, 4, 1, 20},
                                                                   {3, 2, 3, 128},
                                                                   {17, 9, 1, 16}}) {
    const int64_t positions = len0 + tokens - 1, stride = 3 * D;     // cache rows hold 3 heads
    const int64_t qstride = heads * D + 5, ostride = heads * D + 3;  // row strides with gaps
    std::vector<float> q = randoms(static_cast<size_t>(tokens * qstride), 3);
    std::vector<float> k = randoms(static_cast<size_t>(positions * stride), 4);
    std::vector<float> v = randoms(static_cast<size_t>(positions * stride), 5);
    const int64_t blocks = (positions + 15) / 16, ldk = D * 16 + 48;  // a gap between blocks
    std::vector<float> kt(static_cast<size_t>(blocks * ldk), 1e30f);
    for (int64_t t = 0; t < positions; ++t)
      for (int64_t j = 0; j < D; ++j) kt[(t / 16) * ldk + j * 16 + t % 16] = k[t * stride + j];
    std::vector<float> scores(static_cast<size_t>(tokens * heads * blocks * 16));
    std::vector<float> out(static_cast<size_t>(tokens * ostride), 9.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    attend_rows(q.data(), qstride, tokens, heads, kt.data(), ldk, v.data(), stride, len0, D, scale,
                scores.data(), out.data(), ostride);
    for (int64_t a = 0; a < tokens; ++a)
      for (int64_t g = 0; g < heads; ++g) {
        const float* qr = q.data() + a * qstride + g * D;
        const int64_t len = len0 + a;
        std::vector<double> sc(static_cast<size_t>(len));
        double mx = -1e300, z = 0;
        for (int64_t t = 0; t < len; ++t) {
          double d = 0;
          for (int64_t j = 0; j < D; ++j) d += static_cast<double>(qr[j]) * k[t * stride + j];
          sc[t] = d * scale;
          mx = std::max(mx, sc[t]);
        }
        for (double& e : sc) z += (e = std::exp(e - mx));
        for (int64_t j = 0; j < D; ++j) {
          double want = 0;
          for (int64_t t = 0; t < len; ++t) want += sc[t] / z * v[t * stride + j];
          ASSERT_NEAR(out[a * ostride + g * D + j], want, 1e-5)
              << "len0 " << len0 << " tokens " << tokens << " heads " << heads << " D " << D
              << " token " << a << " head " << g << " j " << j;
        }
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

TEST(CpuKernels, RmsNormRowsMatchPlainLoops) {
  for (int64_t C : {16, 20, 192}) {
    const int64_t n = 3;
    std::vector<float> x = randoms(static_cast<size_t>(n * C), 8), w = randoms(C, 9);
    std::vector<float> y(x.size());
    rms_norm_rows(x.data(), w.data(), y.data(), n, C, 1e-5f);
    for (int64_t i = 0; i < n; ++i) {
      double ss = 0;
      for (int64_t j = 0; j < C; ++j) ss += static_cast<double>(x[i * C + j]) * x[i * C + j];
      const double r = 1.0 / std::sqrt(ss / static_cast<double>(C) + 1e-5);
      for (int64_t j = 0; j < C; ++j)
        EXPECT_NEAR(y[i * C + j], x[i * C + j] * r * w[j], 1e-5) << "C " << C << " row " << i;
    }
  }
}
