// test_gpu_bf16.cpp: the GPU backend at MatmulPrecision::bf16 (docs/MIXED_PRECISION.md) against
// the CPU backend in fp32: matmul (gemm), linear (linear_forward / _backward_weight), conv2d
// (im2col + GEMM) and patch_embed, outputs and every input gradient; matmul and linear at tf32;
// and the precision setting
// itself (cpu refuses bf16, the GPU backend reports what it was given). The attention at bf16 is
// checked by the attention playground's v6 (tests/kernels/CMakeLists.txt). CTest runs this in
// both emulator orders.
//
// The bound, per element. Each of these ops is bilinear: every output (and every gradient) is a
// sum of k products a b of two inputs (or of an input and the seed gradient R). At bf16 both
// factors are rounded to nearest with 8 significant bits, |a~ - a| <= u |a| with u = 2^-8, so
//   |a~ b~ - a b| <= (2u + u^2) |a b|,
// and both sides sum in fp32 in their own order, at most k 2^-24 sum |a b| each. So
//   |got - want| <= (2u + u^2 + 2 k 2^-24) S,   S = sum |a| |b|,
// and S is the same op run on the CPU with every input and R replaced by its magnitude (a bias
// adds |bias| to S, which only loosens the bound by what an fp32 bias add can cost). A lost tile,
// a wrong transpose or a stride error moves an element by a fraction of S, far beyond 2^-7 S.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/kernels/test_devices.h"

using namespace forge;

namespace {

constexpr double kBf16Unit = 1.0 / 256;  // u = 2^-8: 8 significant bits, round to nearest
// tf32 has 11 significant bits: u = 2^-11 rounding to nearest (the sim's cvt.rna); 2^-10 allows
// for a GPU kernel that truncates instead.
constexpr double kTf32Unit = 1.0 / 1024;

using forge::testing::AtPrecision;

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// |x| elementwise, on the CPU.
Tensor magnitude_of(const Tensor& x) {
  std::vector<float> values = x.to_vector();
  for (float& v : values) v = std::fabs(v);
  return Tensor::from_vector(values, x.shape());
}

struct Result {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;  // one per input with a gradient
};

// out = op(inputs), then backward of sum(out * R) with R random normal from `seed`. With
// magnitudes, every input and R are replaced by their absolute values: each output and gradient
// then is S of the bound above.
Result run(Device device, const std::vector<Tensor>& inputs, const std::vector<bool>& grad,
           const Op& op, bool magnitudes) {
  std::vector<Tensor> on_device;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor t = (magnitudes ? magnitude_of(inputs[i]) : inputs[i]).to(device);
    if (grad[i]) t.requires_grad_();
    on_device.push_back(t);
  }
  Tensor out = op(on_device);
  Generator gen(99);
  Tensor r = Tensor::randn(out.shape(), gen);
  if (magnitudes) r = magnitude_of(r);
  sum(mul(out, r.to(device))).backward();
  Result result{out.to_vector(), {}};
  for (size_t i = 0; i < inputs.size(); ++i)
    if (grad[i]) result.grads.push_back(on_device[i].grad().to_vector());
  return result;
}

// Every element within (2u + u^2 + 2 k 2^-24) S + 1e-30; returns the largest |got - want| / S,
// which a bf16 path shows to be far above fp32's k 2^-24 (checked by the caller).
double check_bound(const std::vector<float>& got, const std::vector<float>& want,
                   const std::vector<float>& magnitude, int k, double unit,
                   const std::string& what) {
  REQUIRE(got.size() == want.size());
  REQUIRE(magnitude.size() == want.size());
  const double factor = 2 * unit + unit * unit + 2.0 * k * std::ldexp(1.0, -24);
  size_t bad = 0, worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    if (!(err <= factor * magnitude[i] + 1e-30)) ++bad;  // NaN counts as bad
    const double ratio = magnitude[i] > 0 ? err / magnitude[i] : 0;
    if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
  }
  INFO(what << ": " << bad << " of " << got.size()
            << " beyond (2u + u^2 + 2k 2^-24) S, u = " << unit << ", k = " << k
            << "; worst |err| / S = " << worst_ratio << " at " << worst << ": "
            << (got.empty() ? 0.f : got[worst]) << " vs " << (want.empty() ? 0.f : want[worst]));
  CHECK(bad == 0);
  return worst_ratio;
}

// The op at `precision` (bf16, or tf32) on each GPU device against the CPU in fp32, outputs and
// gradients; k_out and k_grads the number of products summed into the output and into each
// gradient. Also: the results are not the fp32 ones (the worst error exceeds what fp32 alone
// allows), so a path that silently stayed fp32 fails.
void compare(const std::string& what, const std::vector<Tensor>& inputs,
             const std::vector<bool>& grad, const Op& op, int k_out,
             const std::vector<int>& k_grads, MatmulPrecision precision = MatmulPrecision::bf16) {
  const double unit = precision == MatmulPrecision::bf16 ? kBf16Unit : kTf32Unit;
  const Result want = run(Device::cpu, inputs, grad, op, false);
  const Result magnitude = run(Device::cpu, inputs, grad, op, true);
  for (Device device : forge::testing::gpu_test_devices()) {
    const AtPrecision at(device, precision);
    const Result got = run(device, inputs, grad, op, false);
    const std::string where = what + " on " + device_name(device);
    double worst = check_bound(got.out, want.out, magnitude.out, k_out, unit, where + ": output");
    REQUIRE(got.grads.size() == k_grads.size());
    for (size_t i = 0; i < k_grads.size(); ++i)
      worst =
          std::max(worst, check_bound(got.grads[i], want.grads[i], magnitude.grads[i], k_grads[i],
                                      unit, where + ": gradient " + std::to_string(i)));
    INFO(where << ": worst |err| / S " << worst);
    CHECK(worst > 1e-5);  // fp32 alone: below k 2^-24 ~ 1e-6 for these k
  }
}

Tensor randn(const Shape& shape, Generator& gen) {
  return Tensor::randn(shape, gen);
}

}  // namespace

TEST_CASE("bf16 matmul: batched, odd shapes (tails in m, n and k), within the bf16 bound") {
  Generator gen(1);
  // a [2, 37, 45] b [2, 45, 29]: k = 45 into the output, 29 into ga, 37 into gb.
  compare("matmul", {randn({2, 37, 45}, gen), randn({2, 45, 29}, gen)}, {true, true},
          [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, 45, {29, 37});
  // Multiples of 8 take the kernel's cp.async path: a [64, 32] b [32, 72].
  compare("matmul aligned", {randn({64, 32}, gen), randn({32, 72}, gen)}, {true, true},
          [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, 32, {72, 64});
}

TEST_CASE("bf16 gemm with k = 0: an empty sum, so C = beta C") {
  for (Device device : forge::testing::gpu_test_devices()) {
    const AtPrecision bf16(device, MatmulPrecision::bf16);
    Backend& gpu = backend(device);
    const std::vector<float> before(12, 2.f);
    float* c = static_cast<float*>(gpu.allocate(before.size() * sizeof(float)));
    gpu.copy_from_host(c, before.data(), before.size() * sizeof(float));
    // a and b are not read (nothing to multiply); c stands in for them.
    gpu.gemm(false, false, 3, 4, 0, 1.f, c, 1, 0, c, 4, 0, 0.5f, c, 4, 0, 1);
    std::vector<float> after(before.size());
    gpu.copy_to_host(after.data(), c, after.size() * sizeof(float));
    gpu.deallocate(c, before.size() * sizeof(float));
    CHECK(after == std::vector<float>(12, 1.f));
  }
}

TEST_CASE("bf16 linear: forward with bias, input, weight and bias gradients") {
  Generator gen(2);
  // x [3, 11, 40] W [24, 40] bias [24]: rows 33; k = 40 out, 24 into gx, 33 into gW and gbias.
  compare("linear", {randn({3, 11, 40}, gen), randn({24, 40}, gen), randn({24}, gen)},
          {true, true, true}, [](const std::vector<Tensor>& x) { return linear(x[0], x[1], x[2]); },
          40, {24, 33, 33});
  compare("linear without bias", {randn({9, 16}, gen), randn({8, 16}, gen)}, {true, true},
          [](const std::vector<Tensor>& x) { return linear(x[0], x[1], Tensor()); }, 16, {8, 9});
}

TEST_CASE("bf16 conv2d: forward, data and weight gradients, stride and padding") {
  Generator gen(3);
  // x [2, 3, 7, 9], W [5, 3, 3, 3], stride 2, pad 1: output 4 x 5; k = 27 into an output, up to
  // 5 * 9 = 45 into gx (k channels times taps), 2 * 20 = 40 into gW.
  compare("conv2d", {randn({2, 3, 7, 9}, gen), randn({5, 3, 3, 3}, gen), randn({5}, gen)},
          {true, true, true},
          [](const std::vector<Tensor>& x) { return conv2d(x[0], x[1], x[2], 2, 1); }, 27,
          {45, 40, 40});
}

TEST_CASE("bf16 patch_embed: tokens and parameter gradients") {
  Generator gen(4);
  // images [2, 3, 16, 16], patch 4: 16 patches of 48 values, e = 12; k = 48 into a token, 2 * 16
  // = 32 into gW.
  compare("patch_embed",
          {randn({2, 3, 16, 16}, gen), randn({12, 48}, gen), randn({12}, gen), randn({12}, gen),
           randn({17, 12}, gen)},
          {false, true, true, true, true},
          [](const std::vector<Tensor>& x) { return patch_embed(x[0], x[1], x[2], x[3], x[4], 4); },
          48, {32, 32, 2, 2});
}

TEST_CASE("tf32 matmul and linear: fp32 GEMMs with tf32 inputs, within the tf32 bound") {
  Generator gen(5);
  compare(
      "tf32 matmul", {randn({2, 37, 45}, gen), randn({2, 45, 29}, gen)}, {true, true},
      [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, 45, {29, 37},
      MatmulPrecision::tf32);
  compare(
      "tf32 linear", {randn({3, 11, 40}, gen), randn({24, 40}, gen), randn({24}, gen)},
      {true, true, true}, [](const std::vector<Tensor>& x) { return linear(x[0], x[1], x[2]); }, 40,
      {24, 33, 33}, MatmulPrecision::tf32);
}

TEST_CASE("matmul precision: cpu refuses bf16 and tf32; a GPU backend keeps what it is given") {
  Backend& cpu = backend(Device::cpu);
  CHECK_NOTHROW(cpu.set_matmul_precision(MatmulPrecision::fp32));
  CHECK_THROWS_WITH_AS(cpu.set_matmul_precision(MatmulPrecision::bf16),
                       doctest::Contains("device cpu computes in fp32 only"),
                       std::invalid_argument);
  CHECK_THROWS_AS(cpu.set_matmul_precision(MatmulPrecision::tf32), std::invalid_argument);
  CHECK(cpu.matmul_precision() == MatmulPrecision::fp32);
  for (Device device : forge::testing::gpu_test_devices()) {
    Backend& gpu = backend(device);
    for (MatmulPrecision p :
         {MatmulPrecision::bf16, MatmulPrecision::tf32, MatmulPrecision::fp32}) {
      gpu.set_matmul_precision(p);
      CHECK(gpu.matmul_precision() == p);
    }
  }
}
