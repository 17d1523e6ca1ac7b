// test_cudnn_conv.cpp: cuDNN's convolutions on Device::cuda (engine/cuda/cudnn_conv.h) called
// directly, fp32 and bf16, forward, backward data and backward filter, against the CPU backend's
// fp32 convolution (oneDNN). Built only with FORGE_CUDA and FORGE_CUDNN; runs only where a GPU
// answers (FORGE_TEST_DEVICES, test_devices.h: unset, a machine without one skips with a message;
// "cuda" makes a missing GPU a failure). It also checks that cuDNN actually takes these shapes
// (each call returns true): test_gpu_vision's conv checks would pass on the im2col fallback too.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/cudnn_conv.h"
#include "engine/cuda/gpu_backend.h"
#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/bf16.h"
#include "tests/kernels/test_devices.h"
#include "tests/tensor_compare.h"

using namespace forge;
using forge::testing::check_close;
using gpu_cuda::ConvDtype;
using gpu_cuda::ConvTypes;

namespace {

Conv2dDesc make_desc(int n, int c, int h, int w, int k, int kernel, int stride, int pad) {
  Conv2dDesc d{n, c, h, w, k, kernel, kernel, stride, pad, 0, 0};
  d.oh = (h + 2 * pad - kernel) / stride + 1;
  d.ow = (w + 2 * pad - kernel) / stride + 1;
  return d;
}

std::vector<float> random_values(size_t count, Generator& gen) {
  return Tensor::randn({int64_t(count)}, gen).to_vector();
}

// Values as the device holds them: fp32 as they are, bf16 rounded to nearest even.
std::vector<float> as_stored(const std::vector<float>& values, ConvDtype type) {
  std::vector<float> out(values);
  if (type == ConvDtype::bf16)
    for (float& v : out) v = bf16_to_float(float_to_bf16(v));
  return out;
}

// Device buffer of `count` elements of `type`, freed with the test.
struct DeviceBuffer {
  Backend& backend;
  ConvDtype type;
  size_t count;
  void* ptr;
  DeviceBuffer(Backend& be, ConvDtype t, size_t n)
      : backend(be), type(t), count(n), ptr(be.allocate(bytes())) {}
  ~DeviceBuffer() { backend.deallocate(ptr, bytes()); }
  size_t bytes() const { return count * (type == ConvDtype::fp32 ? 4 : 2); }
  void upload(const std::vector<float>& values) {
    if (type == ConvDtype::fp32) return backend.copy_from_host(ptr, values.data(), bytes());
    std::vector<bf16> packed(count);
    for (size_t i = 0; i < count; ++i) packed[i] = float_to_bf16(values[i]);
    backend.copy_from_host(ptr, packed.data(), bytes());
  }
  std::vector<float> download() {
    std::vector<float> values(count);
    if (type == ConvDtype::fp32) {
      backend.copy_to_host(values.data(), ptr, bytes());
      return values;
    }
    std::vector<bf16> packed(count);
    backend.copy_to_host(packed.data(), ptr, bytes());
    for (size_t i = 0; i < count; ++i) values[i] = bf16_to_float(packed[i]);
    return values;
  }
};

// The three directions on cuda with `types`, against the CPU's fp32 convolution of the values
// the device holds (inputs rounded as stored), within rtol and atol.
void check_directions(const Conv2dDesc& d, ConvTypes types, float rtol, float atol) {
  Backend& cpu = backend(Device::cpu);
  auto& cuda = dynamic_cast<gpu_cuda::GpuBackend&>(backend(Device::cuda));
  gpu_cuda::CudnnConv conv;
  Generator gen(11);
  const size_t xs = size_t(d.n) * d.c * d.h * d.w, ws = size_t(d.k) * d.c * d.r * d.s,
               ys = size_t(d.n) * d.k * d.oh * d.ow;
  const std::vector<float> x = as_stored(random_values(xs, gen), types.x),
                           w = as_stored(random_values(ws, gen), types.w),
                           gy = as_stored(random_values(ys, gen), types.y);
  std::vector<float> want_y(ys), want_gx(xs), want_gw(ws), gbias(size_t(d.k));
  cpu.conv2d_forward(d, x.data(), w.data(), nullptr, want_y.data());
  cpu.conv2d_backward_data(d, gy.data(), w.data(), want_gx.data());
  cpu.conv2d_backward_weight(d, x.data(), gy.data(), want_gw.data(), gbias.data());

  DeviceBuffer dx(cuda, types.x, xs), dw(cuda, types.w, ws), dgy(cuda, types.y, ys),
      dy(cuda, types.y, ys), dgx(cuda, types.x, xs), dgw(cuda, types.w, ws);
  dx.upload(x);
  dw.upload(w);
  dgy.upload(gy);
  REQUIRE(conv.forward(cuda, d, types, dx.ptr, dw.ptr, dy.ptr));
  REQUIRE(conv.backward_data(cuda, d, types, dgy.ptr, dw.ptr, dgx.ptr));
  REQUIRE(conv.backward_filter(cuda, d, types, dx.ptr, dgy.ptr, dgw.ptr));
  check_close(dy.download(), want_y, rtol, atol, "forward");
  check_close(dgx.download(), want_gx, rtol, atol, "backward data");
  check_close(dgw.download(), want_gw, rtol, atol, "backward filter");
}

bool cuda_selected() {
  const auto& devices = forge::testing::gpu_test_devices();
  return std::find(devices.begin(), devices.end(), Device::cuda) != devices.end();
}

struct ConvCase {
  int n, c, h, w, k, kernel, stride, pad;
};
// Odd sizes, the models' kernels (3x3 pad 1, 1x1, strided downsampling, a 7x7 stem).
const ConvCase kShapes[] = {{2, 3, 7, 9, 5, 3, 2, 1},
                            {3, 16, 14, 14, 32, 3, 1, 1},
                            {2, 32, 15, 13, 16, 1, 2, 0},
                            {1, 3, 33, 31, 8, 7, 2, 3},
                            {2, 24, 9, 11, 40, 5, 1, 2}};

}  // namespace

TEST_CASE("cudnn conv2d fp32: forward, backward data and filter match oneDNN") {
  if (!cuda_selected()) {
    MESSAGE("Device::cuda not selected or not usable: cuDNN not run");
    return;
  }
  // fp32 without TF32, FFT or Winograd (cudnn_conv.cpp's rules): the same sums as im2col, in
  // another order, so test_gpu_vision's bound: 1e-4 absolute + 1e-4 relative.
  for (const ConvCase& s : kShapes) {
    CAPTURE(s.c);
    CAPTURE(s.k);
    CAPTURE(s.kernel);
    CAPTURE(s.stride);
    check_directions(make_desc(s.n, s.c, s.h, s.w, s.k, s.kernel, s.stride, s.pad),
                     gpu_cuda::kConvFp32, 1e-4f, 1e-4f);
  }
}

TEST_CASE("cudnn conv2d bf16: forward, backward data and filter match oneDNN within bf16") {
  if (!cuda_selected()) {
    MESSAGE("Device::cuda not selected or not usable: cuDNN not run");
    return;
  }
  // Inputs are rounded to bf16 before the CPU reference too, so the only bf16 error left is the
  // output's own rounding, half an ulp: 2^-9 relative (8 significant bits), with fp32
  // accumulation adding a few fp32 ulps of the partial sums. Bound: 2^-8 relative (twice the
  // rounding, for the accumulation order) + 1e-3 absolute (outputs near zero, where
  // cancellation leaves sums of magnitude ~10 in fp32).
  for (const ConvCase& s : kShapes) {
    CAPTURE(s.c);
    CAPTURE(s.k);
    CAPTURE(s.kernel);
    CAPTURE(s.stride);
    check_directions(make_desc(s.n, s.c, s.h, s.w, s.k, s.kernel, s.stride, s.pad),
                     gpu_cuda::kConvBf16, 1.f / 256, 1e-3f);
  }
}
