// gpu_impl.h: what a GpuBackend owns (its private Impl), shared by the sources that need it: the
// caching allocator (gpu_memory.cpp), the cuBLAS handle and the matmul precision (blas.cpp), GELU's
// path (elementwise.cu), the convolution path and cuDNN's plans (kernels/conv.cu), the reductions'
// tickets (reduce.cu, norm.cu, conv.cu), the per-step values (optim.cu, elementwise.cu,
// step_metrics.cu).
#pragma once
#include "engine/cuda/blas.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/conv_path.h"
#if FORGE_CUDNN
#include "engine/cuda/cudnn_conv.h"
#endif
#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_runtime.h"
#include "engine/cuda/reduction_tickets.h"
#include "engine/cuda/step_values.h"

namespace forge::FORGE_GPU_NS {

struct GpuBackend::Impl {
  CachingAllocator allocator;
  BlasHandle blas;
  bool float_gelu = gelu_in_float();          // GELU's float path (engine/gelu_math.h)
  ConvPath conv_path = conv_path_from_env();  // FORGE_CONV; sim runs im2col whatever it says
#if FORGE_CUDNN
  CudnnConv cudnn;
#endif
  MatmulPrecision precision = MatmulPrecision::fp32;  // set_matmul_precision (blas.cpp)
  ReductionTickets tickets{allocator};     // declared after the allocator: returned to it first
  StepValuesBlock step_values{allocator};  // set_step_values (gpu_step_values.cpp)
};

}  // namespace forge::FORGE_GPU_NS
