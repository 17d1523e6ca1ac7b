// pending_basic.cu: TEMPORARY placeholders for the elementwise, reduction, normalisation, loss and
// optimizer kernel families; each throws until its real kernels/<family>.cu lands. Delete this file
// when they all have.
#include <stdexcept>

#include "engine/cuda/gpu_backend.h"

namespace forge::FORGE_GPU_NS {
void GpuBackend::fill(float* x, int64_t n, float value) {
  throw std::logic_error("gpu fill: not written yet");
}
void GpuBackend::gather(const float* src_base, const StridedView& src, float* dst) {
  throw std::logic_error("gpu gather: not written yet");
}
void GpuBackend::scatter(const float* src, float* dst_base, const StridedView& dst,
                         bool accumulate) {
  throw std::logic_error("gpu scatter: not written yet");
}
void GpuBackend::binary(BinaryOp op, const float* a, const StridedView& av, const float* b,
                        const StridedView& bv, float* out) {
  throw std::logic_error("gpu binary: not written yet");
}
void GpuBackend::unary(UnaryOp op, const float* x, float* y, int64_t n, float alpha) {
  throw std::logic_error("gpu unary: not written yet");
}
void GpuBackend::unary_backward(UnaryOp op, const float* x, const float* gy, float* gx, int64_t n) {
  throw std::logic_error("gpu unary_backward: not written yet");
}
void GpuBackend::axpy(float alpha, const float* x, float* y, int64_t n) {
  throw std::logic_error("gpu axpy: not written yet");
}
void GpuBackend::reduce_sum(const float* x, const int64_t* in_shape, const int64_t* out_shape,
                            int ndim, float* out) {
  throw std::logic_error("gpu reduce_sum: not written yet");
}
void GpuBackend::sum_squares(const float* x, int64_t n, float* out) {
  throw std::logic_error("gpu sum_squares: not written yet");
}
void GpuBackend::batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* y,
                                         float* save_mean, float* save_invstd, float* running_mean,
                                         float* running_var) {
  throw std::logic_error("gpu batchnorm_forward_train: not written yet");
}
void GpuBackend::batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y) {
  throw std::logic_error("gpu batchnorm_forward_eval: not written yet");
}
void GpuBackend::batchnorm_backward(int n, int c, int hw, const float* x, const float* gy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* gx, float* ggamma,
                                    float* gbeta) {
  throw std::logic_error("gpu batchnorm_backward: not written yet");
}
void GpuBackend::layernorm_forward(int rows, int d, const float* x, const float* gamma,
                                   const float* beta, float eps, float* y, float* mean,
                                   float* rstd) {
  throw std::logic_error("gpu layernorm_forward: not written yet");
}
void GpuBackend::layernorm_backward(int rows, int d, const float* x, const float* gy,
                                    const float* gamma, const float* mean, const float* rstd,
                                    float* gx, float* ggamma, float* gbeta) {
  throw std::logic_error("gpu layernorm_backward: not written yet");
}
void GpuBackend::softmax_forward(int rows, int d, const float* x, float* y) {
  throw std::logic_error("gpu softmax_forward: not written yet");
}
void GpuBackend::softmax_backward(int rows, int d, const float* y, const float* gy, float* gx) {
  throw std::logic_error("gpu softmax_backward: not written yet");
}
void GpuBackend::cross_entropy_forward(int rows, int classes, const float* logits,
                                       const int32_t* labels, float smoothing, float* loss,
                                       float* lse) {
  throw std::logic_error("gpu cross_entropy_forward: not written yet");
}
void GpuBackend::cross_entropy_backward(int rows, int classes, const float* logits,
                                        const int32_t* labels, float smoothing, const float* lse,
                                        const float* gloss, float* glogits) {
  throw std::logic_error("gpu cross_entropy_backward: not written yet");
}
void GpuBackend::dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed) {
  throw std::logic_error("gpu dropout_forward: not written yet");
}
void GpuBackend::dropout_backward(const float* gy, float* gx, int64_t n, float p, uint64_t seed) {
  throw std::logic_error("gpu dropout_backward: not written yet");
}
void GpuBackend::adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr,
                           float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                           int step) {
  throw std::logic_error("gpu adam_step: not written yet");
}
void GpuBackend::sgd_step(int64_t n, float* p, const float* g, float* buf, float lr, float momentum,
                          float weight_decay, bool nesterov) {
  throw std::logic_error("gpu sgd_step: not written yet");
}
}  // namespace forge::FORGE_GPU_NS
