// elementwise.cpp: CPU fill, strided gather/scatter, broadcast binary ops, unary ops with their
// derivatives, axpy and dropout. Loops run over contiguous inner rows so the compiler vectorises
// them; OpenMP splits the rows (or the flat range) between cores.
#include <cmath>
#include <stdexcept>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/strided.h"
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

// GELU(x) = x Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt 2)) / 2.
static inline float gelu_value(float x) {
  return 0.5f * x * (1.f + std::erf(x * float(M_SQRT1_2)));
}
// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
static inline float gelu_slope(float x) {
  const float cdf = 0.5f * (1.f + std::erf(x * float(M_SQRT1_2)));
  const float pdf = std::exp(-0.5f * x * x) * float(0.5 * M_2_SQRTPI * M_SQRT1_2);
  return cdf + x * pdf;
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
      return map(x, y, n, gelu_value);
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
#pragma omp parallel for simd if (n > 32768)
    for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * gelu_slope(x[i]);
  } else {
    throw std::invalid_argument("unary_backward: only relu and gelu have a backward primitive");
  }
}

void CpuBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  const float keep_scale = 1.f / (1.f - p);
#pragma omp parallel for if (n > 32768)
  for (int64_t i = 0; i < n; ++i) y[i] = counter_uniform(seed, i) >= p ? x[i] * keep_scale : 0.f;
}

void CpuBackend::dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) {
  dropout_forward(gy, gx, n, p, seed);  // the same mask and scale: d(y)/d(x) is diagonal
}

}  // namespace forge
