// test_gemm_mma.cpp: the bf16 tensor-core GEMM (kernels/gemm_mma.cu) on kernels/sim against a CPU
// GEMM of the same bf16 inputs, over shapes with tails in m, n and k, on both of its load paths
// (cp.async when k and n are multiples of 8, element loads otherwise). CTest runs it in both lane
// orders.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/gemm_mma.h"

namespace {

struct Shape {
  int m, n, k;
};

// The CPU reference multiplies the same bf16-rounded inputs in double, so the only differences
// are the kernel's fp32 rounding of its sums (the products of two bf16 are exact in fp32).
// Tolerance: a sum of k terms accumulated in fp32 has error at most about k * 2^-24 * sum |a b|;
// we allow 2 k 2^-24 sum_p |A_mp B_pn| + 1e-30, i.e. the fp32 accumulation bound with a factor 2.
// bf16's own 8-bit mantissa (relative error 2^-9 per input) does not enter: the reference sees
// the same rounded inputs. Against an fp32 GEMM of the unrounded inputs the bound would be
// 2 * 2^-9 * sum |a b| (each product carries at most two input roundings), which
// the second check below makes.
void check_shape(Shape s, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<forge::bf16> a(size_t(s.m) * s.k), b(size_t(s.k) * s.n);
  std::vector<float> a32(a.size()), b32(b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a32[i] = dist(gen);
    a[i] = forge::float_to_bf16(a32[i]);
  }
  for (size_t i = 0; i < b.size(); ++i) {
    b32[i] = dist(gen);
    b[i] = forge::float_to_bf16(b32[i]);
  }
  std::vector<float> c(size_t(s.m) * s.n, NAN);
  forge::gpu_sim::gemm_bf16_mma(a.data(), b.data(), c.data(), s.m, s.n, s.k);

  int bad_rounded = 0, bad_fp32 = 0;
  for (int i = 0; i < s.m; ++i)
    for (int j = 0; j < s.n; ++j) {
      double sum = 0, magnitude = 0, sum32 = 0;
      for (int p = 0; p < s.k; ++p) {
        const double x = forge::bf16_to_float(a[size_t(i) * s.k + p]);
        const double y = forge::bf16_to_float(b[size_t(p) * s.n + j]);
        sum += x * y;
        magnitude += std::abs(x * y);
        sum32 += double(a32[size_t(i) * s.k + p]) * b32[size_t(p) * s.n + j];
      }
      const double got = c[size_t(i) * s.n + j];
      const double fp32_bound = 2.0 * s.k * std::ldexp(1.0, -24) * magnitude + 1e-30;
      const double bf16_bound = 2.0 * std::ldexp(1.0, -9) * magnitude * 1.01 + fp32_bound;
      bad_rounded += !(std::abs(got - sum) <= fp32_bound);
      bad_fp32 += !(std::abs(got - sum32) <= bf16_bound);
    }
  CAPTURE(s.m);
  CAPTURE(s.n);
  CAPTURE(s.k);
  CHECK(bad_rounded == 0);
  CHECK(bad_fp32 == 0);
}

}  // namespace

TEST_CASE("gemm_bf16_mma matches the CPU GEMM on odd shapes, element-load path (k or n % 8 != 0)") {
  for (Shape s :
       {Shape{1, 1, 1}, Shape{37, 29, 53}, Shape{65, 70, 33}, Shape{16, 8, 16}, Shape{130, 3, 97}})
    check_shape(s, 1);
}

TEST_CASE("gemm_bf16_mma matches the CPU GEMM on odd shapes, cp.async path (k, n % 8 == 0)") {
  for (Shape s : {Shape{1, 8, 8}, Shape{70, 72, 40}, Shape{64, 64, 32}, Shape{129, 136, 264},
                  Shape{33, 16, 8}})
    check_shape(s, 2);
}

TEST_CASE("gemm_bf16_mma with k = 0 writes zeros") {
  std::vector<float> c(6, NAN);
  forge::gpu_sim::gemm_bf16_mma(nullptr, nullptr, c.data(), 2, 3, 0);
  for (float x : c) CHECK(x == 0.f);
}
