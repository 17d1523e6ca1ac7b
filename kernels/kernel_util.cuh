// kernel_util.cuh: the few helpers every kernel family shares: the compat header, launch-shape
// arithmetic, the grid-stride loop index, and scratch device memory borrowed from the backend's
// caching allocator for the life of one launcher call.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/cuda/gpu_backend.h"
#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS {

// Threads per block of the one-thread-per-element kernels: 8 warps, a common sweet spot between
// occupancy and scheduling overhead on sm_80/sm_90.
constexpr int kElementwiseThreads = 256;
// Grid cap of those kernels: enough blocks to fill any current GPU several times over; beyond it
// each thread takes several elements (grid-stride loop) instead of launching more blocks.
constexpr int64_t kMaxElementwiseBlocks = 4096;

// The stream every kernel is launched on: the default stream, which orders our launches after
// each other and after the backend's copies and GEMMs.
constexpr cudaStream_t kStream = 0;

constexpr int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Blocks of kElementwiseThreads covering n elements, capped (at least one block).
inline unsigned elementwise_blocks(int64_t n) {
  const int64_t blocks = ceil_div(n, kElementwiseThreads);
  return unsigned(blocks < 1 ? 1 : blocks > kMaxElementwiseBlocks ? kMaxElementwiseBlocks : blocks);
}

// Integer min / max usable in kernels on both builds (CUDA's int overloads of min and max are
// not part of the sim's contract).
__host__ __device__ __forceinline__ int min_int(int a, int b) {
  return a < b ? a : b;
}
__host__ __device__ __forceinline__ int max_int(int a, int b) {
  return a > b ? a : b;
}

// Grid-stride loop: `for (int64_t i = first_index(); i < n; i += index_stride())`.
__device__ __forceinline__ int64_t first_index() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t index_stride() {
  return int64_t(blockDim.x) * gridDim.x;
}

// Launches a one-thread-per-element kernel over `total` elements (grid-stride, capped grid).
template <typename Kernel, typename... Args>
void launch_elementwise(const char* name, Kernel kernel, int64_t total, Args... args) {
  FORGE_LAUNCH(kernel, dim3(elementwise_blocks(total)), dim3(kElementwiseThreads), 0, kStream,
               args...);
  FORGE_CHECK_LAUNCH(name);
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

}  // namespace forge::FORGE_GPU_NS
