// step_metrics.cpp: the CPU side of a training pass's running figures (engine/backend.h
// accumulate_step_metrics): the loss weighted by the batch, the rows whose first maximum logit is
// the label, the last loss and the first step whose loss was not finite.
#include <algorithm>
#include <cmath>

#include "engine/cpu/cpu_backend.h"

namespace forge {

void CpuBackend::accumulate_step_metrics(int rows, int classes, const float* logits,
                                         const int32_t* labels, const float* loss, int64_t step,
                                         double* sums) {
  long correct = 0;
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + int64_t(r) * classes;
    correct += std::max_element(z, z + classes) - z == labels[r];
  }
  sums[0] += double(rows) * loss[0];
  sums[1] += double(correct);
  sums[2] = loss[0];
  if (!std::isfinite(loss[0]) && sums[3] < 0) sums[3] = double(step);
}

}  // namespace forge
