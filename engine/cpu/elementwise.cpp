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
  row_ranges(rows, rows * cols > 32768, [&](int64_t begin, int64_t end) {
    StridedRows walk(v, begin);
    for (int64_t r = begin; r < end; ++r, walk.next()) {
      const float* s = src + walk.offset();
      float* d = dst + r * cols;
      if (inner == 1)
        std::copy(s, s + cols, d);
      else
        for (int64_t j = 0; j < cols; ++j) d[j] = s[j * inner];
    }
  });
}

void CpuBackend::scatter(const float* src, float* dst, const StridedView& v, bool accumulate) {
  const int64_t rows = strided_rows(v), cols = strided_cols(v), inner = strided_inner(v);
  // Rows of a view with a zero stride overlap, so accumulation into one runs serially.
  bool overlapping = false;
  for (int i = 0; i < v.ndim; ++i)
    overlapping = overlapping || (v.strides[i] == 0 && v.shape[i] > 1);
  row_ranges(rows, rows * cols > 32768 && !overlapping, [&](int64_t begin, int64_t end) {
    StridedRows walk(v, begin);
    for (int64_t r = begin; r < end; ++r, walk.next()) {
      float* d = dst + walk.offset();
      const float* s = src + r * cols;
      if (accumulate && inner == 1)
        for (int64_t j = 0; j < cols; ++j) d[j] += s[j];
      else if (accumulate)
        for (int64_t j = 0; j < cols; ++j) d[j * inner] += s[j];
      else if (inner == 1)
        std::copy(s, s + cols, d);
      else
        for (int64_t j = 0; j < cols; ++j) d[j * inner] = s[j];
    }
  });
}

template <typename F>
static void binary_loop(const float* a, const StridedView& av, const float* b,
                        const StridedView& bv, float* out, F f) {
  const int64_t rows = strided_rows(av), cols = strided_cols(av);
  const int64_t ia = strided_inner(av), ib = strided_inner(bv);
  row_ranges(rows, rows * cols > 32768, [&](int64_t begin, int64_t end) {
    StridedRows walk_a(av, begin), walk_b(bv, begin);
    for (int64_t r = begin; r < end; ++r, walk_a.next(), walk_b.next()) {
      const float* pa = a + walk_a.offset();
      const float* pb = b + walk_b.offset();
      float* o = out + r * cols;
      if (ia == 1 && ib == 1)
        for (int64_t j = 0; j < cols; ++j) o[j] = f(pa[j], pb[j]);
      else if (ia == 1 && ib == 0)
        for (int64_t j = 0; j < cols; ++j) o[j] = f(pa[j], pb[0]);
      else
        for (int64_t j = 0; j < cols; ++j) o[j] = f(pa[j * ia], pb[j * ib]);
    }
  });
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
// splitmix64 (engine/random.h) on four 64-bit lanes. AVX2 has no 64-bit multiply, so each
// product is assembled from 32-bit halves: a b mod 2^64 = lo(a) lo(b) + ((hi(a) lo(b) + lo(a)
// hi(b)) << 32), the two cross products by one 32-bit multiply of a with b's halves swapped (only
// their low 32 bits survive the shift). The compiler does not vectorise the scalar hash.
static inline __m256i mul64(__m256i a, __m256i b) {
  const __m256i lo = _mm256_mul_epu32(a, b);
  const __m256i bswap = _mm256_shuffle_epi32(b, 0xB1);
  const __m256i cross = _mm256_mullo_epi32(a, bswap);  // lo(a) hi(b), hi(a) lo(b) (mod 2^32)
  const __m256i sum = _mm256_add_epi32(cross, _mm256_srli_epi64(cross, 32));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(sum, 32));
}
// last_shift: false leaves out the final x ^= x >> 31, which changes only bits 0..32 of the
// result (x >> 31 has 33 bits): for a caller that reads the top 24 bits, the same value.
template <bool last_shift = true>
static inline __m256i splitmix64_x4(__m256i x) {
  x = _mm256_add_epi64(x, _mm256_set1_epi64x(int64_t(0x9E3779B97F4A7C15ull)));
  x = mul64(_mm256_xor_si256(x, _mm256_srli_epi64(x, 30)),
            _mm256_set1_epi64x(int64_t(0xBF58476D1CE4E5B9ull)));
  x = mul64(_mm256_xor_si256(x, _mm256_srli_epi64(x, 27)),
            _mm256_set1_epi64x(int64_t(0x94D049BB133111EBull)));
  return last_shift ? _mm256_xor_si256(x, _mm256_srli_epi64(x, 31)) : x;
}

// Dropout's keep mask of elements i .. i + 15 as two vectors of eight float lanes (all ones where
// counter_uniform(seed, i + lane) >= p). The mask is computed in integers: counter_uniform =
// (h >> 40) / 2^24 exactly, so counter_uniform >= p  <=>  (h >> 40) >= threshold = ceil(p 2^24),
// the same decision bit for bit as the float comparison (and as the GPU kernels'). Four
// independent hash chains of four lanes: their multiplies fill each other's latency.
// apply16 is dropout itself on 16 values: v = keep ? v / (1 - p) : 0.
struct DropoutMask {
  __m256i seed4, threshold4;
  float keep_scale;
  DropoutMask(uint64_t seed, float p)
      : seed4(_mm256_set1_epi64x(int64_t(seed))),
        threshold4(_mm256_set1_epi64x(int64_t(std::ceil(double(p) * 16777216.0)))),
        keep_scale(1.f / (1.f - p)) {}

  void keep16(int64_t i, __m256 (&keep)[2]) const {
    __m256i h[4];
    for (int c = 0; c < 4; ++c)
      h[c] = _mm256_add_epi64(_mm256_set1_epi64x(i + 4 * c), _mm256_setr_epi64x(0, 1, 2, 3));
    for (int c = 0; c < 4; ++c) h[c] = splitmix64_x4(h[c]);
    for (int c = 0; c < 4; ++c) h[c] = _mm256_xor_si256(seed4, h[c]);
    for (int c = 0; c < 4; ++c) h[c] = splitmix64_x4<false>(h[c]);
    // Dropped lanes: (h >> 40) < threshold; the 64-bit masks packed to 32 bits, in lane order.
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i drop[4];
    for (int c = 0; c < 4; ++c)
      drop[c] = _mm256_permutevar8x32_epi32(
          _mm256_cmpgt_epi64(threshold4, _mm256_srli_epi64(h[c], 40)), pick);
    for (int k = 0; k < 2; ++k)
      keep[k] = _mm256_castsi256_ps(_mm256_xor_si256(
          _mm256_permute2x128_si256(drop[2 * k], drop[2 * k + 1], 0x20), _mm256_set1_epi32(-1)));
  }

  void apply16(int64_t i, __m256 (&v)[2]) const {
    __m256 keep[2];
    keep16(i, keep);
    for (int k = 0; k < 2; ++k)
      v[k] = _mm256_and_ps(keep[k], _mm256_mul_ps(v[k], _mm256_set1_ps(keep_scale)));
  }
};

// Elements [0, n) in blocks of 16 through block(i, count) (count = 16; the blocks in parallel
// above 32768 elements), the n % 16 left over through block(i, count) with count < 16: the block
// reads and writes through load16 and store16, which handle the short one.
template <typename Block>
static void loop16(int64_t n, Block block) {
  const int64_t blocks = n / 16;
#pragma omp parallel for if (n > 32768)
  for (int64_t b = 0; b < blocks; ++b) block(b * 16, 16);
  if (const int rest = int(n - blocks * 16)) block(blocks * 16, rest);
}
static inline void load16(const float* src, int count, __m256 (&v)[2]) {
  alignas(32) float lanes[16] = {};
  const float* from = src;
  if (count < 16) {
    std::copy(src, src + count, lanes);
    from = lanes;
  }
  v[0] = _mm256_loadu_ps(from), v[1] = _mm256_loadu_ps(from + 8);
}
static inline void store16(float* dst, int count, const __m256 (&v)[2]) {
  alignas(32) float lanes[16];
  float* to = count < 16 ? lanes : dst;
  _mm256_storeu_ps(to, v[0]), _mm256_storeu_ps(to + 8, v[1]);
  if (count < 16) std::copy(lanes, lanes + count, dst);
}
#else
// The scalar dropout: y = keep ? x / (1 - p) : 0 with keep = counter_uniform(seed, i) >= p.
struct DropoutMask {
  uint64_t seed;
  float p, keep_scale;
  DropoutMask(uint64_t seed, float p) : seed(seed), p(p), keep_scale(1.f / (1.f - p)) {}
  void apply(const float* x, float* y, int64_t n) const {
#pragma omp parallel for if (n > 32768)
    for (int64_t i = 0; i < n; ++i) y[i] = counter_uniform(seed, i) >= p ? x[i] * keep_scale : 0.f;
  }
};
#endif

#if defined(__AVX2__)
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

// The doubles v rounded to float, in order, as two vectors of eight.
static inline void to_floats(const GeluVectors& v, __m256 (&out)[2]) {
  for (int k = 0; k < 2; ++k)
    out[k] = _mm256_set_m128(_mm256_cvtpd_ps(v[2 * k + 1]), _mm256_cvtpd_ps(v[2 * k]));
}
#endif

// GELU forward and backward (engine/gelu_math.h has the formula). glibc's erff and expf, one
// scalar call per element, were 14-16% of a ViT training step; in AVX2 doubles four at a time:
// 1M elements single thread 45 -> 12 ms forward; with four independent vectors per step
// (2080 x 768 elements, one thread, least CPU time of 30): forward 5.6 -> 3.8 ms, backward
// 7.7 -> 6.3 ms, the results bit for bit the same.
// With `mask`, the fused gelu_dropout: the dropout of each result (forward) or of each incoming
// gradient (backward) in the same pass, by the same products as the separate ops.
static void gelu_forward(const float* x, float* y, int64_t n, const DropoutMask* mask = nullptr) {
#if defined(__AVX2__)
  gelu_loop(x, n, [=](const GeluVectors& xd, int64_t i, int count) {
    GeluVectors v;
    normal_cdf_pdf_x4(xd, v, nullptr);
    for (int j = 0; j < kGeluVectors; ++j) v[j] = _mm256_mul_pd(xd[j], v[j]);
    __m256 out[2];
    to_floats(v, out);
    if (mask) mask->apply16(i, out);
    store16(y + i, count, out);
  });
#else
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_forward_value(x[i]);
  if (mask) mask->apply(y, y, n);
#endif
}

// gx = gy * gelu'(x), the slope rounded to float first; gx may be gy.
static void gelu_backward(const float* x, const float* gy, float* gx, int64_t n,
                          const DropoutMask* mask = nullptr) {
#if defined(__AVX2__)
  gelu_loop(x, n, [=](const GeluVectors& xd, int64_t i, int count) {
    GeluVectors cdf, pdf;
    normal_cdf_pdf_x4(xd, cdf, &pdf);
    for (int j = 0; j < kGeluVectors; ++j) cdf[j] = _mm256_fmadd_pd(xd[j], pdf[j], cdf[j]);
    __m256 slope[2], g[2];
    to_floats(cdf, slope);
    load16(gy + i, count, g);
    if (mask) mask->apply16(i, g);
    for (int k = 0; k < 2; ++k) g[k] = _mm256_mul_ps(g[k], slope[k]);
    store16(gx + i, count, g);
  });
#else
  if (mask) mask->apply(gy, gx, n), gy = gx;
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * gelu_slope_value(x[i]);
#endif
}

// GELU keeping its slope (Backend::gelu_keeps_slope): the forward writes gelu'(x) beside gelu(x),
// from the same Phi and phi (one more exp than the forward alone), so that backward is a product.
static void gelu_with_slope(const float* x, float* y, float* slope, int64_t n,
                            const DropoutMask* mask) {
#if defined(__AVX2__)
  gelu_loop(x, n, [=](const GeluVectors& xd, int64_t i, int count) {
    GeluVectors cdf, pdf, v;
    normal_cdf_pdf_x4(xd, cdf, &pdf);
    for (int j = 0; j < kGeluVectors; ++j) {
      v[j] = _mm256_mul_pd(xd[j], cdf[j]);
      cdf[j] = _mm256_fmadd_pd(xd[j], pdf[j], cdf[j]);
    }
    __m256 out[2], s[2];
    to_floats(v, out);
    to_floats(cdf, s);
    if (mask) mask->apply16(i, out);
    store16(y + i, count, out);
    store16(slope + i, count, s);
  });
#else
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i)
    y[i] = gelu_forward_value(x[i]), slope[i] = gelu_slope_value(x[i]);
  if (mask) mask->apply(y, y, n);
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

// Dropout (2080 x 768 elements, one thread, least CPU time: 3.4 -> 2.4 ms with four hash
// chains, the 32-bit cross product and no last shift) and, in the same pass, the residual add of
// dropout_add (0.4M elements: 0.97 -> 0.62 ms; gelu_dropout, 1.6M: forward 9.6 -> 6.6 ms,
// backward 12.2 -> 8.3 ms, the GELU counted).
void CpuBackend::dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  const DropoutMask mask(seed, p);
#if defined(__AVX2__)
  loop16(n, [=, &mask](int64_t i, int count) {
    __m256 v[2];
    load16(x + i, count, v);
    mask.apply16(i, v);
    store16(y + i, count, v);
  });
#else
  mask.apply(x, y, n);
#endif
}

void CpuBackend::dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) {
  dropout_forward(gy, gx, n, p, seed);  // the same mask and scale: d(y)/d(x) is diagonal
}

// The fused dropouts run in one pass each, by the same products and sums as the unfused ops, so
// results equal theirs bit for bit.
#if defined(__AVX2__)
// out = combine(dropout(a), b) in one pass, 16 elements at a time: the loop of dropout_add and of
// GELU's backward with the kept slope (without `mask`, a passes as it is).
template <typename Combine>
static void dropout_combine(const float* a, const float* b, float* out, int64_t n,
                            const DropoutMask* mask, Combine combine) {
  loop16(n, [=](int64_t i, int count) {
    __m256 va[2], vb[2];
    load16(a + i, count, va);
    load16(b + i, count, vb);
    if (mask) mask->apply16(i, va);
    for (int k = 0; k < 2; ++k) va[k] = combine(va[k], vb[k]);
    store16(out + i, count, va);
  });
}
#endif

void CpuBackend::dropout_add_forward(const float* residual, const float* x, float* y, int64_t n,
                                     float p, uint64_t seed) {
  const DropoutMask mask(seed, p);
#if defined(__AVX2__)
  dropout_combine(x, residual, y, n, &mask, [](__m256 v, __m256 r) { return _mm256_add_ps(r, v); });
#else
  mask.apply(x, y, n);
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = residual[i] + y[i];
#endif
}

void CpuBackend::gelu_dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  const DropoutMask mask(seed, p);
  gelu_forward(x, y, n, &mask);
}

void CpuBackend::gelu_dropout_backward(const float* x, const float* gy, float* gx, int64_t n,
                                       float p, uint64_t seed) {
  const DropoutMask mask(seed, p);
  gelu_backward(x, gy, gx, n, &mask);
}

// GELU with its slope kept: the forward computes phi as well, the backward is dropout(gy) * slope,
// the products of gelu_dropout_backward. In a ViT-Ti training step (batch 32, one thread, perf,
// quiet machine) GELU forward and backward went from 13.8% of the samples to 10.0%.
void CpuBackend::gelu_slope_forward(const float* x, float* y, float* slope, int64_t n, float p,
                                    uint64_t seed) {
  const DropoutMask mask(seed, p);
  gelu_with_slope(x, y, slope, n, p > 0.f ? &mask : nullptr);
}

void CpuBackend::gelu_slope_backward(const float* slope, const float* gy, float* gx, int64_t n,
                                     float p, uint64_t seed) {
  const DropoutMask mask(seed, p);
#if defined(__AVX2__)
  dropout_combine(gy, slope, gx, n, p > 0.f ? &mask : nullptr,
                  [](__m256 g, __m256 s) { return _mm256_mul_ps(g, s); });
#else
  if (p > 0.f) mask.apply(gy, gx, n), gy = gx;
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * slope[i];
#endif
}

}  // namespace forge
