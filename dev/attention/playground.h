// playground.h: what main.cpp hands to the attention playground (attention_playground.cu), and
// the playground's entry point in each build of it: forge::gpu_sim (g++ against kernels/sim) and
// forge::gpu_cuda (nvcc), the same one-source, two-namespace scheme as the CUDA backend
// (docs/GPU_BACKEND.md).
#pragma once
#include <vector>

namespace forge::attention_playground {

struct Options {
  std::vector<int> versions;                           // which numbered versions to run (1 to 6)
  std::vector<int> batches, heads, tokens, head_dims;  // the grid of shapes: every combination
  int reps = 5;                                        // timed runs per shape; the median is shown
  bool check_only = false;  // check against the CPU reference, time nothing
  unsigned seed = 1;        // of the random q, k, v and dO
};

}  // namespace forge::attention_playground

namespace forge::gpu_sim {
// Runs the playground on this build's device; returns 0 when every check passed, 1 otherwise.
int run_attention_playground(const attention_playground::Options& options);
}  // namespace forge::gpu_sim

namespace forge::gpu_cuda {
int run_attention_playground(const attention_playground::Options& options);
}  // namespace forge::gpu_cuda
