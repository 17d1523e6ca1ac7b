// cpu_backend.h: the primitive table of Device::cpu (see engine/backend.h for what each entry
// computes). Native C++: OpenMP loops over contiguous inner dimensions, oneDNN for GEMM and
// convolution. It is also the oracle the CUDA backend is tested against.
//
// The definitions are split by op family, one file each:
//   memory.cpp (memory), elementwise.cpp (elementwise, dropout), reduce.cpp, gemm.cpp,
//   conv.cpp (convolution, pooling), norm.cpp (batch/layer norm, softmax), attention.cpp,
//   vision.cpp (patch embedding, fusion, resize, padding), loss.cpp, optim.cpp
#pragma once
#include "engine/backend.h"

namespace forge {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }
#include "engine/backend_overrides.inc"
  // GELU keeping its slope for backward (elementwise.cpp).
  bool gelu_keeps_slope() const override {
    return true;
  }
  void gelu_slope_forward(const float* x, float* y, float* slope, int64_t n, float p,
                          uint64_t seed) override;
  void gelu_slope_backward(const float* slope, const float* gy, float* gx, int64_t n, float p,
                           uint64_t seed) override;
};

CpuBackend& cpu_backend();

}  // namespace forge
