// CPU-engine kernel benchmark (not a test): the packed-weight product of
// model/cpu_kernels.h against OpenBLAS's sgemm (what the engine called
// before) on the products of one decoding forward of the `small` preset
// (hidden 192, 6 heads of 32, 3 key/value heads, MLP 512, vocabulary 1,984),
// for n token rows per forward, measured in the same run; and the bf16
// product (weights and inputs rounded to bf16, `generate --precision bf16`)
// against the fp32 one, with its largest relative difference from sgemm.
// Usage: bench_cpu_kernels [--reps R]
#include <cblas.h>
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "model/cpu_kernels.h"

using namespace tracelm;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Shape {
  const char* name;
  int64_t N, C;
};

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_cpu_kernels [--reps R]\n");
      return 2;
    }
  }
  // One thread, as the engine decodes one batch per thread (OpenBLAS only).
  if (auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(1);
  const Shape shapes[] = {{"qkv", 384, 192},
                          {"o", 192, 192},
                          {"gate+up", 1024, 192},
                          {"down", 192, 512},
                          {"lm head", 1984, 192}};
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::printf("kernel instruction set: %s; bf16: %s; one thread; %d forwards per figure\n",
              kernel_isa().c_str(), bf16_native() ? "native (AVX512-BF16)" : "fp32 vectors", reps);
  std::printf("%-5s %14s %14s %8s %12s %12s %10s %12s\n", "rows", "sgemm GFLOP/s", "packed GFLOP/s",
              "ratio", "max |diff|", "bf16 GFLOP/s", "bf16/fp32", "bf16 rel");
  for (int64_t n : {1, 4, 8, 16, 24, 40, 64}) {
    double t_blas = 0, t_packed = 0, t_bf16 = 0, flops = 0, maxdiff = 0, bf16_rel = 0;
    for (const Shape& s : shapes) {
      std::vector<float> x(static_cast<size_t>(n * s.C)), w(static_cast<size_t>(s.N * s.C));
      for (float& v : x) v = d(rng);
      for (float& v : w) v = d(rng);
      PackedMatrix p = pack_matrix(w.data(), s.N, s.C);
      PackedMatrix pb = pack_matrix(w.data(), s.N, s.C, Precision::kBF16);
      std::vector<float> y1(static_cast<size_t>(n * s.N)), y2(y1.size()), y3(y1.size());
      // The layers repeat these products 6 times per forward; time `reps` of them.
      double t0 = now();
      for (int r = 0; r < reps; ++r)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n),
                    static_cast<int>(s.N), static_cast<int>(s.C), 1.0f, x.data(),
                    static_cast<int>(s.C), w.data(), static_cast<int>(s.C), 0.0f, y1.data(),
                    static_cast<int>(s.N));
      double t1 = now();
      for (int r = 0; r < reps; ++r) matmul_packed(x.data(), n, p, y2.data());
      double t2 = now();
      for (int r = 0; r < reps; ++r) matmul_packed(x.data(), n, pb, y3.data());
      double t3 = now();
      t_blas += t1 - t0;
      t_packed += t2 - t1;
      t_bf16 += t3 - t2;
      // bf16 against sgemm, relative to the sum of |products| (sqrt(C) for N(0,1) entries).
      for (size_t i = 0; i < y1.size(); ++i)
        bf16_rel = std::max(bf16_rel, std::abs(static_cast<double>(y1[i] - y3[i])) /
                                          std::sqrt(static_cast<double>(s.C)));
      flops += 2.0 * static_cast<double>(n * s.N * s.C) * reps;
      for (size_t i = 0; i < y1.size(); ++i)
        maxdiff = std::max(maxdiff, static_cast<double>(std::abs(y1[i] - y2[i])));
    }
    std::printf("%-5lld %14.1f %14.1f %7.2fx %12.2e %12.1f %9.2fx %12.2e\n",
                static_cast<long long>(n), flops / t_blas / 1e9, flops / t_packed / 1e9,
                t_blas / t_packed, maxdiff, flops / t_bf16 / 1e9, t_packed / t_bf16, bf16_rel);
  }
  return 0;
}
