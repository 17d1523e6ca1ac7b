// cuda_compat.h: the one header every kernel source (kernels/*.cu) and the CUDA backend's host code
// include instead of <cuda_runtime.h>. Under nvcc it is CUDA itself plus three macros; under g++
// (FORGE_SIM_BUILD) it maps the CUDA names kernels use onto kernels/sim, which runs them on the
// CPU. docs/GPU_BACKEND.md lists what kernel code may use; everything here is that list.
//
// Launch with FORGE_LAUNCH(kernel, grid, block, smem_bytes, stream, args...) (g++ cannot parse
// <<<>>>), declare dynamic shared memory with FORGE_DYNAMIC_SMEM(type, name), and follow a launch
// with FORGE_CHECK_LAUNCH(kernel). A template kernel goes in parentheses so the preprocessor does
// not split it at its commas: FORGE_LAUNCH((gemm_tile<float, 16>), ...).
#pragma once
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

#if defined(__CUDACC__)
// ---------------------------------------------------------------- nvcc: the real thing
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace forge::FORGE_GPU_NS {
// Kernel launches so far (FORGE_LAUNCH counts them; bench model reports them per step).
inline std::atomic<uint64_t> cuda_launches{0};
inline uint64_t kernel_launch_count() {
  return cuda_launches.load(std::memory_order_relaxed);
}
// What check_launch asks of the runtime (the sim build has its own).
inline cudaError_t take_last_error() {
  return cudaGetLastError();
}
inline cudaError_t wait_for_device() {
  return cudaDeviceSynchronize();
}
inline const char* error_text(cudaError_t error) {
  return cudaGetErrorString(error);
}
}  // namespace forge::FORGE_GPU_NS

#define FORGE_LAUNCH(kernel, grid, block, smem, stream, ...)                       \
  (::forge::FORGE_GPU_NS::cuda_launches.fetch_add(1, ::std::memory_order_relaxed), \
   kernel<<<grid, block, smem, stream>>>(__VA_ARGS__))

// One name and element type for every kernel, so template kernels that use dynamic shared memory
// with different element types do not declare conflicting `extern __shared__` arrays.
#define FORGE_DYNAMIC_SMEM(type, name)                         \
  extern __shared__ __align__(16) unsigned char forge_smem_[]; \
  type* name = reinterpret_cast<type*>(forge_smem_)

#else
// ---------------------------------------------------------------- g++: kernels/sim
#ifndef FORGE_SIM_BUILD
#error "cuda_compat.h without nvcc needs the sim build (FORGE_SIM_BUILD, target forge_sim)"
#endif
// NVIDIA's runtime header compiles under g++ and gives host code cudaStream_t, cudaError_t,
// dim3 and friends. Without __CUDACC__ it defines __shared__, __global__, ... as nothing, so they
// are redefined below: a __shared__ array left as a plain local would silently be per-thread.
#include <cuda_runtime.h>
#include <math.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/sim/runtime.h"

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __noinline__
#undef __shared__
#undef __constant__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __constant__
#define __launch_bounds__(...)
// One OS thread runs one block at a time, so a per-OS-thread static is exactly per-block memory.
#define __shared__ static thread_local
// __restrict__ is a g++ keyword already.

#define threadIdx (::forge::sim::thread_idx)
#define blockIdx (::forge::sim::block_idx)
#define blockDim (::forge::sim::block_dim)
#define gridDim (::forge::sim::grid_dim)
inline constexpr int warpSize = 32;

#define FORGE_LAUNCH(kernel, grid, block, smem, stream, ...)                                \
  ((void)(stream),                                                                          \
   ::forge::sim::launch_kernel(#kernel, dim3(grid), dim3(block), static_cast<size_t>(smem), \
                               kernel __VA_OPT__(, ) __VA_ARGS__))
#define FORGE_DYNAMIC_SMEM(type, name) \
  type* name = reinterpret_cast<type*>(::forge::sim::dynamic_smem())

namespace forge::FORGE_GPU_NS {
inline uint64_t kernel_launch_count() {
  return ::forge::sim::launch_count();
}
// A sim launch throws its own errors, but CUDA's last error (a failed cudaMalloc's) is modelled,
// so FORGE_CHECK_LAUNCH reads it as on CUDA. Launches are synchronous: nothing to wait for.
inline cudaError_t take_last_error() {
  return ::forge::sim::take_last_error();
}
inline cudaError_t wait_for_device() {
  return cudaSuccess;
}
inline const char* error_text(cudaError_t error) {
  return ::forge::sim::error_string(error);
}
}  // namespace forge::FORGE_GPU_NS

// ---- barriers and warp collectives
inline void __syncthreads() {
  ::forge::sim::sync_threads();
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::forge::sim::warp_collective(::forge::sim::Collective::syncwarp, mask, 0, 0, 32);
}

namespace forge::sim {
// Shuffles move any value of up to 8 bytes (float, int, __half, double, ...) as raw bits.
template <class T>
T shuffle(Collective kind, unsigned mask, T value, int arg, int width) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable_v<T>,
                "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_collective(kind, mask, bits, arg, width);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}
}  // namespace forge::sim

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  return ::forge::sim::shuffle(::forge::sim::Collective::shfl_idx, mask, var, src_lane, width);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return ::forge::sim::shuffle(::forge::sim::Collective::shfl_up, mask, var, int(delta), width);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return ::forge::sim::shuffle(::forge::sim::Collective::shfl_down, mask, var, int(delta), width);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  return ::forge::sim::shuffle(::forge::sim::Collective::shfl_xor, mask, var, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return unsigned(
      ::forge::sim::warp_collective(::forge::sim::Collective::ballot, mask, predicate != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int predicate) {
  return int(
      ::forge::sim::warp_collective(::forge::sim::Collective::any, mask, predicate != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int predicate) {
  return int(
      ::forge::sim::warp_collective(::forge::sim::Collective::all, mask, predicate != 0, 0, 32));
}

// ---- atomics: relaxed, like CUDA's. Lanes of one block never interleave between barriers; blocks
// on different OS threads do, and these are real atomics between them.
// __threadfence: this thread's earlier writes are seen by every block before its later ones; a
// sequentially consistent fence, which with the relaxed atomics above orders a block's partial
// sums before its ticket (kernels/slab_reduce.cuh) as on a GPU.
inline void __threadfence() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
inline int atomicAdd(int* address, int value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
// No float fetch_add in hardware here: a compare-and-swap loop, so sums depend on the order blocks
// happen to add in (compare them with a tolerance).
inline float atomicAdd(float* address, float value) {
  float old;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  float sum = old + value;
  while (
      !__atomic_compare_exchange(address, &old, &sum, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    sum = old + value;
  }
  return old;
}
// g++ has no __atomic_fetch_max before GCC 13: compare-and-swap loops.
inline int atomicMax(int* address, int value) {
  int old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (old < value && !__atomic_compare_exchange_n(address, &old, value, true, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
  }
  return old;
}
inline int atomicMin(int* address, int value) {
  int old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (old > value && !__atomic_compare_exchange_n(address, &old, value, true, __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T>
inline T atomicCAS(T* address, T compare, T value) {
  static_assert(std::is_integral_v<T>, "atomicCAS takes int, unsigned or unsigned long long");
  __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // the old value, whether or not the swap happened
}
template <class T>
inline T atomicExch(T* address, T value) {
  T old;
  __atomic_exchange(address, &value, &old, __ATOMIC_RELAXED);
  return old;
}

// ---- math and bit casts beyond <math.h>
inline float rsqrtf(float x) {
  return 1.0f / sqrtf(x);
}
// A product rounded on its own, never contracted into an FMA with a later sum (g++ contracts
// under -march=native as nvcc does): the volatile store is what stops the fusion.
inline float __fmul_rn(float a, float b) {
  volatile float product = a * b;
  return product;
}
// CUDA's global min/max overloads (device code cannot call std::min without nvcc's
// --expt-relaxed-constexpr). Floats follow fminf/fmaxf: a NaN argument loses.
inline int min(int a, int b) {
  return b < a ? b : a;
}
inline int max(int a, int b) {
  return a < b ? b : a;
}
inline unsigned min(unsigned a, unsigned b) {
  return b < a ? b : a;
}
inline unsigned max(unsigned a, unsigned b) {
  return a < b ? b : a;
}
inline long long min(long long a, long long b) {
  return b < a ? b : a;
}
inline long long max(long long a, long long b) {
  return a < b ? b : a;
}
inline unsigned long long min(unsigned long long a, unsigned long long b) {
  return b < a ? b : a;
}
inline unsigned long long max(unsigned long long a, unsigned long long b) {
  return a < b ? b : a;
}
inline float min(float a, float b) {
  return fminf(a, b);
}
inline float max(float a, float b) {
  return fmaxf(a, b);
}
inline int __float_as_int(float x) {
  return std::bit_cast<int>(x);
}
inline float __int_as_float(int x) {
  return std::bit_cast<float>(x);
}
inline unsigned __float_as_uint(float x) {
  return std::bit_cast<unsigned>(x);
}
inline float __uint_as_float(unsigned x) {
  return std::bit_cast<float>(x);
}

#endif

// ---------------------------------------------------------------- both: checking a launch
namespace forge {
// FORGE_SYNC_LAUNCHES=1: every FORGE_CHECK_LAUNCH waits for the device, so an error a kernel
// raises while running (an illegal address) is reported against that kernel instead of a later
// call. Unset or 0: launches stay asynchronous. Read once.
inline bool sync_launches() {
  static const bool enabled = [] {
    const char* text = std::getenv("FORGE_SYNC_LAUNCHES");
    if (!text || std::strcmp(text, "0") == 0) return false;
    if (std::strcmp(text, "1") == 0) return true;
    throw std::invalid_argument("FORGE_SYNC_LAUNCHES must be 0 or 1, not '" + std::string(text) +
                                "'");
  }();
  return enabled;
}
}  // namespace forge

namespace forge::FORGE_GPU_NS {
// FORGE_CHECK_LAUNCH's body. `spelled` is the macro argument as written: a kernel's name, or a
// string literal naming it (whose quotes are dropped from the message).
inline void check_launch(std::string spelled) {
  cudaError_t error = take_last_error();
  const bool waited = error == cudaSuccess && sync_launches();
  if (waited) error = wait_for_device();
  if (error == cudaSuccess) return;
  if (spelled.size() >= 2 && spelled.front() == '"')
    spelled = spelled.substr(1, spelled.size() - 2);
  throw std::runtime_error("kernel " + spelled + ": " + error_text(error) +
                           (waited ? " (while it ran: FORGE_SYNC_LAUNCHES=1)"
                                   : " (an error of a kernel still running is reported by a "
                                     "later check: FORGE_SYNC_LAUNCHES=1 names the kernel)"));
}
}  // namespace forge::FORGE_GPU_NS
#define FORGE_CHECK_LAUNCH(name) ::forge::FORGE_GPU_NS::check_launch(#name)
