// pending_cnn.cpp: TEMPORARY placeholders for conv, pooling and normalisation; each throws until
// its real file lands.
#include <stdexcept>

#include "engine/cpu/cpu_backend.h"

namespace forge {
void CpuBackend::conv2d_forward(const Conv2dDesc& d, const float* x, const float* w,
                                const float* bias, float* y) {
  throw std::logic_error("cpu conv2d_forward: not written yet");
}
void CpuBackend::conv2d_backward_data(const Conv2dDesc& d, const float* gy, const float* w,
                                      float* gx) {
  throw std::logic_error("cpu conv2d_backward_data: not written yet");
}
void CpuBackend::conv2d_backward_weight(const Conv2dDesc& d, const float* x, const float* gy,
                                        float* gw, float* gbias) {
  throw std::logic_error("cpu conv2d_backward_weight: not written yet");
}
void CpuBackend::batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* y,
                                         float* save_mean, float* save_invstd, float* running_mean,
                                         float* running_var) {
  throw std::logic_error("cpu batchnorm_forward_train: not written yet");
}
void CpuBackend::batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y) {
  throw std::logic_error("cpu batchnorm_forward_eval: not written yet");
}
void CpuBackend::batchnorm_backward(int n, int c, int hw, const float* x, const float* gy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* gx, float* ggamma,
                                    float* gbeta) {
  throw std::logic_error("cpu batchnorm_backward: not written yet");
}
void CpuBackend::layernorm_forward(int rows, int d, const float* x, const float* gamma,
                                   const float* beta, float eps, float* y, float* mean,
                                   float* rstd) {
  throw std::logic_error("cpu layernorm_forward: not written yet");
}
void CpuBackend::layernorm_backward(int rows, int d, const float* x, const float* gy,
                                    const float* gamma, const float* mean, const float* rstd,
                                    float* gx, float* ggamma, float* gbeta) {
  throw std::logic_error("cpu layernorm_backward: not written yet");
}
void CpuBackend::softmax_forward(int rows, int d, const float* x, float* y) {
  throw std::logic_error("cpu softmax_forward: not written yet");
}
void CpuBackend::softmax_backward(int rows, int d, const float* y, const float* gy, float* gx) {
  throw std::logic_error("cpu softmax_backward: not written yet");
}
void CpuBackend::maxpool2d_forward(const Pool2dDesc& d, const float* x, float* y, int32_t* argmax) {
  throw std::logic_error("cpu maxpool2d_forward: not written yet");
}
void CpuBackend::maxpool2d_backward(const Pool2dDesc& d, const float* gy, const int32_t* argmax,
                                    float* gx) {
  throw std::logic_error("cpu maxpool2d_backward: not written yet");
}
}  // namespace forge
