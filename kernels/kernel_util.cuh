// kernel_util.cuh: what the conv, pool, attention and vision families share on top of
// launch_utils.cuh (grid-stride loops) and reduce_utils.cuh (warp and block sums): the stream,
// integer helpers, and scratch device memory borrowed from the
// backend's caching allocator for the life of one launcher call.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_runtime.h"
#include "kernels/bf16.h"
#include "kernels/launch_utils.cuh"
#include "kernels/reduce_utils.cuh"

namespace forge::FORGE_GPU_NS {

// The stream every kernel is launched on: the runtime's compute stream (gpu_runtime.h), which
// orders our launches after each other and after the backend's copies and GEMMs, and which a CUDA
// graph can capture (the legacy default stream cannot be captured). A call, spelled as the
// constant it was when it named stream 0: the stream is made on first use.
#define kStream (static_cast<cudaStream_t>(::forge::FORGE_GPU_NS::compute_stream_handle()))

constexpr int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Full unrolling of a loop with a compile-time trip count, on both compilers. It matters where a
// loop indexes a small per-thread array: unrolled, the array lives in registers.
#if defined(__CUDACC__)
#define FORGE_UNROLL _Pragma("unroll")
#else
#define FORGE_UNROLL _Pragma("GCC unroll 32")
#endif

// Integer min / max usable in kernels on both builds (CUDA's int overloads of min and max are
// not part of the sim's contract).
__host__ __device__ __forceinline__ int min_int(int a, int b) {
  return a < b ? a : b;
}
__host__ __device__ __forceinline__ int max_int(int a, int b) {
  return a > b ? a : b;
}

// Device memory for the intermediates of one launcher call (im2col matrices, row statistics),
// returned to the caching allocator when the call ends. On cuda the allocator hands memory out in
// stream order, so freeing while the kernels that use it are still queued is safe.
class DeviceScratch {
 public:
  DeviceScratch(GpuBackend& backend, int64_t floats)
      : backend_(backend),
        bytes_(size_t(floats) * sizeof(float)),
        data_(static_cast<float*>(backend.allocate(bytes_))) {}
  ~DeviceScratch() { backend_.deallocate(data_, bytes_); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  float* data() const { return data_; }

 private:
  GpuBackend& backend_;
  size_t bytes_;
  float* data_;
};

// The same for n bf16 (the rounded inputs of a bf16 GEMM or attention), 16-byte aligned as the
// allocator's blocks are.
class Bf16Scratch {
 public:
  Bf16Scratch(GpuBackend& backend, int64_t n) : floats_(backend, (n + 1) / 2) {}
  bf16* data() const { return reinterpret_cast<bf16*>(floats_.data()); }

 private:
  DeviceScratch floats_;
};

}  // namespace forge::FORGE_GPU_NS
