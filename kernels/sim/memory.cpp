// memory.cpp: device memory and the last error on the sim (runtime.h). "Device" memory is host
// memory, since kernels run on the CPU; what is modelled is CUDA's error behaviour: a failed
// cudaMalloc leaves cudaErrorMemoryAllocation as the thread's last error until it is read.
#include <cstdint>
#include <cstdlib>

#include "kernels/sim/runtime.h"

namespace forge::sim {

namespace {
// Per host thread, as in the CUDA runtime.
thread_local cudaError_t last_error = cudaSuccess;
}  // namespace

cudaError_t device_malloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  // aligned_alloc wants a multiple of the alignment; a size that cannot be rounded cannot be had.
  if (bytes <= SIZE_MAX - 512)
    *ptr = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + (bytes == 0 ? 256 : 0));
  if (*ptr) return cudaSuccess;
  last_error = cudaErrorMemoryAllocation;
  return cudaErrorMemoryAllocation;
}

void device_free(void* ptr) {
  std::free(ptr);
}

cudaError_t take_last_error() {
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

const char* error_string(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    default:
      return "unrecognized error code";
  }
}

}  // namespace forge::sim
