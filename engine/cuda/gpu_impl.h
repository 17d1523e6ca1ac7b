// gpu_impl.h: what a GpuBackend owns (its private Impl), shared by the engine/cuda sources that
// need it: the caching allocator (gpu_memory.cpp) and the cuBLAS handle (blas.cpp).
#pragma once
#include "engine/cuda/blas.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/gpu_backend.h"

namespace forge::FORGE_GPU_NS {

struct GpuBackend::Impl {
  CachingAllocator allocator;
  BlasHandle blas;
};

}  // namespace forge::FORGE_GPU_NS
