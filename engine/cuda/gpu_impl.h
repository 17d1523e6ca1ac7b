// gpu_impl.h: what a GpuBackend owns (its private Impl), shared by the sources that need it: the
// caching allocator (gpu_memory.cpp), the cuBLAS handle and the matmul precision (blas.cpp), GELU's
// path (elementwise.cu).
#pragma once
#include "engine/cuda/blas.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {

struct GpuBackend::Impl {
  CachingAllocator allocator;
  BlasHandle blas;
  bool float_gelu = gelu_in_float();                  // GELU's float path (engine/gelu_math.h)
  MatmulPrecision precision = MatmulPrecision::fp32;  // set_matmul_precision (blas.cpp)
};

}  // namespace forge::FORGE_GPU_NS
