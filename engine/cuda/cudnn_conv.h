// cudnn_conv.h: 2-D convolutions on Device::cuda through cuDNN 9's backend (graph) API: forward,
// backward data and backward filter, NCHW, fp32 or bf16 tensors with fp32 compute. Built only in
// the nvcc build with cuDNN (FORGE_CUDNN, engine/cuda/CMakeLists.txt); the sim and a build without
// cuDNN run the im2col kernels (kernels/conv.cu), which are also the fallback here.
//
// Per call shape (Conv2dDesc, tensor types, pointer alignment) the first call builds an execution
// plan and keeps it: the tensor and convolution descriptors, an operation graph of the one
// convolution, cuDNN's heuristics (mode A, then the fallback list) for engine configurations in
// their order of expected speed, and the first configuration that passes this file's numerical
// rules (cudnn_conv.cpp: deterministic, fp32 accumulation, and for fp32 tensors no TF32, FFT or
// Winograd) and cuDNN finalises. No timing-based search. The workspace comes from the backend's
// caching allocator for each call. Work runs on the default stream, in issue order with every
// kernel, as cuBLAS does (engine/cuda/gpu_impl.h).
//
// The bias is not part of these calls: the backend adds it and reduces its gradient with the same
// kernels the im2col path uses.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/backend.h"

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

class GpuBackend;

enum class ConvDtype { fp32, bf16 };

// Element types of a convolution's tensors: x (and its gradient gx), w (and gw), y (and gy).
// cuDNN has engines for all-fp32 and all-bf16; a mix (bf16 x and w with an fp32 y) is asked for
// as such and, where no engine takes it, reported unsupported like any other case.
struct ConvTypes {
  ConvDtype x, w, y;
};
inline constexpr ConvTypes kConvFp32{ConvDtype::fp32, ConvDtype::fp32, ConvDtype::fp32};
inline constexpr ConvTypes kConvBf16{ConvDtype::bf16, ConvDtype::bf16, ConvDtype::bf16};

class CudnnConv {
 public:
  CudnnConv();
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  // y = conv(x, w); gx = the backward-data convolution of gy with w; gw = the backward-filter
  // convolution of x with gy (a sum over images). Each overwrites its output. Pointers are device
  // memory of the types in `types`; shapes as in Conv2dDesc (n, k, oh and ow must be positive).
  // Returns false, having done nothing, when cuDNN has no engine meeting the rules for the case
  // (the caller runs im2col); throws std::runtime_error naming cuDNN's status and the shape on
  // any other failure.
  bool forward(GpuBackend& backend, const Conv2dDesc& d, ConvTypes types, const void* x,
               const void* w, void* y);
  bool backward_data(GpuBackend& backend, const Conv2dDesc& d, ConvTypes types, const void* gy,
                     const void* w, void* gx);
  bool backward_filter(GpuBackend& backend, const Conv2dDesc& d, ConvTypes types, const void* x,
                       const void* gy, void* gw);

 private:
  struct State;  // the cuDNN handle (made on first use) and the plan cache
  std::unique_ptr<State> state_;
};

// cuDNN executions so far (each is at least one kernel launch; engine/cuda/gpu_register.cpp adds
// them to the backend's launch count).
uint64_t cudnn_call_count();

}  // namespace forge::FORGE_GPU_NS
