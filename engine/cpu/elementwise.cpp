// elementwise.cpp: CPU fill, strided gather/scatter, broadcast binary ops, unary ops with their
// derivatives, axpy and dropout. Loops run over contiguous inner rows so the compiler vectorises
// them; OpenMP splits the rows (or the flat range) between cores.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/simd_math.h"
#include "engine/cpu/strided.h"
#include "engine/gelu_math.h"
#include "engine/random.h"

namespace forge {

void CpuBackend::fill(float* x, int64_t n, float value) {
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) x[i] = value;
}

void CpuBackend::gather(const float* src, const StridedView& v, float* dst) {
  const int64_t rows = strided_rows(v), cols = strided_cols(v), inner = strided_inner(v);
#pragma omp parallel for if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + strided_row_offset(v, r);
    float* d = dst + r * cols;
    for (int64_t j = 0; j < cols; ++j) d[j] = s[j * inner];
  }
}

void CpuBackend::scatter(const float* src, float* dst, const StridedView& v, bool accumulate) {
  const int64_t rows = strided_rows(v), cols = strided_cols(v), inner = strided_inner(v);
  // Rows of a view with a zero stride overlap, so accumulation into one runs serially.
  bool overlapping = false;
  for (int i = 0; i < v.ndim; ++i)
    overlapping = overlapping || (v.strides[i] == 0 && v.shape[i] > 1);
#pragma omp parallel for if (rows * cols > 32768 && !overlapping)
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dst + strided_row_offset(v, r);
    const float* s = src + r * cols;
    if (accumulate)
      for (int64_t j = 0; j < cols; ++j) d[j * inner] += s[j];
    else
      for (int64_t j = 0; j < cols; ++j) d[j * inner] = s[j];
  }
}

template <typename F>
static void binary_loop(const float* a, const StridedView& av, const float* b,
                        const StridedView& bv, float* out, F f) {
  const int64_t rows = strided_rows(av), cols = strided_cols(av);
  const int64_t ia = strided_inner(av), ib = strided_inner(bv);
#pragma omp parallel for if (rows * cols > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float* pa = a + strided_row_offset(av, r);
    const float* pb = b + strided_row_offset(bv, r);
    float* o = out + r * cols;
    if (ia == 1 && ib == 1)
      for (int64_t j = 0; j < cols; ++j) o[j] = f(pa[j], pb[j]);
    else if (ia == 1 && ib == 0)
      for (int64_t j = 0; j < cols; ++j) o[j] = f(pa[j], pb[0]);
    else
      for (int64_t j = 0; j < cols; ++j) o[j] = f(pa[j * ia], pb[j * ib]);
  }
}

void CpuBackend::binary(BinaryOp op, const float* a, const StridedView& av, const float* b,
                        const StridedView& bv, float* out) {
  switch (op) {
    case BinaryOp::add:
      return binary_loop(a, av, b, bv, out, [](float x, float y) { return x + y; });
    case BinaryOp::sub:
      return binary_loop(a, av, b, bv, out, [](float x, float y) { return x - y; });
    case BinaryOp::mul:
      return binary_loop(a, av, b, bv, out, [](float x, float y) { return x * y; });
    case BinaryOp::div:
      return binary_loop(a, av, b, bv, out, [](float x, float y) { return x / y; });
  }
}

template <typename F>
static void map(const float* x, float* y, int64_t n, F f) {
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

#if defined(__AVX2__)
// Elements [0, n) in whole blocks of Width through block(i), i the block's first element (the
// blocks in parallel above 32768 elements), then the n % Width left over through tail(i): the
// shape of every AVX2 loop below.
template <int64_t Width, typename Block, typename Tail>
static void blocked_loop(int64_t n, Block block, Tail tail) {
  const int64_t blocks = n / Width;
#pragma omp parallel for if (n > 32768)
  for (int64_t b = 0; b < blocks; ++b) block(b * Width);
  for (int64_t i = blocks * Width; i < n; ++i) tail(i);
}

// normal_cdf_pdf of engine/gelu_math.h on kGeluVectors vectors of four doubles (the same formula
// and Horner order), each step over all vectors before the next (simd_math.h says why): Phi(x)
// into cdf, phi(x) into pdf when it is not null.
constexpr int kGeluVectors = 4;
constexpr int kGeluBlock = 4 * kGeluVectors;  // floats per block
using GeluVectors = __m256d[kGeluVectors];

static inline void normal_cdf_pdf_x4(const GeluVectors& x, GeluVectors& cdf, GeluVectors* pdf) {
  constexpr int N = kGeluVectors;
  __m256d z[N], t[N], p[N], mz2[N], e[N];
  for (int j = 0; j < N; ++j) {
    z[j] = _mm256_mul_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), x[j]), _mm256_set1_pd(kInvSqrt2));
    t[j] = _mm256_div_pd(_mm256_set1_pd(1.0),
                         _mm256_fmadd_pd(_mm256_set1_pd(0.5), z[j], _mm256_set1_pd(1.0)));
    p[j] = _mm256_fmadd_pd(_mm256_set1_pd(0.17087277), t[j], _mm256_set1_pd(-0.82215223));
  }
  for (double c : {1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
                   1.00002368, -1.26551223})
    for (int j = 0; j < N; ++j) p[j] = _mm256_fmadd_pd(p[j], t[j], _mm256_set1_pd(c));
  for (int j = 0; j < N; ++j) {
    mz2[j] = _mm256_mul_pd(_mm256_sub_pd(_mm256_setzero_pd(), z[j]), z[j]);  // -z^2
    e[j] = _mm256_add_pd(mz2[j], p[j]);
  }
  exp_pd(e);
  for (int j = 0; j < N; ++j) {
    const __m256d half_erfc = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(0.5), t[j]), e[j]);
    const __m256d negative = _mm256_cmp_pd(x[j], _mm256_setzero_pd(), _CMP_LT_OQ);
    cdf[j] = _mm256_blendv_pd(_mm256_sub_pd(_mm256_set1_pd(1.0), half_erfc), half_erfc, negative);
  }
  if (pdf) {
    exp_pd(mz2);
    for (int j = 0; j < N; ++j) (*pdf)[j] = _mm256_mul_pd(mz2[j], _mm256_set1_pd(kInvSqrt2Pi));
  }
}

// Elements [0, n) in blocks of kGeluBlock through block(xd, i): xd the block's inputs from element
// i on, in doubles (the blocks in parallel above 32768 elements); the n % kGeluBlock left over
// through the same block on inputs padded with zeros, `count` of them real, so that every element
// is computed by the same instructions.
template <typename Block>
static void gelu_loop(const float* x, int64_t n, Block block) {
  const auto run = [&](const float* src, int64_t i, int count) {
    GeluVectors xd;
    for (int j = 0; j < kGeluVectors; ++j) xd[j] = _mm256_cvtps_pd(_mm_loadu_ps(src + 4 * j));
    block(xd, i, count);
  };
  const int64_t blocks = n / kGeluBlock;
#pragma omp parallel for if (n > 32768)
  for (int64_t b = 0; b < blocks; ++b) run(x + b * kGeluBlock, b * kGeluBlock, kGeluBlock);
  if (const int rest = int(n - blocks * kGeluBlock)) {
    float padded[kGeluBlock] = {};
    std::copy(x + blocks * kGeluBlock, x + n, padded);
    run(padded, blocks * kGeluBlock, rest);
  }
}

// Rounds the doubles v to float and stores the first `count` of them at dst.
static inline void store_floats(float* dst, const GeluVectors& v, int count) {
  float lanes[kGeluBlock];
  float* out = count == kGeluBlock ? dst : lanes;
  for (int j = 0; j < kGeluVectors; ++j) _mm_storeu_ps(out + 4 * j, _mm256_cvtpd_ps(v[j]));
  if (out == lanes) std::copy(lanes, lanes + count, dst);
}
#endif

// GELU forward and backward (engine/gelu_math.h has the formula). glibc's erff and expf, one
// scalar call per element, were 14-16% of a ViT training step; in AVX2 doubles four at a time:
// 1M elements single thread 45 -> 12 ms forward; with four independent vectors per step
// (2080 x 768 elements, one thread, least CPU time of 30): forward 5.6 -> 3.8 ms, backward
// 7.7 -> 6.3 ms, the results bit for bit the same.
static void gelu_forward(const float* x, float* y, int64_t n) {
#if defined(__AVX2__)
  gelu_loop(x, n, [=](const GeluVectors& xd, int64_t i, int count) {
    GeluVectors v;
    normal_cdf_pdf_x4(xd, v, nullptr);
    for (int j = 0; j < kGeluVectors; ++j) v[j] = _mm256_mul_pd(xd[j], v[j]);
    store_floats(y + i, v, count);
  });
#else
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_forward_value(x[i]);
#endif
}

// gx = gy * gelu'(x), the slope rounded to float first; gx may be gy.
static void gelu_backward(const float* x, const float* gy, float* gx, int64_t n) {
#if defined(__AVX2__)
  gelu_loop(x, n, [=](const GeluVectors& xd, int64_t i, int count) {
    GeluVectors cdf, pdf;
    normal_cdf_pdf_x4(xd, cdf, &pdf);
    for (int j = 0; j < kGeluVectors; ++j) cdf[j] = _mm256_fmadd_pd(xd[j], pdf[j], cdf[j]);
    float slope[kGeluBlock];
    store_floats(slope, cdf, kGeluBlock);
    for (int k = 0; k < count; ++k) gx[i + k] = gy[i + k] * slope[k];
  });
#else
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * gelu_slope_value(x[i]);
#endif
}

void CpuBackend::unary(UnaryOp op, const float* x, float* y, int64_t n, float alpha) {
  switch (op) {
    case UnaryOp::neg:
      return map(x, y, n, [](float v) { return -v; });
    case UnaryOp::exp:
      return map(x, y, n, [](float v) { return std::exp(v); });
    case UnaryOp::log:
      return map(x, y, n, [](float v) { return std::log(v); });
    case UnaryOp::sqrt:
      return map(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryOp::square:
      return map(x, y, n, [](float v) { return v * v; });
    case UnaryOp::relu:
      return map(x, y, n, [](float v) { return v > 0.f ? v : 0.f; });
    case UnaryOp::gelu:
      return gelu_forward(x, y, n);
    case UnaryOp::scale:
      return map(x, y, n, [alpha](float v) { return alpha * v; });
    case UnaryOp::add_scalar:
      return map(x, y, n, [alpha](float v) { return v + alpha; });
  }
}

void CpuBackend::unary_backward(UnaryOp op, const float* x, const float* gy, float* gx, int64_t n) {
  if (op == UnaryOp::relu) {
#pragma omp parallel for simd if (n > 32768)
    for (int64_t i = 0; i < n; ++i) gx[i] = x[i] > 0.f ? gy[i] : 0.f;
  } else if (op == UnaryOp::gelu) {
    gelu_backward(x, gy, gx, n);
  } else {
    throw std::invalid_argument("unary_backward: only relu and gelu have a backward primitive");
  }
}

void CpuBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

#if defined(__AVX2__)
// splitmix64 (engine/random.h) on four 64-bit lanes. AVX2 has no 64-bit multiply, so each
// product is assembled from 32-bit halves: a b mod 2^64 = lo(a) lo(b) + ((hi(a) lo(b) + lo(a)
// hi(b)) << 32). The compiler does not vectorise the scalar hash on its own.
static inline __m256i mul64(__m256i a, __m256i b) {
  const __m256i lo = _mm256_mul_epu32(a, b);
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b),
                                         _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}
static inline __m256i splitmix64_x4(__m256i x) {
  x = _mm256_add_epi64(x, _mm256_set1_epi64x(int64_t(0x9E3779B97F4A7C15ull)));
  x = mul64(_mm256_xor_si256(x, _mm256_srli_epi64(x, 30)),
            _mm256_set1_epi64x(int64_t(0xBF58476D1CE4E5B9ull)));
  x = mul64(_mm256_xor_si256(x, _mm256_srli_epi64(x, 27)),
            _mm256_set1_epi64x(int64_t(0x94D049BB133111EBull)));
  return _mm256_xor_si256(x, _mm256_srli_epi64(x, 31));
}
#endif

// The mask is computed in integers: counter_uniform = (h >> 40) / 2^24 exactly, so
// counter_uniform >= p  <=>  (h >> 40) >= ceil(p 2^24), the same decision bit for bit as the
// float comparison (and as the GPU kernels'). Four elements at a time with AVX2: 2.5x faster than
// the scalar hash (measured on 4M elements, single thread), which was 11% of a ViT step.
void CpuBackend::dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);
  const auto one = [=](int64_t i) {
    y[i] = counter_uniform(seed, i) >= p ? x[i] * keep_scale : 0.f;
  };
#if defined(__AVX2__)
  const uint64_t threshold = uint64_t(std::ceil(double(p) * 16777216.0));
  blocked_loop<8>(
      n,
      [=](int64_t i) {
        // Two independent hash chains of four lanes each per block: 20% faster than one (4M
        // elements, single thread, 11.3 -> 9.1 ms), the multiplies of one chain filling the
        // other's latency.
        const __m256i seed4 = _mm256_set1_epi64x(int64_t(seed));
        const __m256i thr4 = _mm256_set1_epi64x(int64_t(threshold));
        const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        const __m256i index0 =
            _mm256_add_epi64(_mm256_set1_epi64x(i), _mm256_setr_epi64x(0, 1, 2, 3));
        const __m256i index1 = _mm256_add_epi64(index0, _mm256_set1_epi64x(4));
        const __m256i h0 = splitmix64_x4(_mm256_xor_si256(seed4, splitmix64_x4(index0)));
        const __m256i h1 = splitmix64_x4(_mm256_xor_si256(seed4, splitmix64_x4(index1)));
        // Lanes whose (h >> 40) < threshold are dropped; the 64-bit masks are packed to 32 bits.
        const __m256i drop0 =
            _mm256_permutevar8x32_epi32(_mm256_cmpgt_epi64(thr4, _mm256_srli_epi64(h0, 40)), pick);
        const __m256i drop1 =
            _mm256_permutevar8x32_epi32(_mm256_cmpgt_epi64(thr4, _mm256_srli_epi64(h1, 40)), pick);
        const __m256i drop = _mm256_permute2x128_si256(drop0, drop1, 0x20);
        const __m256 kept = _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(keep_scale));
        _mm256_storeu_ps(y + i, _mm256_andnot_ps(_mm256_castsi256_ps(drop), kept));
      },
      one);
#else
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) one(i);
#endif
}

void CpuBackend::dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) {
  dropout_forward(gy, gx, n, p, seed);  // the same mask and scale: d(y)/d(x) is diagonal
}

// The fused dropouts run here as their parts, each vectorised pass as fast as one fused loop
// would be on two cores and exactly the unfused ops' roundings; the fusion is for the GPU's
// launches.
void CpuBackend::dropout_add_forward(const float* residual, const float* x, float* y, int64_t n,
                                     float p, uint64_t seed) {
  dropout_forward(x, y, n, p, seed);
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = residual[i] + y[i];
}

void CpuBackend::gelu_dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  unary(UnaryOp::gelu, x, y, n, 0.f);
  dropout_forward(y, y, n, p, seed);
}

void CpuBackend::gelu_dropout_backward(const float* x, const float* gy, float* gx, int64_t n,
                                       float p, uint64_t seed) {
  dropout_forward(gy, gx, n, p, seed);
  gelu_backward(x, gx, gx, n);
}

}  // namespace forge
