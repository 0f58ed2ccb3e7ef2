// Matrix products for the CPU decoding engine (model/cpu_decoder.h), made
// for what decoding asks: a few to a few dozen token rows times a fixed
// weight matrix. A general BLAS packs the weight matrix into its kernel's
// layout on every call (OpenBLAS's sgemm_incopy took 22% of `generate`'s
// time); here the weights are packed once, when the engine is built, and the
// product streams them in that layout.
//
// Layout: W (N, C) row-major (out x in, as torch stores a Linear weight)
// becomes panels of 16 output rows: panel p holds W[16p + j][k] at
// (p*C + k)*16 + j, rows past N zero. A product keeps a tile of up to 4
// token rows x 64 outputs in registers (AVX-512) and runs k over C.
//
// Contract:
//  - matmul_packed(x, n, W, y): y (n, N) = x (n, C) W^T, exactly the sums of
//    products in k order with fused multiply-adds where the CPU has them
//    (results differ from BLAS by rounding only; tests compare within 1e-5
//    relative).
//  - The instruction set is chosen once at run time (AVX-512, AVX2+FMA, or
//    plain C++ vectors): the same build runs on any x86-64 CPU.
//  - attend_rows: causal attention of a run of one sequence's tokens over
//    its cached keys and values, in plain loops (the per-head BLAS calls it
//    replaces cost more in call overhead than in arithmetic).
//  - bf16 matrices (pack_matrix(..., Precision::kBF16), after llama.cpp's
//    and oneDNN's bf16 paths): W and each product's x are rounded to bf16
//    (round to nearest even), the products of bf16 pairs are exact in fp32
//    and summed in fp32 pair by pair (k = 2i+1, then 2i, as AVX512-BF16's
//    VDPBF16PS does). Half the weight bytes, and on CPUs with AVX512-BF16
//    half the instructions; elsewhere the same sums in fp32 vectors, so the
//    results are the same bits on every CPU (denormal products aside: the
//    instruction flushes them). Rows never interact, as in fp32.
//  - Thread-safe: a PackedMatrix is immutable; products on several threads
//    may share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tracelm {

// Weight precision of a packed matrix (fp32: the model's own numbers).
enum class Precision { kF32, kBF16 };
const char* precision_name(Precision p);  // "fp32", "bf16"
// "fp32" or "bf16" -> Precision; throws std::invalid_argument otherwise.
Precision parse_precision(const std::string& name);

struct PackedMatrix {
  int64_t rows = 0, cols = 0;  // N, C of the original (N, C) matrix
  Precision precision = Precision::kF32;
  std::vector<float> panels;  // fp32: ceil(N/16) panels of (C, 16)
  // bf16: ceil(N/16) panels of (ceil(C/2), 16, 2): W[16p + j][2i + b] at
  // ((p * ceil(C/2) + i) * 16 + j) * 2 + b (a column past C is zero).
  std::vector<uint16_t> panels_bf16;
};

constexpr int64_t kPanel = 16;

// Packs W (N, C) row-major.
PackedMatrix pack_matrix(const float* w, int64_t rows, int64_t cols,
                         Precision precision = Precision::kF32);

// x rounded to bf16, to nearest even (NaN stays NaN).
uint16_t to_bf16(float x);
float from_bf16(uint16_t b);
// Whether this CPU runs bf16 products natively (AVX512-BF16).
bool bf16_native();

// y (n, N) = x (n, C) W^T; x rows have stride C, y rows stride N.
void matmul_packed(const float* x, int64_t n, const PackedMatrix& w, float* y);

// Causal attention of a run of `tokens` consecutive positions of one
// sequence, for `heads` query heads that share one key/value head: the
// query of token a (a < tokens), head g is q + a*q_token_stride + g*D, it
// sees the first len0 + a positions, and its output goes to
// out + a*out_token_stride + g*D:
//   out = softmax(scale * q . k_t, t < len0 + a) . V.
// Keys are stored in blocks of 16 positions, transposed within a block, so
// that 16 positions' scores are one vector sum over D and a block is one
// contiguous read: key t's element j at kt[(t / 16) * ldk + j * 16 + t % 16]
// (ldk >= 16 D: the stride between blocks; every block up to the longest
// row's length rounded up to 16 readable); value t is the row v + t * vstride. Each block of keys
// and each value row is read once for all tokens x heads rows (the cache lives in L2/L3; reading it
// per row cost more than the arithmetic). `scores` holds tokens*heads rows of that rounded length.
void attend_rows(const float* q, int64_t q_token_stride, int64_t tokens, int64_t heads,
                 const float* kt, int64_t ldk, const float* v, int64_t vstride, int64_t len0,
                 int64_t D, float scale, float* scores, float* out, int64_t out_token_stride);

// The SwiGLU activation: out[j] = g[j] / (1 + e^-g[j]) * u[j], j < n (e^x
// by a vector polynomial within 2 ulp of expf, as attend_rows' softmax).
void swiglu_rows(const float* g, const float* u, float* out, int64_t n);

// RMSNorm of n rows of C floats: y = x / sqrt(mean(x^2) + eps) * w.
void rms_norm_rows(const float* x, const float* w, float* y, int64_t n, int64_t C, float eps);

// The instruction set the kernels use on this CPU: "avx512", "avx2" or
// "generic".
std::string kernel_isa();

// The product with a named instruction set; false (y untouched) when this
// CPU lacks it. For tests that compare the paths. A bf16 matrix takes
// "avx512bf16" (native), or any other name for the fp32-vector path.
bool matmul_packed_isa(const std::string& isa, const float* x, int64_t n, const PackedMatrix& w,
                       float* y);

}  // namespace tracelm
