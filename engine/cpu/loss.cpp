// loss.cpp: CPU softmax cross-entropy with label smoothing, one row per sample.
//
// For logits z [classes] of one row, label y and smoothing s, with C classes:
//   target_c = (1 - s) [c = y] + s / C            (sums to 1)
//   lse      = m + log sum_c exp(z_c - m),  m = max_c z_c
//   loss     = -sum_c target_c log softmax_c = lse - sum_c target_c z_c
//            = lse - (1 - s) z_y - (s / C) sum_c z_c
// Backward: d lse / dz_c = softmax_c and d(sum target z)/dz_c = target_c, so
//   dL/dz_c = gloss (softmax_c - target_c),  softmax_c = exp(z_c - lse) from the saved lse.
// Labels are trusted here: the op (engine/ops/loss.cpp) checks them on the host.
#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_backend.h"

namespace forge {

void CpuBackend::cross_entropy_forward(int rows, int classes, const float* logits,
                                       const int32_t* labels, float smoothing, float* loss,
                                       float* lse) {
#pragma omp parallel for if (int64_t(rows) * classes > 32768)
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + int64_t(r) * classes;
    const float m = *std::max_element(z, z + classes);
    double exp_sum = 0.0, z_sum = 0.0;  // double: classes may be many, terms of mixed sign
    for (int c = 0; c < classes; ++c) {
      exp_sum += std::exp(double(z[c] - m));
      z_sum += z[c];
    }
    const double l = m + std::log(exp_sum);
    lse[r] = float(l);
    loss[r] = float(l - (1.0 - smoothing) * z[labels[r]] - smoothing * z_sum / classes);
  }
}

void CpuBackend::cross_entropy_backward(int rows, int classes, const float* logits,
                                        const int32_t* labels, float smoothing, const float* lse,
                                        const float* gloss, float* glogits) {
  const float off_target = smoothing / classes;
#pragma omp parallel for if (int64_t(rows) * classes > 32768)
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + int64_t(r) * classes;
    float* g = glogits + int64_t(r) * classes;
    const float l = lse[r], gr = gloss[r];
    for (int c = 0; c < classes; ++c) g[c] = gr * (std::exp(z[c] - l) - off_target);
    g[labels[r]] -= gr * (1.f - smoothing);
  }
}

}  // namespace forge
