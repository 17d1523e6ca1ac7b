// optim.cu: optimizer steps, one thread per element in grid-stride loops (grid = min(ceil(n / 256),
// 4096) blocks of 256). Adam takes every parameter in one launch: the grid walks the concatenation
// of all tensors (multi_tensor.cuh), each entry carrying its own bias corrections; SGD one tensor
// a launch. The state (m, v or the momentum buffer) is updated in place; nothing else is kept.
//
//   Adam (decoupled = false), step t:  g' = g + wd p,  m = b1 m + (1 - b1) g',
//     v = b2 v + (1 - b2) g'^2,  p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   AdamW (decoupled = true): g' = g and p is first shrunk: p = (1 - lr wd) p
//   SGD: g' = g + wd p,  buf = momentum buf + g',  p -= lr (nesterov ? g' + momentum buf : buf)
// The learning rate and the bias corrections are read from the step values in device memory
// (engine/cuda/step_values.h), so that a replayed CUDA graph uses the replayed step's: t is the
// entry's t - optimizer_steps plus the block's optimizer_steps, and 1 - b^t is computed once per
// entry a thread enters, with powf as the CPU backend's std::pow(float, float), and 1 - lr wd
// likewise, so both backends evaluate the same float expressions.
#include <cmath>
#include <vector>

#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_impl.h"
#include "kernels/multi_tensor.cuh"

namespace forge::FORGE_GPU_NS {

// One tensor of the list, as the kernels read it.
struct AdamEntry {
  float* p;
  const float* g;
  float *m, *v;
  int64_t n, start;
  int64_t t_offset;  // this tensor's step t minus the step values' optimizer_steps
};

__global__ void adam_kernel(const AdamEntry* table, int count, int64_t total, LrArg lr_arg,
                            const DeviceStepValues* values, float beta1, float beta2, float eps,
                            float l2, float weight_decay, bool decoupled) {
  const float lr = lr_arg.get();
  const float shrink = decoupled ? 1.f - lr * weight_decay : 1.f;  // AdamW: decay of p itself
  int k = -1;
  float bc1 = 1.f, bc2 = 1.f;  // 1 - beta1^t, 1 - beta2^t for entry k's step t
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int entered = entry_of(table, count, e, k);
    const AdamEntry& a = table[entered];
    if (entered != k) {
      const float t = float(a.t_offset + values->optimizer_steps);
      bc1 = 1.f - powf(beta1, t);
      bc2 = 1.f - powf(beta2, t);
      k = entered;
    }
    const int64_t i = e - a.start;
    const float gi = a.g[i] + l2 * a.p[i];
    const float mi = beta1 * a.m[i] + (1.f - beta1) * gi;
    const float vi = beta2 * a.v[i] + (1.f - beta2) * gi * gi;
    a.m[i] = mi;
    a.v[i] = vi;
    a.p[i] = shrink * a.p[i] - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
  }
}

// The EMA of a model's weights (train/model_ema.h), every tensor in one launch as Adam:
//   average = decay * average + (1 - decay) * w
// with decay * average rounded on its own (__fmul_rn: never contracted into an FMA), so each
// element rounds as the scale kernel and then axpy's `y += alpha x` did when the update took two
// launches a tensor. One tensor of the list, as the kernel reads it:
struct EmaEntry {
  float* average;
  const float* model;
  int64_t n, start;
};

__global__ void ema_kernel(const EmaEntry* table, int count, int64_t total, float decay,
                           float weight) {
  int k = -1;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    k = entry_of(table, count, e, k);
    const EmaEntry& t = table[k];
    const int64_t i = e - t.start;
    t.average[i] = __fmul_rn(decay, t.average[i]) + weight * t.model[i];
  }
}

__global__ void sgd_kernel(int64_t n, float* p, const float* g, float* buf, LrArg lr_arg,
                           float momentum, float weight_decay, bool nesterov) {
  const float lr = lr_arg.get();
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const float gi = g[i] + weight_decay * p[i];
    const float bi = momentum * buf[i] + gi;
    buf[i] = bi;
    p[i] -= lr * (nesterov ? gi + momentum * bi : bi);
  }
}

void GpuBackend::adam_step(const AdamTensor* tensors, int count, float lr, float beta1, float beta2,
                           float eps, float weight_decay, bool decoupled) {
  if (count == 0) return;
  StepValuesBlock& step_values = impl_->step_values;
  const int64_t optimizer_steps = step_values.host().optimizer_steps;
  std::vector<AdamEntry> entries;
  for (int k = 0; k < count; ++k) {
    const AdamTensor& t = tensors[k];
    entries.push_back({t.p, t.g, t.m, t.v, t.n, 0, t.step - optimizer_steps});
  }
  DeviceTable<AdamEntry> table(*this, entries);
  if (table.total() == 0) return;
  const float l2 = decoupled ? 0.f : weight_decay;  // Adam: decay through the gradient
  FORGE_LAUNCH(adam_kernel, dim3(grid_blocks(table.total())), dim3(kBlockThreads), 0, kStream,
               table.data(), count, table.total(), step_values.lr(*this, lr),
               step_values.device(*this), beta1, beta2, eps, l2, weight_decay, decoupled);
  FORGE_CHECK_LAUNCH("adam_kernel");
}

void GpuBackend::sgd_step(int64_t n, float* p, const float* g, float* buf, float lr, float momentum,
                          float weight_decay, bool nesterov) {
  FORGE_LAUNCH(sgd_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, n, p, g, buf,
               impl_->step_values.lr(*this, lr), momentum, weight_decay, nesterov);
  FORGE_CHECK_LAUNCH("sgd_kernel");
}

void GpuBackend::ema_update(const EmaTensor* tensors, int count, float decay) {
  if (count == 0) return;
  std::vector<EmaEntry> entries;
  for (int k = 0; k < count; ++k)
    entries.push_back({tensors[k].average, tensors[k].model, tensors[k].n, 0});
  DeviceTable<EmaEntry> table(*this, entries);
  if (table.total() == 0) return;
  FORGE_LAUNCH(ema_kernel, dim3(grid_blocks(table.total())), dim3(kBlockThreads), 0, kStream,
               table.data(), count, table.total(), decay, 1.f - decay);
  FORGE_CHECK_LAUNCH("ema_kernel");
}

}  // namespace forge::FORGE_GPU_NS
