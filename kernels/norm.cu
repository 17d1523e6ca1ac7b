// norm.cu: layer norm, batch norm and softmax, forward and backward.
//
// Layer norm over the last dimension d of x [rows, d]:
//   mean = sum x / d,  var = sum (x - mean)^2 / d (two passes: no E[x^2] - E[x]^2 cancellation),
//   rstd = 1 / sqrt(var + eps),  xhat = (x - mean) rstd,  y = gamma xhat + beta
//   saved for backward: mean, rstd [rows]
//   backward, g = gamma gy:  gx (+)= rstd (g - mean_j g - xhat mean_j (g xhat)),
//                            ggamma = sum_rows gy xhat,  gbeta = sum_rows gy
// Batch norm over x [n, c, hw] per channel, N = n hw values each; training uses the batch's mean
// and biased variance, saves mean and invstd, and moves the running statistics toward the batch's
// (running_var toward the unbiased var N / (N - 1)); eval uses the running statistics. Both fold
// the statistics into y = x scale[ch] + shift[ch], scale = gamma invstd, shift = beta - mean scale.
//   backward:  gbeta = sum gy,  ggamma = sum gy xhat,
//              gx = gamma invstd (gy - gbeta / N - xhat ggamma / N)
// Softmax over the last dimension of [rows, d]: y = exp(x - max) / sum exp(x - max) (the maximum
// keeps exp <= 1); backward gx = y (gy - sum_j gy_j y_j).
//
// Launch shapes:
//  - rows (layer norm, softmax): one warp per row, 8 rows per 256-thread block (launch_utils.cuh),
//    statistics through warp_sum / warp_max;
//  - layer-norm ggamma/gbeta: a column reduction over rows, blocks of 32 columns x 8 row phases:
//    thread (j, p) sums rows p, p + 8, ... of column j (a warp reads 32 neighbouring columns), then
//    the 8 phases are added in order through shared memory; these blocks follow gx's row blocks
//    in the same launch;
//  - batch-norm statistics and backward: one 256-thread block per channel, block_sum;
//  - the batch-norm affine map: one thread per element, grid-stride.
// Statistics are float sums (a serial share of N / 256 terms, then a tree); scalar per-channel
// arithmetic (invstd, running statistics) is in double, as the CPU does it.
#include <cmath>

#include "engine/cuda/gpu_backend.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

// ---- layer norm -----------------------------------------------------------------------------

__global__ void layernorm_forward_kernel(int rows, int d, const float* x, const float* gamma,
                                         const float* beta, float eps, float* y, float* mean,
                                         float* rstd) {
  const int lane = lane_id(), row = warp_row();
  if (row >= rows) return;  // whole warps leave together
  const float* xr = x + int64_t(row) * d;
  float sum = 0.f;
  for (int j = lane; j < d; j += kWarp) sum += xr[j];
  const float mu = warp_sum(sum) / d;
  float squares = 0.f;
  for (int j = lane; j < d; j += kWarp) squares += (xr[j] - mu) * (xr[j] - mu);
  const float s = 1.f / sqrtf(warp_sum(squares) / d + eps);  // not rsqrtf: that one is approximate
  float* yr = y + int64_t(row) * d;
  for (int j = lane; j < d; j += kWarp) yr[j] = (xr[j] - mu) * s * gamma[j] + beta[j];
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = s;
  }
}

// The backward is one launch of two independent kinds of block (no kernel boundary between them
// buys anything): blocks [0, row_blocks(rows)) write gx, a warp per row; the col_blocks after them
// write ggamma and gbeta, kParamCols columns each.
__device__ __forceinline__ void layernorm_input_grad_rows(int rows, int d, const float* x,
                                                          const float* gy, const float* gamma,
                                                          const float* mean, const float* rstd,
                                                          float* gx, bool accumulate) {
  const int lane = lane_id(), row = warp_row();
  if (row >= rows) return;
  const int64_t at = int64_t(row) * d;
  const float mu = mean[row], s = rstd[row];
  float sum_g = 0.f, sum_g_xhat = 0.f;
  for (int j = lane; j < d; j += kWarp) {
    const float g = gamma[j] * gy[at + j];
    sum_g += g;
    sum_g_xhat += g * ((x[at + j] - mu) * s);
  }
  const float mean_g = warp_sum(sum_g) / d, mean_g_xhat = warp_sum(sum_g_xhat) / d;
  for (int j = lane; j < d; j += kWarp) {
    const float xhat = (x[at + j] - mu) * s;
    const float value = s * (gamma[j] * gy[at + j] - mean_g - xhat * mean_g_xhat);
    gx[at + j] = accumulate ? gx[at + j] + value : value;
  }
}

constexpr int kParamCols = 32, kRowPhases = kBlockThreads / kParamCols;

// Thread (j, p) = (threadIdx.x % 32, threadIdx.x / 32) sums rows p, p + 8, ... of column j.
__device__ __forceinline__ void layernorm_param_grad_columns(int col_block, int rows, int d,
                                                             const float* x, const float* gy,
                                                             const float* mean, const float* rstd,
                                                             float* ggamma, float* gbeta) {
  __shared__ float gamma_part[kRowPhases][kParamCols + 1];  // +1: no bank conflicts on reads
  __shared__ float beta_part[kRowPhases][kParamCols + 1];
  const int lane = int(threadIdx.x) % kParamCols, phase = int(threadIdx.x) / kParamCols;
  const int col = col_block * kParamCols + lane;
  float sum_gamma = 0.f, sum_beta = 0.f;
  if (col < d) {  // no early return: every thread must reach __syncthreads
    for (int r = phase; r < rows; r += kRowPhases) {
      const int64_t at = int64_t(r) * d + col;
      sum_gamma += gy[at] * ((x[at] - mean[r]) * rstd[r]);
      sum_beta += gy[at];
    }
  }
  gamma_part[phase][lane] = sum_gamma;
  beta_part[phase][lane] = sum_beta;
  __syncthreads();
  if (phase == 0 && col < d) {
    for (int p = 1; p < kRowPhases; ++p) {
      sum_gamma += gamma_part[p][lane];
      sum_beta += beta_part[p][lane];
    }
    ggamma[col] = sum_gamma;
    gbeta[col] = sum_beta;
  }
}

__global__ void layernorm_backward_kernel(int rows, int d, int input_blocks, const float* x,
                                          const float* gy, const float* gamma, const float* mean,
                                          const float* rstd, float* gx, float* ggamma, float* gbeta,
                                          bool accumulate_gx) {
  if (int(blockIdx.x) < input_blocks)  // uniform per block
    layernorm_input_grad_rows(rows, d, x, gy, gamma, mean, rstd, gx, accumulate_gx);
  else
    layernorm_param_grad_columns(int(blockIdx.x) - input_blocks, rows, d, x, gy, mean, rstd, ggamma,
                                 gbeta);
}

// ---- batch norm -----------------------------------------------------------------------------

// Element i of channel ch's N = n hw values (sample i / hw, position i % hw).
__device__ __forceinline__ int64_t channel_at(int c, int hw, int ch, int64_t i) {
  return ((i / hw) * c + ch) * hw + i % hw;
}

__global__ void batchnorm_stats_kernel(int n, int c, int hw, const float* x, const float* gamma,
                                       const float* beta, float eps, float momentum,
                                       float* save_mean, float* save_invstd, float* running_mean,
                                       float* running_var, float* scale, float* shift) {
  const int ch = blockIdx.x;
  const int64_t count = int64_t(n) * hw;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += x[channel_at(c, hw, ch, i)];
  const float mu = block_sum(sum) / count;
  float squares = 0.f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const float dev = x[channel_at(c, hw, ch, i)] - mu;
    squares += dev * dev;
  }
  const double var = double(block_sum(squares)) / count;
  if (threadIdx.x == 0) {
    const double invstd = 1.0 / sqrt(var + eps);
    const double unbias = count > 1 ? double(count) / double(count - 1) : 1.0;
    save_mean[ch] = mu;
    save_invstd[ch] = float(invstd);
    scale[ch] = float(gamma[ch] * invstd);
    shift[ch] = float(beta[ch] - double(mu) * gamma[ch] * invstd);
    running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + momentum * double(mu));
    running_var[ch] = float((1.0 - momentum) * running_var[ch] + momentum * var * unbias);
  }
}

__global__ void batchnorm_eval_scale_kernel(int c, const float* gamma, const float* beta,
                                            const float* running_mean, const float* running_var,
                                            float eps, float* scale, float* shift) {
  for (int64_t ch = grid_first(); ch < c; ch += grid_stride()) {
    const double invstd = 1.0 / sqrt(double(running_var[ch]) + eps);
    scale[ch] = float(gamma[ch] * invstd);
    shift[ch] = float(beta[ch] - running_mean[ch] * gamma[ch] * invstd);
  }
}

__global__ void channel_affine_kernel(int n, int c, int hw, const float* x, const float* scale,
                                      const float* shift, float* y) {
  const int64_t total = int64_t(n) * c * hw;
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int ch = int((i / hw) % c);
    y[i] = x[i] * scale[ch] + shift[ch];
  }
}

__global__ void batchnorm_backward_kernel(int n, int c, int hw, const float* x, const float* gy,
                                          const float* gamma, const float* save_mean,
                                          const float* save_invstd, float* gx, float* ggamma,
                                          float* gbeta) {
  const int ch = blockIdx.x;
  const int64_t count = int64_t(n) * hw;
  const float mu = save_mean[ch], invstd = save_invstd[ch];
  float sum_gy = 0.f, sum_gy_xhat = 0.f;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const int64_t at = channel_at(c, hw, ch, i);
    sum_gy += gy[at];
    sum_gy_xhat += gy[at] * ((x[at] - mu) * invstd);
  }
  sum_gy = block_sum(sum_gy);
  sum_gy_xhat = block_sum(sum_gy_xhat);
  if (threadIdx.x == 0) {
    gbeta[ch] = sum_gy;
    ggamma[ch] = sum_gy_xhat;
  }
  const float a = gamma[ch] * invstd, mean_gy = sum_gy / count, mean_gy_xhat = sum_gy_xhat / count;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const int64_t at = channel_at(c, hw, ch, i);
    gx[at] = a * (gy[at] - mean_gy - (x[at] - mu) * invstd * mean_gy_xhat);
  }
}

// ---- softmax --------------------------------------------------------------------------------

__global__ void softmax_forward_kernel(int rows, int d, const float* x, float* y) {
  const int lane = lane_id(), row = warp_row();
  if (row >= rows) return;
  const float* xr = x + int64_t(row) * d;
  float* yr = y + int64_t(row) * d;
  float max = -INFINITY;
  for (int j = lane; j < d; j += kWarp) max = fmaxf(max, xr[j]);
  max = warp_max(max);
  float total = 0.f;
  for (int j = lane; j < d; j += kWarp) {
    yr[j] = expf(xr[j] - max);  // each lane rereads only its own elements below: no race
    total += yr[j];
  }
  const float inv = 1.f / warp_sum(total);
  for (int j = lane; j < d; j += kWarp) yr[j] *= inv;
}

__global__ void softmax_backward_kernel(int rows, int d, const float* y, const float* gy,
                                        float* gx) {
  const int lane = lane_id(), row = warp_row();
  if (row >= rows) return;
  const int64_t at = int64_t(row) * d;
  float dot = 0.f;
  for (int j = lane; j < d; j += kWarp) dot += gy[at + j] * y[at + j];
  dot = warp_sum(dot);
  for (int j = lane; j < d; j += kWarp) gx[at + j] = y[at + j] * (gy[at + j] - dot);
}

// ---- launchers ------------------------------------------------------------------------------

void GpuBackend::layernorm_forward(int rows, int d, const float* x, const float* gamma,
                                   const float* beta, float eps, float* y, float* mean,
                                   float* rstd) {
  if (rows == 0 || d == 0) return;  // nothing to normalise (and d = 0 has no mean)
  FORGE_LAUNCH(layernorm_forward_kernel, dim3(row_blocks(rows)), dim3(kBlockThreads), 0, kStream,
               rows, d, x, gamma, beta, eps, y, mean, rstd);
  FORGE_CHECK_LAUNCH("layernorm_forward_kernel");
}

void GpuBackend::layernorm_backward(int rows, int d, const float* x, const float* gy,
                                    const float* gamma, const float* mean, const float* rstd,
                                    float* gx, float* ggamma, float* gbeta, bool accumulate_gx) {
  // d = 0: no column, so no gradient to write (and an empty grid is invalid on a GPU).
  if (d == 0) return;
  const int input_blocks = int(row_blocks(rows));  // 0 without rows: only the parameter sums
  const unsigned col_blocks = unsigned((d + kParamCols - 1) / kParamCols);
  FORGE_LAUNCH(layernorm_backward_kernel, dim3(unsigned(input_blocks) + col_blocks),
               dim3(kBlockThreads), 0, kStream, rows, d, input_blocks, x, gy, gamma, mean, rstd, gx,
               ggamma, gbeta, accumulate_gx);
  FORGE_CHECK_LAUNCH("layernorm_backward_kernel");
}

// Scale and shift per channel: 2c floats of scratch, [scale | shift].
void GpuBackend::batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* y,
                                         float* save_mean, float* save_invstd, float* running_mean,
                                         float* running_var) {
  if (c == 0) return;
  DeviceScratch affine(*this, 2 * int64_t(c));
  FORGE_LAUNCH(batchnorm_stats_kernel, dim3(c), dim3(kBlockThreads), 0, kStream, n, c, hw, x, gamma,
               beta, eps, momentum, save_mean, save_invstd, running_mean, running_var,
               affine.data(), affine.data() + c);
  FORGE_CHECK_LAUNCH("batchnorm_stats_kernel");
  const int64_t total = int64_t(n) * c * hw;
  FORGE_LAUNCH(channel_affine_kernel, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream, n,
               c, hw, x, affine.data(), affine.data() + c, y);
  FORGE_CHECK_LAUNCH("channel_affine_kernel");
}

void GpuBackend::batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y) {
  if (c == 0) return;
  DeviceScratch affine(*this, 2 * int64_t(c));
  FORGE_LAUNCH(batchnorm_eval_scale_kernel, dim3(grid_blocks(c)), dim3(kBlockThreads), 0, kStream,
               c, gamma, beta, running_mean, running_var, eps, affine.data(), affine.data() + c);
  FORGE_CHECK_LAUNCH("batchnorm_eval_scale_kernel");
  const int64_t total = int64_t(n) * c * hw;
  FORGE_LAUNCH(channel_affine_kernel, dim3(grid_blocks(total)), dim3(kBlockThreads), 0, kStream, n,
               c, hw, x, affine.data(), affine.data() + c, y);
  FORGE_CHECK_LAUNCH("channel_affine_kernel");
}

void GpuBackend::batchnorm_backward(int n, int c, int hw, const float* x, const float* gy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* gx, float* ggamma,
                                    float* gbeta) {
  if (c == 0) return;
  FORGE_LAUNCH(batchnorm_backward_kernel, dim3(c), dim3(kBlockThreads), 0, kStream, n, c, hw, x, gy,
               gamma, save_mean, save_invstd, gx, ggamma, gbeta);
  FORGE_CHECK_LAUNCH("batchnorm_backward_kernel");
}

void GpuBackend::softmax_forward(int rows, int d, const float* x, float* y) {
  if (rows == 0) return;
  FORGE_LAUNCH(softmax_forward_kernel, dim3(row_blocks(rows)), dim3(kBlockThreads), 0, kStream,
               rows, d, x, y);
  FORGE_CHECK_LAUNCH("softmax_forward_kernel");
}

void GpuBackend::softmax_backward(int rows, int d, const float* y, const float* gy, float* gx) {
  if (rows == 0) return;
  FORGE_LAUNCH(softmax_backward_kernel, dim3(row_blocks(rows)), dim3(kBlockThreads), 0, kStream,
               rows, d, y, gy, gx);
  FORGE_CHECK_LAUNCH("softmax_backward_kernel");
}

}  // namespace forge::FORGE_GPU_NS
