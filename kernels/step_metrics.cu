// step_metrics.cu: a training pass's running figures, kept on the device so that a training step
// needs no transfer (engine/backend.h accumulate_step_metrics; train/step_metrics.h reads them):
//   correct = #{r : argmax_c z_rc = label_r}   (the first maximum: strict >, as std::max_element)
//   sums[0] += rows * loss,  sums[1] += correct,  sums[2] = loss,
//   sums[3] = step if loss is not finite and no earlier step's was (sums[3] < 0).
// One block of 256 threads: a thread per row in a block-stride loop (a batch has at most a few
// hundred rows), the count by block_sum (exact: integers below 2^24), thread 0 updates the sums.
// The step comes from the step values in device memory when it is theirs (engine/cuda/
// step_values.h: a replayed CUDA graph names its own step). One launch a step; the sums are
// doubles, so an epoch's loss adds up as it did on the host.
#include <cmath>

#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_impl.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

__global__ void step_metrics_kernel(int rows, int classes, const float* logits,
                                    const int32_t* labels, const float* loss, StepArg step,
                                    double* sums) {
  float correct = 0.f;
  for (int r = threadIdx.x; r < rows; r += blockDim.x) {
    const float* z = logits + int64_t(r) * classes;
    int best = 0;
    for (int c = 1; c < classes; ++c)
      if (z[c] > z[best]) best = c;
    correct += best == labels[r] ? 1.f : 0.f;
  }
  correct = block_sum(correct);
  if (threadIdx.x == 0) {
    const float l = loss[0];
    sums[0] += double(rows) * l;
    sums[1] += double(correct);
    sums[2] = l;
    if (!isfinite(l) && sums[3] < 0) sums[3] = double(step.get());
  }
}

void GpuBackend::accumulate_step_metrics(int rows, int classes, const float* logits,
                                         const int32_t* labels, const float* loss, int64_t step,
                                         double* sums) {
  FORGE_LAUNCH(step_metrics_kernel, dim3(1), dim3(kBlockThreads), 0, kStream, rows, classes, logits,
               labels, loss, impl_->step_values.step(*this, step), sums);
  FORGE_CHECK_LAUNCH("step_metrics_kernel");
}

}  // namespace forge::FORGE_GPU_NS
