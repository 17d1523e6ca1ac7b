// test_cpu_kernels.cpp: the CPU backend's vectorised elementwise kernels against their scalar
// definitions, at sizes that exercise the 16-element blocks, the parallel range and the short
// last block: dropout's mask (engine/random.h's counter_uniform, bit for bit), the fused dropouts
// (equal to their parts), GELU (engine/gelu_math.h's double path, within an ulp) and GELU keeping
// its slope (equal to gelu_dropout and its backward); the batched GEMM, split over threads,
// against one call per problem and a double-precision loop.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/gelu_math.h"
#include "engine/random.h"

using namespace forge;

namespace {

// Sizes: below one block, one block, one block and one, several blocks and a tail, and one past
// the parallel threshold (32768) with a tail.
const int64_t kSizes[] = {1, 7, 16, 17, 53, 40000 + 13};

std::vector<float> values(int64_t n, uint64_t seed, float lo, float hi) {
  Generator gen(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = float(lo + (hi - lo) * gen.uniform());
  return v;
}

// Distance in units in the last place between two finite floats of the same sign or zero.
int64_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;
  if (ib < 0) ib = INT32_MIN - ib;
  return std::llabs(int64_t(ia) - int64_t(ib));
}

}  // namespace

TEST_CASE("cpu kernels: dropout keeps exactly the elements whose counter_uniform is >= p") {
  CpuBackend& be = cpu_backend();
  for (int64_t n : kSizes) {
    for (float p : {0.1f, 0.5f, 0.9f}) {
      CAPTURE(n);
      CAPTURE(p);
      const uint64_t seed = 0x1234u + uint64_t(n);
      const auto x = values(n, 1, -2.f, 2.f), r = values(n, 2, -1.f, 1.f);
      const float scale = 1.f / (1.f - p);
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n)),
          sum(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) want[i] = counter_uniform(seed, i) >= p ? x[i] * scale : 0.f;
      be.dropout_forward(x.data(), got.data(), n, p, seed);
      CHECK(got == want);
      be.dropout_backward(x.data(), got.data(), n, p, seed);
      CHECK(got == want);
      be.dropout_add_forward(r.data(), x.data(), sum.data(), n, p, seed);
      for (int64_t i = 0; i < n; ++i) want[i] = r[i] + want[i];
      CHECK(sum == want);
    }
  }
}

TEST_CASE("cpu kernels: GELU is the double path of gelu_math.h within an ulp, at any position") {
  CpuBackend& be = cpu_backend();
  for (int64_t n : kSizes) {
    CAPTURE(n);
    const auto x = values(n, 3, -9.f, 9.f), gy = values(n, 4, -1.f, 1.f);
    std::vector<float> y(static_cast<size_t>(n)), gx(static_cast<size_t>(n));
    be.unary(UnaryOp::gelu, x.data(), y.data(), n, 0.f);
    be.unary_backward(UnaryOp::gelu, x.data(), gy.data(), gx.data(), n);
    int64_t worst = 0;
    float worst_slope = 0.f;
    for (int64_t i = 0; i < n; ++i) {
      worst = std::max(worst, ulp_distance(y[i], gelu_forward_value(x[i])));
      worst_slope = std::max(worst_slope, std::fabs(gx[i] - gy[i] * gelu_slope_value(x[i])));
    }
    CHECK(worst <= 1);
    CHECK(worst_slope <= 1.2e-7f);  // an ulp of a slope below 1.1, times |gy| <= 1
    // The last elements (the short block) equal the same values computed inside a full block.
    const int64_t tail = std::min<int64_t>(n, 5);
    std::vector<float> shifted(x.end() - tail, x.end()), inside(16);
    shifted.resize(16, 0.5f);
    be.unary(UnaryOp::gelu, shifted.data(), inside.data(), 16, 0.f);
    CHECK(std::vector<float>(inside.begin(), inside.begin() + tail) ==
          std::vector<float>(y.end() - tail, y.end()));
  }
}

TEST_CASE("cpu kernels: gelu_dropout equals dropout(gelu(x)) and its backward dropout(gy) gelu'") {
  CpuBackend& be = cpu_backend();
  for (int64_t n : kSizes) {
    CAPTURE(n);
    const uint64_t seed = 99 + uint64_t(n);
    const float p = 0.3f;
    const auto x = values(n, 5, -4.f, 4.f), gy = values(n, 6, -1.f, 1.f);
    std::vector<float> fused(static_cast<size_t>(n)), parts(static_cast<size_t>(n)),
        mask(static_cast<size_t>(n));
    be.gelu_dropout_forward(x.data(), fused.data(), n, p, seed);
    be.unary(UnaryOp::gelu, x.data(), parts.data(), n, 0.f);
    be.dropout_forward(parts.data(), parts.data(), n, p, seed);
    CHECK(fused == parts);
    be.gelu_dropout_backward(x.data(), gy.data(), fused.data(), n, p, seed);
    be.dropout_backward(gy.data(), mask.data(), n, p, seed);
    be.unary_backward(UnaryOp::gelu, x.data(), mask.data(), parts.data(), n);
    CHECK(fused == parts);
  }
}

TEST_CASE("cpu kernels: GELU keeping its slope equals gelu_dropout and its backward bit for bit") {
  CpuBackend& be = cpu_backend();
  REQUIRE(be.gelu_keeps_slope());
  for (int64_t n : kSizes) {
    for (float p : {0.f, 0.3f}) {
      CAPTURE(n);
      CAPTURE(p);
      const uint64_t seed = 7 + uint64_t(n);
      const auto x = values(n, 8, -9.f, 9.f), gy = values(n, 9, -1.f, 1.f);
      std::vector<float> y(static_cast<size_t>(n)), slope(y), gx(y), want(y), masked(y);
      be.gelu_slope_forward(x.data(), y.data(), slope.data(), n, p, seed);
      if (p > 0.f)
        be.gelu_dropout_forward(x.data(), want.data(), n, p, seed);
      else
        be.unary(UnaryOp::gelu, x.data(), want.data(), n, 0.f);
      CHECK(y == want);
      // slope is gelu'(x) as backward rounds it: gy = 1 through the recomputing backward.
      std::vector<float> ones(static_cast<size_t>(n), 1.f);
      be.unary_backward(UnaryOp::gelu, x.data(), ones.data(), want.data(), n);
      CHECK(slope == want);
      be.gelu_slope_backward(slope.data(), gy.data(), gx.data(), n, p, seed);
      if (p > 0.f)
        be.gelu_dropout_backward(x.data(), gy.data(), want.data(), n, p, seed);
      else
        be.unary_backward(UnaryOp::gelu, x.data(), gy.data(), want.data(), n);
      CHECK(gx == want);
    }
  }
}

TEST_CASE("cpu kernels: a batched GEMM equals one GEMM per problem, on odd shapes and batch 1") {
  CpuBackend& be = cpu_backend();
  struct Case {
    bool ta, tb;
    int m, n, k, batch;
  };
  for (const Case& c : {Case{false, false, 5, 7, 3, 1}, Case{false, true, 13, 9, 17, 3},
                        Case{true, false, 1, 31, 6, 7}, Case{true, true, 65, 65, 64, 96},
                        Case{false, false, 17, 1, 33, 5}}) {
    CAPTURE(c.m);
    CAPTURE(c.n);
    CAPTURE(c.k);
    CAPTURE(c.batch);
    // Row strides one wider than the rows and problems spaced two elements apart: no packing.
    const int lda = (c.ta ? c.m : c.k) + 1, ldb = (c.tb ? c.k : c.n) + 1, ldc = c.n + 1;
    const int64_t sa = int64_t(c.ta ? c.k : c.m) * lda + 2,
                  sb = int64_t(c.tb ? c.n : c.k) * ldb + 2, sc = int64_t(c.m) * ldc + 2;
    const auto a = values(sa * c.batch, 7, -1.f, 1.f), b = values(sb * c.batch, 8, -1.f, 1.f);
    const auto c0 = values(sc * c.batch, 9, -1.f, 1.f);
    const float alpha = 0.75f, beta = 0.5f;
    std::vector<float> batched = c0, looped = c0;
    be.gemm(c.ta, c.tb, c.m, c.n, c.k, alpha, a.data(), lda, sa, b.data(), ldb, sb, beta,
            batched.data(), ldc, sc, c.batch);
    for (int p = 0; p < c.batch; ++p)
      be.gemm(c.ta, c.tb, c.m, c.n, c.k, alpha, a.data() + p * sa, lda, 0, b.data() + p * sb, ldb,
              0, beta, looped.data() + p * sc, ldc, 0, 1);
    double worst = 0.0, worst_reference = 0.0;
    for (int p = 0; p < c.batch; ++p)
      for (int i = 0; i < c.m; ++i)
        for (int j = 0; j < c.n; ++j) {
          double sum = 0.0;
          for (int q = 0; q < c.k; ++q) {
            const float av = c.ta ? a[p * sa + q * lda + i] : a[p * sa + i * lda + q];
            const float bv = c.tb ? b[p * sb + j * ldb + q] : b[p * sb + q * ldb + j];
            sum += double(av) * bv;
          }
          const int64_t at = p * sc + int64_t(i) * ldc + j;
          const double want = alpha * sum + beta * double(c0[at]);
          worst = std::max(worst, std::fabs(double(batched[at]) - looped[at]));
          worst_reference = std::max(worst_reference, std::fabs(double(batched[at]) - want));
        }
    // Products of values below 1 summed over k <= 64: rounding below 64 u (u = 6e-8) of k.
    CHECK(worst <= 1e-6 * c.k);
    CHECK(worst_reference <= 1e-6 * c.k);
    // The padding between rows and between problems is left as it was.
    for (int64_t at = 0; at < sc * c.batch; ++at)
      if (at % sc >= int64_t(c.m) * ldc || at % sc % ldc >= c.n) CHECK(batched[at] == c0[at]);
  }
}
