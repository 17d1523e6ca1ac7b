// optim.cpp: CPU optimizer steps, one pass over each parameter tensor of the list (the update rules
// are written out in engine/backend.h).
#include <cmath>

#include "engine/cpu/cpu_backend.h"

namespace forge {

void CpuBackend::adam_step(const AdamTensor* tensors, int count, float lr, float beta1, float beta2,
                           float eps, float weight_decay, bool decoupled) {
  const float l2 = decoupled ? 0.f : weight_decay;
  const float shrink = decoupled ? 1.f - lr * weight_decay : 1.f;
  for (int t = 0; t < count; ++t) {
    const AdamTensor& a = tensors[t];
    const float bc1 = 1.f - std::pow(beta1, float(a.step));
    const float bc2 = 1.f - std::pow(beta2, float(a.step));
    float *p = a.p, *m = a.m, *v = a.v;
    const float* g = a.g;
#pragma omp parallel for simd if (a.n > 32768)
    for (int64_t i = 0; i < a.n; ++i) {
      const float gi = g[i] + l2 * p[i];
      m[i] = beta1 * m[i] + (1.f - beta1) * gi;
      v[i] = beta2 * v[i] + (1.f - beta2) * gi * gi;
      p[i] = shrink * p[i] - lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + eps);
    }
  }
}

void CpuBackend::sgd_step(int64_t n, float* p, const float* g, float* buf, float lr, float momentum,
                          float weight_decay, bool nesterov) {
#pragma omp parallel for simd if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] + weight_decay * p[i];
    buf[i] = momentum * buf[i] + gi;
    p[i] -= lr * (nesterov ? gi + momentum * buf[i] : buf[i]);
  }
}

// The two passes the update was before it became one call (unary scale, then axpy), so the
// average rounds exactly as before whatever FMA contraction the compiler applies to a fused loop.
void CpuBackend::ema_update(const EmaTensor* tensors, int count, float decay) {
  for (int t = 0; t < count; ++t) {
    const EmaTensor& e = tensors[t];
    unary(UnaryOp::scale, e.average, e.average, e.n, decay);
    axpy(1.f - decay, e.model, e.average, e.n);
  }
}

}  // namespace forge
