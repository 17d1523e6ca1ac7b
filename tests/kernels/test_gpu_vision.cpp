// test_gpu_vision.cpp: the conv, pool, attention and vision kernel families (kernels/conv.cu,
// pool.cu, attention.cu, vision.cu) against the CPU backend. Each case runs the differentiable op
// (engine/ops.h) on Device::cpu and on every GPU device present (always Device::sim; Device::cuda
// when a GPU answers), seeds backward with a fixed random gradient R (loss = sum(out * R), so no
// two outputs get the same gradient), and compares the outputs and every input gradient.
// Shapes are multiples of no tile size (attention tiles are 16 or 32 rows; conv images 7x9).
// CTest runs this executable in both emulator orders (FORGE_SIM_ORDER): a race shows as a
// difference in one of them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "tests/kernels/test_devices.h"
#include "tests/tensor_compare.h"

using namespace forge;
using forge::testing::check_close;

namespace {

// The GPU devices under test (FORGE_TEST_DEVICES, test_devices.h).
const std::vector<Device>& gpu_devices() {
  return forge::testing::gpu_test_devices();
}

struct Input {
  Tensor value;      // on the CPU
  bool grad = true;  // whether the op's gradient for it is checked (images of patch_embed: no)
};

// The output and the input gradients of one run.
struct Result {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;  // one per Input with grad, in order
};

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

Result run(Device device, const std::vector<Input>& inputs, const Op& op, uint64_t seed) {
  std::vector<Tensor> on_device;
  for (const Input& in : inputs) {
    Tensor t = in.value.to(device);
    if (in.grad) t.requires_grad_();
    on_device.push_back(t);
  }
  Tensor out = op(on_device);
  Generator gen(seed);
  Tensor r = Tensor::randn(out.shape(), gen).to(device);
  sum(mul(out, r)).backward();
  Result result{out.to_vector(), {}};
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].grad) result.grads.push_back(on_device[i].grad().to_vector());
  return result;
}

// Runs op on the CPU and on each GPU device and compares outputs and gradients.
void compare(const std::string& what, const std::vector<Input>& inputs, const Op& op, float rtol,
             float atol, uint64_t seed = 7) {
  const Result want = run(Device::cpu, inputs, op, seed);
  for (Device device : gpu_devices()) {
    const Result got = run(device, inputs, op, seed);
    const std::string where = what + " on " + device_name(device);
    check_close(got.out, want.out, rtol, atol, where + ": output");
    REQUIRE(got.grads.size() == want.grads.size());
    for (size_t i = 0; i < want.grads.size(); ++i)
      check_close(got.grads[i], want.grads[i], rtol, atol,
                  where + ": gradient of input " + std::to_string(i));
  }
}

Tensor randn(const Shape& shape, Generator& gen) {
  return Tensor::randn(shape, gen);
}

}  // namespace

TEST_CASE("gpu attention: forward and backward match the CPU for any t, head dims 16 to 100") {
  // Tolerance: outputs are convex combinations of v rows (|v| ~ 1) and gradients sums of t
  // products; the GPU sums in tiles and with an online max where the CPU uses GEMMs and a double
  // log-sum-exp, so float rounding differs by a few ulps per term: 2e-5 relative + 2e-5 absolute
  // is ~100 ulps, far below any indexing or masking error (which is O(1)).
  Generator gen(1);
  for (int dh : {32, 64})
    for (int t : {1, 17, 65, 101}) {
      CAPTURE(dh);
      CAPTURE(t);
      const Shape shape{2, 3, t, dh};  // b * h = 6 problems
      compare(
          "attention t=" + std::to_string(t) + " dh=" + std::to_string(dh),
          {{randn(shape, gen)}, {randn(shape, gen)}, {randn(shape, gen)}},
          [dh](const std::vector<Tensor>& x) {
            return scaled_dot_product_attention(x[0], x[1], x[2], 1.f / std::sqrt(float(dh)));
          },
          2e-5f, 2e-5f);
    }
  // Head dims between the instances: zero-padded to 32 (vit-micro's 16) and to 128 (tile 16).
  for (int dh : {16, 100}) {
    const Shape shape{1, 2, 33, dh};
    compare(
        "attention dh=" + std::to_string(dh),
        {{randn(shape, gen)}, {randn(shape, gen)}, {randn(shape, gen)}},
        [dh](const std::vector<Tensor>& x) {
          return scaled_dot_product_attention(x[0], x[1], x[2], 1.f / std::sqrt(float(dh)));
        },
        2e-5f, 2e-5f);
  }
}

TEST_CASE(
    "gpu packed_self_attention reads the projection in place: the gathered result bit for bit, "
    "no gathers") {
  // qkv [b, t, 3 heads dh] read in place (GpuBackend::attention_*_packed), against the same
  // attention with q, k, v gathered to [3, b, heads, t, dh] and the output permuted back (the op's
  // path before these kernels read the packed layout): the same kernels and sums, so equal to the
  // bit at fp32 and at bf16; and against the CPU, at fp32 within the tolerance of the case above,
  // at bf16 within 0.05 (a coarse check: the bf16 kernels' own bound is the playground's v6). t =
  // 17, 33, 65: multiples of none of the tiles (16, 32, 64 rows); b and heads > 1. Head dims: the
  // fp32 instances' 32 and 64, 24 and 100 zero-padded (fp32 kernels at either precision), and 16,
  // 32, 64, 128 on the tensor-core kernels at bf16.
  struct Case {
    int b, heads, t, dh;
  };
  const Case cases[] = {{2, 3, 17, 32}, {2, 2, 33, 24},  {3, 2, 65, 64},
                        {2, 2, 17, 16}, {2, 2, 33, 100}, {2, 2, 17, 128}};
  Generator gen(3);
  for (const Case& c : cases) {
    const float scale = 1.f / std::sqrt(float(c.dh));
    const std::vector<Input> qkv{Input{randn({c.b, c.t, 3 * c.heads * c.dh}, gen)}};
    const Op packed = [c, scale](const std::vector<Tensor>& x) {
      return packed_self_attention(x[0], c.heads, scale);
    };
    const Op gathered = [c, scale](const std::vector<Tensor>& x) {
      Tensor stacked = x[0].reshape({c.b, c.t, 3, c.heads, c.dh}).permute({2, 0, 3, 1, 4});
      return scaled_dot_product_attention(stacked, scale)
          .permute({0, 2, 1, 3})
          .reshape({c.b, c.t, c.heads * c.dh});
    };
    const Result cpu = run(Device::cpu, qkv, packed, 7);
    for (MatmulPrecision precision : {MatmulPrecision::fp32, MatmulPrecision::bf16})
      for (Device device : gpu_devices()) {
        const std::string where = "b=" + std::to_string(c.b) + " heads=" + std::to_string(c.heads) +
                                  " t=" + std::to_string(c.t) + " dh=" + std::to_string(c.dh) +
                                  " on " + device_name(device) +
                                  (precision == MatmulPrecision::bf16 ? " at bf16" : " at fp32");
        const forge::testing::AtPrecision at(device, precision);
        const Result got = run(device, qkv, packed, 7), want = run(device, qkv, gathered, 7);
        check_close(got.out, want.out, 0.f, 0.f, where + ": output against the gathered path");
        check_close(got.grads[0], want.grads[0], 0.f, 0.f,
                    where + ": gradient against the gathered path");
        // The forward alone: the attention kernel, and at bf16 on the tensor cores the one rounding
        // of the whole projection; no gather of q, k, v, no permuted copy of the output.
        const Tensor on_device = qkv[0].value.to(device);
        const uint64_t launches = gpu_launch_count(device);
        packed_self_attention(on_device, c.heads, scale);
        const bool mma = precision == MatmulPrecision::bf16 &&
                         (c.dh == 16 || c.dh == 32 || c.dh == 64 || c.dh == 128);
        CHECK(gpu_launch_count(device) - launches == (mma ? 2 : 1));
        const float tol = precision == MatmulPrecision::bf16 ? 5e-2f : 2e-5f;
        check_close(got.out, cpu.out, tol, tol, where + ": output against the CPU");
        check_close(got.grads[0], cpu.grads[0], tol, tol, where + ": gradient against the CPU");
      }
  }
}

TEST_CASE("gpu conv2d: forward, data and weight gradients match oneDNN") {
  // A stride above the kernel size (1 and 2, 2 and 3) leaves input pixels no tap reads. Tolerance:
  // each output sums c*r*s <= 75 products of unit normals (magnitude ~ 9), gradients up to n*oh*ow
  // = 126 terms; GEMM blocking orders the sums differently from oneDNN, so errors of a few ulps of
  // the partial sums: 1e-4 absolute + 1e-4 relative.
  Generator gen(2);
  struct Case {
    int kernel, stride, pad;
    bool bias;
  };
  for (Case c :
       {Case{5, 1, 0, true}, Case{5, 2, 1, false}, Case{3, 2, 1, true}, Case{3, 1, 1, true},
        Case{1, 1, 0, false}, Case{1, 2, 0, true}, Case{2, 3, 2, true}, Case{4, 3, 1, false}}) {
    CAPTURE(c.kernel);
    CAPTURE(c.stride);
    CAPTURE(c.pad);
    const Input image{randn({2, 3, 7, 9}, gen)}, weight{randn({5, 3, c.kernel, c.kernel}, gen)};
    const std::vector<Input> inputs = c.bias ? std::vector<Input>{image, weight, {randn({5}, gen)}}
                                             : std::vector<Input>{image, weight};
    compare(
        "conv2d", inputs,
        [c](const std::vector<Tensor>& x) {
          return conv2d(x[0], x[1], c.bias ? x[2] : Tensor(), c.stride, c.pad);
        },
        1e-4f, 1e-4f);
  }
}

TEST_CASE("gpu max_pool2d: values, first-maximum argmax and routed gradients match the CPU") {
  // Exact (tolerance 0): the maximum is a copy, and each gradient sums the same terms in the same
  // (output) order on both devices. Inputs rounded to halves make ties, so "first maximum wins"
  // is tested too.
  Generator gen(3);
  std::vector<float> values = randn({2, 3, 7, 9}, gen).to_vector();
  for (float& v : values) v = std::round(v * 2.f) / 2.f;
  const Tensor x = Tensor::from_vector(values, {2, 3, 7, 9});
  for (auto [kernel, stride, pad] :
       {std::array{3, 2, 1}, std::array{2, 2, 0}, std::array{3, 1, 1}, std::array{5, 3, 2}}) {
    CAPTURE(kernel);
    CAPTURE(stride);
    CAPTURE(pad);
    compare(
        "max_pool2d", {{x}},
        [=](const std::vector<Tensor>& in) { return max_pool2d(in[0], kernel, stride, pad); }, 0.f,
        0.f);
  }
}

TEST_CASE("gpu patch_embed: tokens and parameter gradients match the CPU, patches 4 and 16") {
  // Tolerance: a token sums c*p*p (48 or 768) products; gW sums b*G patch rows, gbias b*G values
  // (the CPU in double, the GPU in float): 1e-4 absolute + 1e-4 relative covers float rounding of
  // sums of ~1000 unit terms (sqrt(1000) * 2^-24 * 30 ~ 6e-6 typical, 1e-4 worst-case margin).
  Generator gen(4);
  struct Case {
    int b, h, w, p, e;
  };
  for (Case c : {Case{2, 8, 12, 4, 5}, Case{3, 32, 16, 16, 7}}) {
    CAPTURE(c.p);
    const int tokens = 1 + (c.h / c.p) * (c.w / c.p);
    compare(
        "patch_embed",
        {{randn({c.b, 3, c.h, c.w}, gen), false},
         {randn({c.e, 3, c.p, c.p}, gen)},
         {randn({c.e}, gen)},
         {randn({c.e}, gen)},
         {randn({tokens, c.e}, gen)}},
        [c](const std::vector<Tensor>& x) {
          return patch_embed(x[0], x[1], x[2], x[3], x[4], c.p);
        },
        1e-4f, 1e-4f);
  }
}

TEST_CASE("gpu multi_resolution_fusion, resize_nearest and pad2d match the CPU exactly") {
  // Exact (tolerance 0): the same float additions in the same order (branches 0, 1, ...; the
  // gradient's outputs row by row), and copies.
  Generator gen(5);
  for (int out : {15, 30}) {
    CAPTURE(out);
    std::vector<Input> branches;
    for (int size : {30, 15, 8, 4}) branches.push_back({randn({2, 3, size, size}, gen)});
    compare(
        "fusion into " + std::to_string(out), branches,
        [out](const std::vector<Tensor>& x) { return multi_resolution_fusion(x, out, out); }, 0.f,
        0.f);
  }
  compare(
      "fusion, non-square", {{randn({1, 2, 7, 9}, gen)}, {randn({1, 2, 3, 5}, gen)}},
      [](const std::vector<Tensor>& x) { return multi_resolution_fusion(x, 5, 11); }, 0.f, 0.f);
  for (auto [h, w, oh, ow] :
       {std::array{7, 9, 15, 4}, std::array{4, 4, 9, 13}, std::array{30, 30, 8, 8}}) {
    CAPTURE(h);
    CAPTURE(oh);
    compare(
        "resize_nearest", {{randn({2, 3, h, w}, gen)}},
        [oh, ow](const std::vector<Tensor>& x) { return resize_nearest(x[0], oh, ow); }, 0.f, 0.f);
  }
  compare(
      "pad2d", {{randn({2, 3, 7, 9}, gen)}},
      [](const std::vector<Tensor>& x) { return pad2d(x[0], 1, 2, 0, 3); }, 0.f, 0.f);
}
