// bf16_convert.cu: fp32 -> bf16 rounding kernels (see bf16_convert.h). One thread per output
// element in a grid-stride loop; in convert_op_to_bf16 consecutive threads write consecutive
// columns of op(X), so the writes coalesce and, for a transposed operand, the reads stride by ld.
#include "kernels/bf16_convert.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {
namespace {

__global__ void convert_to_bf16_kernel(const float* x, int64_t n, bf16* out) {
  for (int64_t e = grid_first(); e < n; e += grid_stride()) out[e] = float_to_bf16(x[e]);
}

__global__ void convert_op_to_bf16_kernel(bool trans, int rows, int cols, const float* x, int ld,
                                          int64_t stride, int64_t total, bf16* out) {
  const int64_t per_problem = int64_t(rows) * cols;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    const int64_t z = e / per_problem, i = e % per_problem / cols, j = e % cols;
    out[e] = float_to_bf16(x[z * stride + (trans ? j * ld + i : i * ld + j)]);
  }
}

}  // namespace

void convert_to_bf16(const float* x, int64_t n, bf16* out) {
  if (n <= 0) return;
  FORGE_LAUNCH(convert_to_bf16_kernel, dim3(grid_blocks(n)), dim3(kBlockThreads), 0, kStream, x, n,
               out);
  FORGE_CHECK_LAUNCH(convert_to_bf16_kernel);
}

void convert_op_to_bf16(bool trans, int rows, int cols, const float* x, int ld, int64_t stride,
                        int batch, bf16* out) {
  const int64_t total = int64_t(rows) * cols * batch;
  if (total <= 0) return;
  FORGE_LAUNCH(convert_op_to_bf16_kernel, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream,
               trans, rows, cols, x, ld, stride, total, out);
  FORGE_CHECK_LAUNCH(convert_op_to_bf16_kernel);
}

}  // namespace forge::FORGE_GPU_NS
