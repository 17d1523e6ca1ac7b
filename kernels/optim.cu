// optim.cu: one optimizer step over one parameter tensor, one thread per element in grid-stride
// loops (grid = min(ceil(n / 256), 4096) blocks of 256). The state (m, v or the momentum buffer)
// is updated in place; nothing else is kept.
//
//   Adam (decoupled = false), step t:  g' = g + wd p,  m = b1 m + (1 - b1) g',
//     v = b2 v + (1 - b2) g'^2,  p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   AdamW (decoupled = true): g' = g and p is first shrunk: p = (1 - lr wd) p
//   SGD: g' = g + wd p,  buf = momentum buf + g',  p -= lr (nesterov ? g' + momentum buf : buf)
// The bias corrections 1 - b^t are computed once on the host, as the CPU backend does, so both
// backends evaluate the same float expression per element.
#include <cmath>

#include "engine/cuda/gpu_backend.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

__global__ void adam_kernel(int64_t n, float* p, const float* g, float* m, float* v, float lr,
                            float beta1, float beta2, float eps, float l2, float shrink, float bc1,
                            float bc2) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float gi = g[i] + l2 * p[i];
    const float mi = beta1 * m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = shrink * p[i] - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
  }
}

__global__ void sgd_kernel(int64_t n, float* p, const float* g, float* buf, float lr,
                           float momentum, float weight_decay, bool nesterov) {
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float gi = g[i] + weight_decay * p[i];
    const float bi = momentum * buf[i] + gi;
    buf[i] = bi;
    p[i] -= lr * (nesterov ? gi + momentum * bi : bi);
  }
}

void GpuBackend::adam_step(int64_t n, float* p, const float* g, float* m, float* v, float lr,
                           float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                           int step) {
  const float bc1 = 1.f - std::pow(beta1, float(step));
  const float bc2 = 1.f - std::pow(beta2, float(step));
  const float l2 = decoupled ? 0.f : weight_decay;  // Adam: decay through the gradient
  const float shrink = decoupled ? 1.f - lr * weight_decay : 1.f;  // AdamW: decay of p itself
  FORGE_LAUNCH(adam_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, n, p, g, m, v,
               lr, beta1, beta2, eps, l2, shrink, bc1, bc2);
  FORGE_CHECK_LAUNCH("adam_kernel");
}

void GpuBackend::sgd_step(int64_t n, float* p, const float* g, float* buf, float lr, float momentum,
                          float weight_decay, bool nesterov) {
  FORGE_LAUNCH(sgd_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, n, p, g, buf, lr,
               momentum, weight_decay, nesterov);
  FORGE_CHECK_LAUNCH("sgd_kernel");
}

}  // namespace forge::FORGE_GPU_NS
