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
//   eval backward (the running statistics are constants, invstd = 1 / sqrt(running_var + eps)):
//              gbeta = sum gy,  ggamma = sum gy xhat,  gx = gamma invstd gy
// Softmax over the last dimension of [rows, d]: y = exp(x - max) / sum exp(x - max) (the maximum
// keeps exp <= 1); backward gx = y (gy - sum_j gy_j y_j).
//
// Launch shapes:
//  - rows (layer norm, softmax): one warp per row, 8 rows per 256-thread block (launch_utils.cuh),
//    statistics through warp_sum / warp_max;
//  - layer-norm ggamma/gbeta: column sums over the rows, cut into slabs over about 1,056 blocks
//    of 32 columns x 8 row phases, the last block of each column tile adding the slabs' partials
//    in a fixed order (slab_reduce.cuh); these blocks follow gx's row blocks in the same launch;
//  - batch-norm statistics and backward sums: each channel's N values cut into slabs over about
//    1,056 blocks in all, the channel's last block combining the slabs in a fixed order
//    (slab_reduce.cuh); the walk over a channel's values divides by nothing in its loop;
//  - the batch-norm affine map and the backward's gx: one thread per element, grid-stride, the
//    channel from two precomputed divisions (fast_divmod.cuh).
// Statistics are float sums (a serial share of N / 256 terms, then a tree); scalar per-channel
// arithmetic (invstd, running statistics) is in double, as the CPU does it.
#include <algorithm>
#include <cmath>

#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_impl.h"
#include "kernels/kernel_util.cuh"
#include "kernels/slab_reduce.cuh"

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
// buys anything): blocks [0, row_blocks(rows)) write gx, a warp per row; the column-sum blocks
// after them write ggamma and gbeta.
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

// ggamma = sum_rows gy xhat and gbeta = sum_rows gy as column sums over many blocks
// (slab_reduce.cuh): blocks [input_blocks, input_blocks + s.blocks()) of the launch.
__global__ void layernorm_backward_kernel(int rows, int d, int input_blocks, ColumnSlabs s,
                                          const float* x, const float* gy, const float* gamma,
                                          const float* mean, const float* rstd, float* gx,
                                          float* ggamma, float* gbeta, bool accumulate_gx,
                                          float* partials, unsigned* tickets) {
  if (int(blockIdx.x) < input_blocks) {  // uniform per block
    layernorm_input_grad_rows(rows, d, x, gy, gamma, mean, rstd, gx, accumulate_gx);
    return;
  }
  float* const outs[2] = {ggamma, gbeta};
  column_slab_sums<2>(
      s, unsigned(blockIdx.x) - unsigned(input_blocks),
      [&](int64_t r, int64_t col, float(&acc)[2]) {
        const int64_t at = r * d + col;
        acc[0] += gy[at] * ((x[at] - mean[r]) * rstd[r]);
        acc[1] += gy[at];
      },
      partials, tickets, outs);
}

// ---- batch norm -----------------------------------------------------------------------------

// Batch-norm statistics over many blocks a channel (slab_reduce.cuh's channel slabs): each block
// takes the mean and the sum of squared deviations M2 of its slab's n_s values (two passes over
// the slab: no E[x^2] - E[x]^2 cancellation), and the channel's last block combines the slabs in
// slab order (Chan, Golub and LeVeque's pairwise update, summed):
//   mean = sum_s n_s mean_s / N,   M2 = sum_s (M2_s + n_s (mean_s - mean)^2),   var = M2 / N.
__global__ void batchnorm_stats_kernel(ChannelSlabs s, const float* x, const float* gamma,
                                       const float* beta, float eps, float momentum,
                                       float* save_mean, float* save_invstd, float* running_mean,
                                       float* running_var, float* scale, float* shift,
                                       float* partials, unsigned* tickets) {
  const int64_t ch = blockIdx.x / unsigned(s.slabs);
  const int slab = int(blockIdx.x % unsigned(s.slabs));
  const auto slab_count = [&](int64_t k) {  // n_s: every slab is full but the last
    return float(k + 1 < s.slabs ? s.slab_len : s.count - k * s.slab_len);
  };
  float sum = 0.f;
  for_each_slab_value(s, ch, slab, [&](int64_t at) { sum += x[at]; });
  float mu = block_sum(sum) / slab_count(slab);
  float squares = 0.f;
  for_each_slab_value(s, ch, slab, [&](int64_t at) {
    const float dev = x[at] - mu;
    squares += dev * dev;
  });
  float m2 = block_sum(squares);
  if (s.slabs > 1) {
    float* mine = partials + (ch * s.slabs + slab) * 2;
    if (threadIdx.x == 0) {
      mine[0] = mu;
      mine[1] = m2;
    }
    if (!last_block_of_group(tickets + ch, s.slabs)) return;
    const volatile float* p = partials + ch * s.slabs * 2;
    float weighted = 0.f;
    for (int k = int(threadIdx.x); k < s.slabs; k += int(blockDim.x))
      weighted += slab_count(k) * p[2 * k];
    mu = block_sum(weighted) / float(s.count);
    float spread = 0.f;
    for (int k = int(threadIdx.x); k < s.slabs; k += int(blockDim.x)) {
      const float dev = p[2 * k] - mu;
      spread += p[2 * k + 1] + slab_count(k) * dev * dev;
    }
    m2 = block_sum(spread);
  }
  if (threadIdx.x == 0) {
    const double var = double(m2) / double(s.count);
    const double invstd = 1.0 / sqrt(var + eps);
    const double unbias = s.count > 1 ? double(s.count) / double(s.count - 1) : 1.0;
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

// Element i of [n, c, hw] is in channel (i / hw) % c: two precomputed divisions (fast_divmod.cuh),
// in 32 bits below 2^31 elements.
template <class Word>
struct ChannelOf {
  FastDivmod<Word> hw, c;
  __device__ __forceinline__ int operator()(int64_t i) const {
    Word samples_channels, position, sample, channel;
    hw.divmod(Word(i), samples_channels, position);
    c.divmod(samples_channels, sample, channel);
    return int(channel);
  }
};

template <class Word>
__global__ void channel_affine_kernel(int64_t total, ChannelOf<Word> channel_of, const float* x,
                                      const float* scale, const float* shift, float* y) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int ch = channel_of(i);
    y[i] = x[i] * scale[ch] + shift[ch];
  }
}

// gx = gamma invstd (gy - gbeta / N - xhat ggamma / N) at one element of channel ch.
__device__ __forceinline__ void batchnorm_input_grad_at(int64_t i, int64_t ch, int64_t count,
                                                        const float* x, const float* gy,
                                                        const float* gamma, const float* save_mean,
                                                        const float* save_invstd,
                                                        const float* ggamma, const float* gbeta,
                                                        float* gx) {
  const float mu = save_mean[ch], invstd = save_invstd[ch];
  const float a = gamma[ch] * invstd, mean_gy = gbeta[ch] / count,
              mean_gy_xhat = ggamma[ch] / count;
  gx[i] = a * (gy[i] - mean_gy - (x[i] - mu) * invstd * mean_gy_xhat);
}

// The backward's channel sums gbeta = sum gy, ggamma = sum gy xhat over many blocks a channel.
// With one slab a channel the block holds its whole channel and writes gx too (one launch in
// all); with more, gx waits for batchnorm_input_grad_kernel.
__global__ void batchnorm_backward_sums_kernel(ChannelSlabs s, const float* x, const float* gy,
                                               const float* gamma, const float* save_mean,
                                               const float* save_invstd, float* ggamma,
                                               float* gbeta, float* gx, float* partials,
                                               unsigned* tickets) {
  const int64_t ch = blockIdx.x / unsigned(s.slabs);
  const float mu = save_mean[ch], invstd = save_invstd[ch];
  float* const outs[2] = {gbeta, ggamma};
  channel_slab_sums<2>(
      s, blockIdx.x,
      [&](int64_t at, float(&acc)[2]) {
        acc[0] += gy[at];
        acc[1] += gy[at] * ((x[at] - mu) * invstd);
      },
      partials, tickets, outs);
  if (s.slabs > 1) return;  // uniform: every block of the launch
  __syncthreads();          // thread 0's gbeta[ch], ggamma[ch] for every thread of the block
  for_each_slab_value(s, ch, 0, [&](int64_t at) {
    batchnorm_input_grad_at(at, ch, s.count, x, gy, gamma, save_mean, save_invstd, ggamma, gbeta,
                            gx);
  });
}

// gx over every element once all channel sums are done (more than one slab a channel).
template <class Word>
__global__ void batchnorm_input_grad_kernel(int64_t total, int64_t count,
                                            ChannelOf<Word> channel_of, const float* x,
                                            const float* gy, const float* gamma,
                                            const float* save_mean, const float* save_invstd,
                                            const float* ggamma, const float* gbeta, float* gx) {
  for (int64_t i = grid_first(); i < total; i += grid_stride())
    batchnorm_input_grad_at(i, channel_of(i), count, x, gy, gamma, save_mean, save_invstd, ggamma,
                            gbeta, gx);
}

// The eval backward in one launch: gx needs no channel sum, so each block writes its slab's gx
// as it sums gbeta and ggamma over the same values (channel slabs, as the training backward).
__global__ void batchnorm_backward_eval_kernel(ChannelSlabs s, const float* x, const float* gy,
                                               const float* gamma, const float* running_mean,
                                               const float* running_var, float eps, float* ggamma,
                                               float* gbeta, float* gx, float* partials,
                                               unsigned* tickets) {
  const int64_t ch = blockIdx.x / unsigned(s.slabs);
  const float invstd = float(1.0 / sqrt(double(running_var[ch]) + eps));
  const float mean = running_mean[ch], a = gamma[ch] * invstd;
  float* const outs[2] = {gbeta, ggamma};
  channel_slab_sums<2>(
      s, blockIdx.x,
      [&](int64_t at, float(&acc)[2]) {
        const float g = gy[at];
        acc[0] += g;
        acc[1] += g * ((x[at] - mean) * invstd);
        gx[at] = g * a;
      },
      partials, tickets, outs);
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
  const ColumnSlabs s = column_slabs(rows, d);
  DeviceScratch partials(*this, s.slabs > 1 ? 2 * int64_t(s.slabs) * d : 0);
  unsigned* tickets = impl_->tickets.get(*this, size_t(s.col_blocks));
  FORGE_LAUNCH(layernorm_backward_kernel, dim3(unsigned(input_blocks) + s.blocks()),
               dim3(kBlockThreads), 0, kStream, rows, d, input_blocks, s, x, gy, gamma, mean, rstd,
               gx, ggamma, gbeta, accumulate_gx, partials.data(), tickets);
  FORGE_CHECK_LAUNCH("layernorm_backward_kernel");
}

// y = x scale[ch] + shift[ch] over [n, c, hw], one thread per element.
static void launch_channel_affine(int n, int c, int hw, const float* x, const float* scale,
                                  const float* shift, float* y) {
  const int64_t total = int64_t(n) * c * hw;
  with_index_word(total, [&](auto word) {
    using Word = decltype(word);
    const ChannelOf<Word> channel_of{FastDivmod<Word>(std::max(hw, 1)), FastDivmod<Word>(c)};
    FORGE_LAUNCH(channel_affine_kernel<Word>, dim3(grid_blocks(total)), dim3(kBlockThreads), 0,
                 kStream, total, channel_of, x, scale, shift, y);
  });
  FORGE_CHECK_LAUNCH("channel_affine_kernel");
}

// Scale and shift per channel: 2c floats of scratch, [scale | shift]; the slabs' (mean, M2)
// pairs: 2 c slabs more.
void GpuBackend::batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* y,
                                         float* save_mean, float* save_invstd, float* running_mean,
                                         float* running_var) {
  if (c == 0) return;
  const ChannelSlabs s = channel_slabs(n, c, hw);
  DeviceScratch affine(*this, 2 * int64_t(c));
  DeviceScratch partials(*this, s.slabs > 1 ? 2 * int64_t(c) * s.slabs : 0);
  unsigned* tickets = impl_->tickets.get(*this, size_t(c));
  FORGE_LAUNCH(batchnorm_stats_kernel, dim3(s.blocks()), dim3(kBlockThreads), 0, kStream, s, x,
               gamma, beta, eps, momentum, save_mean, save_invstd, running_mean, running_var,
               affine.data(), affine.data() + c, partials.data(), tickets);
  FORGE_CHECK_LAUNCH("batchnorm_stats_kernel");
  launch_channel_affine(n, c, hw, x, affine.data(), affine.data() + c, y);
}

void GpuBackend::batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y) {
  if (c == 0) return;
  DeviceScratch affine(*this, 2 * int64_t(c));
  FORGE_LAUNCH(batchnorm_eval_scale_kernel, dim3(grid_blocks(c)), dim3(kBlockThreads), 0, kStream,
               c, gamma, beta, running_mean, running_var, eps, affine.data(), affine.data() + c);
  FORGE_CHECK_LAUNCH("batchnorm_eval_scale_kernel");
  launch_channel_affine(n, c, hw, x, affine.data(), affine.data() + c, y);
}

// The channel sums over many blocks a channel, then gx from them: two launches, or one where a
// channel is one slab (its block writes gx itself).
void GpuBackend::batchnorm_backward(int n, int c, int hw, const float* x, const float* gy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* gx, float* ggamma,
                                    float* gbeta) {
  if (c == 0) return;
  const ChannelSlabs s = channel_slabs(n, c, hw);
  DeviceScratch partials(*this, s.slabs > 1 ? 2 * int64_t(c) * s.slabs : 0);
  unsigned* tickets = impl_->tickets.get(*this, size_t(c));
  FORGE_LAUNCH(batchnorm_backward_sums_kernel, dim3(s.blocks()), dim3(kBlockThreads), 0, kStream, s,
               x, gy, gamma, save_mean, save_invstd, ggamma, gbeta, gx, partials.data(), tickets);
  FORGE_CHECK_LAUNCH("batchnorm_backward_sums_kernel");
  const int64_t total = int64_t(n) * c * hw;
  if (s.slabs == 1 || total == 0) return;
  with_index_word(total, [&](auto word) {
    using Word = decltype(word);
    const ChannelOf<Word> channel_of{FastDivmod<Word>(hw), FastDivmod<Word>(c)};
    FORGE_LAUNCH(batchnorm_input_grad_kernel<Word>, dim3(grid_blocks(total)), dim3(kBlockThreads),
                 0, kStream, total, s.count, channel_of, x, gy, gamma, save_mean, save_invstd,
                 ggamma, gbeta, gx);
  });
  FORGE_CHECK_LAUNCH("batchnorm_input_grad_kernel");
}

void GpuBackend::batchnorm_backward_eval(int n, int c, int hw, const float* x, const float* gy,
                                         const float* gamma, const float* running_mean,
                                         const float* running_var, float eps, float* gx,
                                         float* ggamma, float* gbeta) {
  if (c == 0) return;
  const ChannelSlabs s = channel_slabs(n, c, hw);
  DeviceScratch partials(*this, s.slabs > 1 ? 2 * int64_t(c) * s.slabs : 0);
  unsigned* tickets = impl_->tickets.get(*this, size_t(c));
  FORGE_LAUNCH(batchnorm_backward_eval_kernel, dim3(s.blocks()), dim3(kBlockThreads), 0, kStream, s,
               x, gy, gamma, running_mean, running_var, eps, ggamma, gbeta, gx, partials.data(),
               tickets);
  FORGE_CHECK_LAUNCH("batchnorm_backward_eval_kernel");
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
