// gpu_backend.h: the primitive table of Device::cuda and Device::sim (see engine/backend.h for
// what each entry computes). One source compiled twice (docs/GPU_BACKEND.md): by nvcc into
// forge::gpu_cuda, by g++ against kernels/sim into forge::gpu_sim.
//
// Definitions: memory in engine/cuda/gpu_memory.cpp, GEMM in engine/cuda/blas.cpp, every other
// method in the kernels/<family>.cu file that holds its kernels.
#pragma once
#include "engine/backend.h"

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

class GpuBackend final : public Backend {
 public:
  GpuBackend();
  ~GpuBackend() override;

  Device device() const override;
  void* allocate(size_t bytes) override;
  void deallocate(void* ptr, size_t bytes) override;
  void copy_from_host(void* dst, const void* src, size_t bytes) override;
  void copy_to_host(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  void fill(float* x, int64_t n, float value) override;
  void gather(const float* src_base, const StridedView& src, float* dst) override;
  void scatter(const float* src, float* dst_base, const StridedView& dst, bool accumulate) override;
  void binary(BinaryOp op, const float* a, const StridedView& av, const float* b,
              const StridedView& bv, float* out) override;
  void unary(UnaryOp op, const float* x, float* y, int64_t n, float alpha) override;
  void unary_backward(UnaryOp op, const float* x, const float* gy, float* gx, int64_t n) override;
  void axpy(float alpha, const float* x, float* y, int64_t n) override;
  void reduce_sum(const float* x, const int64_t* in_shape, const int64_t* out_shape, int ndim,
                  float* out) override;
  void sum_squares(const float* x, int64_t n, float* out) override;
  void gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
            int64_t stride_a, const float* b, int ldb, int64_t stride_b, float beta, float* c,
            int ldc, int64_t stride_c, int batch) override;
  void conv2d_forward(const Conv2dDesc& d, const float* x, const float* w,
                      const float* bias /*nullable*/, float* y) override;
  void conv2d_backward_data(const Conv2dDesc& d, const float* gy, const float* w,
                            float* gx) override;
  void conv2d_backward_weight(const Conv2dDesc& d, const float* x, const float* gy, float* gw,
                              float* gbias /*nullable*/) override;
  void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                               const float* beta, float eps, float momentum, float* y,
                               float* save_mean, float* save_invstd, float* running_mean,
                               float* running_var) override;
  void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                              const float* beta, const float* running_mean,
                              const float* running_var, float eps, float* y) override;
  void batchnorm_backward(int n, int c, int hw, const float* x, const float* gy, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* gx,
                          float* ggamma, float* gbeta) override;
  void layernorm_forward(int rows, int d, const float* x, const float* gamma, const float* beta,
                         float eps, float* y, float* mean, float* rstd) override;
  void layernorm_backward(int rows, int d, const float* x, const float* gy, const float* gamma,
                          const float* mean, const float* rstd, float* gx, float* ggamma,
                          float* gbeta) override;
  void softmax_forward(int rows, int d, const float* x, float* y) override;
  void softmax_backward(int rows, int d, const float* y, const float* gy, float* gx) override;
  void attention_forward(int bh, int t, int dh, float scale, const float* q, const float* k,
                         const float* v, float* out, float* lse) override;
  void attention_backward(int bh, int t, int dh, float scale, const float* q, const float* k,
                          const float* v, const float* out, const float* gout, const float* lse,
                          float* gq, float* gk, float* gv) override;
  void patch_embed_forward(const PatchEmbedDesc& d, const float* image, const float* w,
                           const float* bias, const float* cls, const float* pos,
                           float* tokens) override;
  void patch_embed_backward(const PatchEmbedDesc& d, const float* image, const float* gtokens,
                            float* gw, float* gbias, float* gcls, float* gpos) override;
  void fusion_forward(const FusionDesc& d, const float* const* xs, float* y) override;
  void fusion_backward(const FusionDesc& d, const float* y, const float* gy,
                       float* const* gxs) override;
  void resize_nearest_forward(int n, int c, int h, int w, int oh, int ow, const float* x,
                              float* y) override;
  void resize_nearest_backward(int n, int c, int h, int w, int oh, int ow, const float* gy,
                               float* gx) override;
  void pad2d_forward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                     const float* x, float* y) override;
  void pad2d_backward(int n, int c, int h, int w, int top, int bottom, int left, int right,
                      const float* gy, float* gx) override;
  void maxpool2d_forward(const Pool2dDesc& d, const float* x, float* y, int32_t* argmax) override;
  void maxpool2d_backward(const Pool2dDesc& d, const float* gy, const int32_t* argmax,
                          float* gx) override;
  void cross_entropy_forward(int rows, int classes, const float* logits, const int32_t* labels,
                             float smoothing, float* loss, float* lse) override;
  void cross_entropy_backward(int rows, int classes, const float* logits, const int32_t* labels,
                              float smoothing, const float* lse, const float* gloss,
                              float* glogits) override;
  void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) override;
  void dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) override;
  void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr, float beta1,
                 float beta2, float eps, float weight_decay, bool decoupled, int step) override;
  void sgd_step(int64_t n, float* p, const float* g, float* buf, float lr, float momentum,
                float weight_decay, bool nesterov) override;

 private:
  struct Impl;  // allocator cache, cuBLAS handle, stream
  Impl* impl_;
};

// Registers this build's backend for Device::sim or Device::cuda.
void register_gpu_backend();

}  // namespace forge::FORGE_GPU_NS
