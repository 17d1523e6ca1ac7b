// loss.cu: softmax cross-entropy with label smoothing s over logits z [rows, C], labels [rows].
//
//   target_c = (1 - s) [c = label] + s / C
//   lse      = m + log sum_c exp(z_c - m),  m = max_c z_c   (saved for backward)
//   loss     = lse - (1 - s) z_label - (s / C) sum_c z_c
//   backward: glogits_c = gloss (exp(z_c - lse) - s / C) - gloss (1 - s) [c = label]
//
// Forward: one warp per row, 8 rows per 256-thread block (grid = ceil(rows / 8)). The lanes stride
// over the classes (neighbouring lanes read neighbouring logits) and combine with warp_max and
// warp_sum (reduce_utils.cuh); lane 0 writes the row's loss and lse.
// Backward: one thread per logit in a grid-stride loop; the saved lse turns each into a softmax
// without another reduction.
// Labels are trusted here: the op (engine/ops/loss.cpp) checks them on the host.
#include <cmath>

#include "engine/cuda/gpu_backend.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

__global__ void cross_entropy_forward_kernel(int rows, int classes, const float* logits,
                                             const int32_t* labels, float smoothing, float* loss,
                                             float* lse) {
  const int lane = lane_id(), row = warp_row();
  if (row >= rows) return;  // whole warps leave together: no shuffle loses a lane
  const float* z = logits + int64_t(row) * classes;
  float m = -INFINITY;
  for (int c = lane; c < classes; c += kWarp) m = fmaxf(m, z[c]);
  m = warp_max(m);
  float exp_sum = 0.f, z_sum = 0.f;
  for (int c = lane; c < classes; c += kWarp) {
    exp_sum += expf(z[c] - m);
    z_sum += z[c];
  }
  exp_sum = warp_sum(exp_sum);
  z_sum = warp_sum(z_sum);
  if (lane == 0) {
    const float l = m + logf(exp_sum);
    lse[row] = l;
    loss[row] = l - (1.f - smoothing) * z[labels[row]] - smoothing * z_sum / classes;
  }
}

__global__ void cross_entropy_backward_kernel(int rows, int classes, const float* logits,
                                              const int32_t* labels, float smoothing,
                                              const float* lse, const float* gloss,
                                              float* glogits) {
  const int64_t n = int64_t(rows) * classes;
  const float off_target = smoothing / classes;
  for (int64_t i = grid_first(); i < n; i += grid_stride()) {
    const int row = int(i / classes), c = int(i % classes);
    const float gr = gloss[row];
    // Two roundings, in the CPU's order: the smoothed part for every class, then the label's.
    float g = gr * (expf(logits[i] - lse[row]) - off_target);
    if (c == labels[row]) g -= gr * (1.f - smoothing);
    glogits[i] = g;
  }
}

void GpuBackend::cross_entropy_forward(int rows, int classes, const float* logits,
                                       const int32_t* labels, float smoothing, float* loss,
                                       float* lse) {
  if (rows == 0) return;
  FORGE_LAUNCH(cross_entropy_forward_kernel, dim3(row_blocks(rows)), dim3(kBlockThreads), 0,
               kStream, rows, classes, logits, labels, smoothing, loss, lse);
  FORGE_CHECK_LAUNCH("cross_entropy_forward_kernel");
}

void GpuBackend::cross_entropy_backward(int rows, int classes, const float* logits,
                                        const int32_t* labels, float smoothing, const float* lse,
                                        const float* gloss, float* glogits) {
  const int64_t n = int64_t(rows) * classes;
  FORGE_LAUNCH(cross_entropy_backward_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream,
               rows, classes, logits, labels, smoothing, lse, gloss, glogits);
  FORGE_CHECK_LAUNCH("cross_entropy_backward_kernel");
}

}  // namespace forge::FORGE_GPU_NS
