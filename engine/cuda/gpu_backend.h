// gpu_backend.h: the primitive table of Device::cuda and Device::sim (see engine/backend.h for
// what each entry computes). One source compiled twice (docs/GPU_BACKEND.md): by nvcc into
// forge::gpu_cuda, by g++ against kernels/sim into forge::gpu_sim.
//
// Definitions: memory in engine/cuda/gpu_memory.cpp, GEMM in engine/cuda/blas.cpp, every other
// method in the kernels/<family>.cu file that holds its kernels.
#pragma once
#include <cstdint>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

class GpuBackend final : public Backend {
 public:
  GpuBackend();
  ~GpuBackend() override;

  Device device() const override;
  void set_matmul_precision(MatmulPrecision precision) override;
  MatmulPrecision matmul_precision() const override;
  void set_step_values(const StepValues& values) override;  // gpu_step_values.cpp
  uint64_t dropout_seed(uint64_t key, uint64_t step, uint64_t call) override;
#include "engine/backend_overrides.inc"

  // The CUDA graph (gpu_graph.cpp; engine/cuda/builtin.h GpuGraph says what it is for).
  void begin_graph_capture();
  void end_graph_capture();
  void replay_graph();
  void destroy_graph();        // also ends a capture that failed half way
  size_t graph_block_count();  // device blocks the graph's memory pool holds

 private:
  // The bf16 paths of gemm and the linear GEMMs (kernels/gemm_bf16.cu): the same arguments, the
  // inputs rounded to bf16 into scratch, fp32 accumulation and output.
  void gemm_bf16(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                 int lda, int64_t stride_a, const float* b, int ldb, int64_t stride_b, float beta,
                 float* c, int ldc, int64_t stride_c, int batch);
  void linear_forward_bf16(int rows, int in, int out, const float* x, const float* w,
                           const float* bias, float* y);
  void linear_backward_weight_bf16(int rows, int in, int out, const float* x, const float* gy,
                                   float* gw, float* gbias);

  struct Impl;  // allocator cache, cuBLAS handle, matmul precision, step values (gpu_impl.h)
  Impl* impl_;
};

// Registers this build's backend for Device::sim or Device::cuda.
void register_gpu_backend();

// Kernels launched so far by this build (kernels/launch_count.cu), and what bench model reports:
// those plus one per cuBLAS or cuDNN call (gpu_register.cpp).
uint64_t kernel_launch_total();
uint64_t launch_count();
// The host waits and blocking uploads so far (gpu_runtime.h), for engine/cuda/builtin.h.
GpuSyncCount sync_count();
void set_capture_check(bool on);  // gpu_runtime.h begin_capture_check / end_capture_check
// This build's backend's graph (GpuBackend::begin_graph_capture ...), for engine/cuda/builtin.h.
enum class GraphCall { begin_capture, end_capture, replay, destroy };
void graph_call(GraphCall call);
size_t graph_block_count();
// Test hook: the next allocation that reaches the device fails as an out-of-memory does.
void fail_next_allocation();

}  // namespace forge::FORGE_GPU_NS
