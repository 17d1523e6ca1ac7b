// norm.cpp: CPU batch norm (per channel over n and h*w), layer norm and softmax (per row over the
// last dimension), forward and backward.
//
// Statistics are accumulated in double, mean first and then the squared deviations from it (two
// passes): the one-pass E[x^2] - E[x]^2 cancels catastrophically when |mean| >> std, and a float
// accumulator over the 10^5 elements of a batch-norm channel would lose about 10^5 * eps_f32 of
// relative precision. Each OpenMP iteration owns whole channels or rows, so results do not depend
// on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace forge {

namespace {

// Mean and biased variance of one batch-norm channel: the n runs of hw contiguous elements at
// x + (i * c + ch) * hw.
struct Moments {
  double mean, var;
};
Moments channel_moments(int n, int c, int hw, int ch, const float* x) {
  const double count = double(n) * hw;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) {
    const float* row = x + (int64_t(i) * c + ch) * hw;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < hw; ++j) sum += row[j];
  }
  const double mean = sum / count;
  double squares = 0.0;
  for (int i = 0; i < n; ++i) {
    const float* row = x + (int64_t(i) * c + ch) * hw;
#pragma omp simd reduction(+ : squares)
    for (int j = 0; j < hw; ++j) squares += (row[j] - mean) * (row[j] - mean);
  }
  return {mean, squares / count};
}

// y = x * scale[ch] + shift[ch] over x [n, c, hw]: both batch-norm forwards reduce to this affine
// map once the statistics are folded into scale = gamma / std and shift = beta - mean * scale.
void channel_affine(int n, int c, int hw, const float* x, const float* scale, const float* shift,
                    float* y) {
  const int64_t rows = int64_t(n) * c;
#pragma omp parallel for if (rows * hw > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const float a = scale[r % c], b = shift[r % c];
    const float* xr = x + r * hw;
    float* yr = y + r * hw;
#pragma omp simd
    for (int j = 0; j < hw; ++j) yr[j] = xr[j] * a + b;
  }
}

// Mean and reciprocal standard deviation of one row of d elements.
void row_moments(int d, const float* x, float eps, float* mean, float* rstd) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < d; ++j) sum += x[j];
  const double mu = sum / d;
  double squares = 0.0;
#pragma omp simd reduction(+ : squares)
  for (int j = 0; j < d; ++j) squares += (x[j] - mu) * (x[j] - mu);
  *mean = float(mu);
  *rstd = float(1.0 / std::sqrt(squares / d + eps));
}

}  // namespace

// Training forward: per channel, over the N = n * hw values,
//   mean = sum x / N,  var = sum (x - mean)^2 / N,  y = gamma (x - mean) / sqrt(var + eps) + beta
// and, like PyTorch, the running variance tracks the unbiased estimate var * N / (N - 1).
void CpuBackend::batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                                         const float* beta, float eps, float momentum, float* y,
                                         float* save_mean, float* save_invstd, float* running_mean,
                                         float* running_var) {
  const int64_t count = int64_t(n) * hw;
  const double unbias = count > 1 ? double(count) / double(count - 1) : 1.0;
  std::vector<float> scale(c), shift(c);
#pragma omp parallel for if (count * c > 32768)
  for (int ch = 0; ch < c; ++ch) {
    const Moments m = channel_moments(n, c, hw, ch, x);
    const double invstd = 1.0 / std::sqrt(m.var + eps);
    save_mean[ch] = float(m.mean);
    save_invstd[ch] = float(invstd);
    scale[ch] = float(gamma[ch] * invstd);
    shift[ch] = float(beta[ch] - m.mean * gamma[ch] * invstd);
    running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + momentum * m.mean);
    running_var[ch] = float((1.0 - momentum) * running_var[ch] + momentum * m.var * unbias);
  }
  channel_affine(n, c, hw, x, scale.data(), shift.data(), y);
}

// Eval forward: the same affine map with the running statistics in place of the batch's.
void CpuBackend::batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma,
                                        const float* beta, const float* running_mean,
                                        const float* running_var, float eps, float* y) {
  std::vector<float> scale(c), shift(c);
  for (int ch = 0; ch < c; ++ch) {
    const double invstd = 1.0 / std::sqrt(double(running_var[ch]) + eps);
    scale[ch] = float(gamma[ch] * invstd);
    shift[ch] = float(beta[ch] - running_mean[ch] * gamma[ch] * invstd);
  }
  channel_affine(n, c, hw, x, scale.data(), shift.data(), y);
}

// Backward of the training forward. With xhat = (x - mean) invstd and y = gamma xhat + beta,
// per channel over its N values:
//   gbeta = sum gy,   ggamma = sum gy xhat,   dL/dxhat = gamma gy
// mean and invstd depend on every x of the channel: d mean / dx_i = 1/N and
// d invstd / dx_i = -invstd^3 (x_i - mean) / N, so
//   dxhat_j / dx_i = invstd (delta_ij - 1/N - xhat_i xhat_j / N)
// and summing gamma gy_j over j:
//   gx_i = gamma invstd / N * (N gy_i - sum gy - xhat_i sum gy xhat).
void CpuBackend::batchnorm_backward(int n, int c, int hw, const float* x, const float* gy,
                                    const float* gamma, const float* save_mean,
                                    const float* save_invstd, float* gx, float* ggamma,
                                    float* gbeta) {
  const double count = double(n) * hw;
#pragma omp parallel for if (count * c > 32768)
  for (int ch = 0; ch < c; ++ch) {
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    double sum_gy = 0.0, sum_gy_xhat = 0.0;
    for (int i = 0; i < n; ++i) {
      const int64_t at = (int64_t(i) * c + ch) * hw;
#pragma omp simd reduction(+ : sum_gy, sum_gy_xhat)
      for (int j = 0; j < hw; ++j) {
        sum_gy += gy[at + j];
        sum_gy_xhat += double(gy[at + j]) * ((x[at + j] - mean) * invstd);
      }
    }
    gbeta[ch] = float(sum_gy);
    ggamma[ch] = float(sum_gy_xhat);
    const float a = gamma[ch] * invstd, mean_gy = float(sum_gy / count),
                mean_gy_xhat = float(sum_gy_xhat / count);
    for (int i = 0; i < n; ++i) {
      const int64_t at = (int64_t(i) * c + ch) * hw;
#pragma omp simd
      for (int j = 0; j < hw; ++j) {
        const float xhat = (x[at + j] - mean) * invstd;
        gx[at + j] = a * (gy[at + j] - mean_gy - xhat * mean_gy_xhat);
      }
    }
  }
}

// Backward of the eval forward (engine/backend.h): the statistics are constants, so gx is the
// forward's per-channel scale applied to gy, and the parameter sums take the same single pass.
void CpuBackend::batchnorm_backward_eval(int n, int c, int hw, const float* x, const float* gy,
                                         const float* gamma, const float* running_mean,
                                         const float* running_var, float eps, float* gx,
                                         float* ggamma, float* gbeta) {
#pragma omp parallel for if (int64_t(n) * hw * c > 32768)
  for (int ch = 0; ch < c; ++ch) {
    const float invstd = float(1.0 / std::sqrt(double(running_var[ch]) + eps));
    const float mean = running_mean[ch], a = gamma[ch] * invstd;
    double sum_gy = 0.0, sum_gy_xhat = 0.0;
    for (int i = 0; i < n; ++i) {
      const int64_t at = (int64_t(i) * c + ch) * hw;
#pragma omp simd reduction(+ : sum_gy, sum_gy_xhat)
      for (int j = 0; j < hw; ++j) {
        const float g = gy[at + j];
        sum_gy += g;
        sum_gy_xhat += double(g) * ((x[at + j] - mean) * invstd);
        gx[at + j] = g * a;
      }
    }
    gbeta[ch] = float(sum_gy);
    ggamma[ch] = float(sum_gy_xhat);
  }
}

// y = gamma (x - mean) rstd + beta per row of d, rstd = 1 / sqrt(var + eps), var biased.
void CpuBackend::layernorm_forward(int rows, int d, const float* x, const float* gamma,
                                   const float* beta, float eps, float* y, float* mean,
                                   float* rstd) {
#pragma omp parallel for if (int64_t(rows) * d > 32768)
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + int64_t(r) * d;
    float* yr = y + int64_t(r) * d;
    row_moments(d, xr, eps, &mean[r], &rstd[r]);
    const float mu = mean[r], s = rstd[r];
#pragma omp simd
    for (int j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * s * gamma[j] + beta[j];
  }
}

// Backward of layer norm, the batch-norm derivation with the statistics taken over a row: with
// xhat = (x - mean) rstd and g = gamma gy (the gradient reaching xhat),
//   gx = rstd (g - mean_j g - xhat mean_j (g xhat)),
//   ggamma = sum over rows of gy xhat,   gbeta = sum over rows of gy.
// The parameter gradients sum over rows; to stay deterministic whatever the thread count, rows
// are cut into a fixed number of blocks, each with its own double partial sums, added in order.
void CpuBackend::layernorm_backward(int rows, int d, const float* x, const float* gy,
                                    const float* gamma, const float* mean, const float* rstd,
                                    float* gx, float* ggamma, float* gbeta, bool accumulate_gx) {
  const int blocks = std::max(1, std::min(rows, 64));
  std::vector<double> partial(size_t(blocks) * 2 * d, 0.0);
#pragma omp parallel for if (int64_t(rows) * d > 32768)
  for (int b = 0; b < blocks; ++b) {
    double* pgamma = partial.data() + size_t(b) * 2 * d;
    double* pbeta = pgamma + d;
    // Accumulating, a row's gradient is rounded before the sum, exactly as autograd's axpy did.
    std::vector<float> row_gx(accumulate_gx ? d : 0);
    const int r0 = int(int64_t(rows) * b / blocks), r1 = int(int64_t(rows) * (b + 1) / blocks);
    for (int r = r0; r < r1; ++r) {
      const float* xr = x + int64_t(r) * d;
      const float* gr = gy + int64_t(r) * d;
      float* gxr = accumulate_gx ? row_gx.data() : gx + int64_t(r) * d;
      const float mu = mean[r], s = rstd[r];
      double sum_g = 0.0, sum_g_xhat = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_g_xhat)
      for (int j = 0; j < d; ++j) {
        const float xhat = (xr[j] - mu) * s, g = gamma[j] * gr[j];
        sum_g += g;
        sum_g_xhat += double(g) * xhat;
        pgamma[j] += double(gr[j]) * xhat;
        pbeta[j] += gr[j];
      }
      const float mean_g = float(sum_g / d), mean_g_xhat = float(sum_g_xhat / d);
#pragma omp simd
      for (int j = 0; j < d; ++j) {
        const float xhat = (xr[j] - mu) * s;
        gxr[j] = s * (gamma[j] * gr[j] - mean_g - xhat * mean_g_xhat);
      }
      if (accumulate_gx) {
        float* out = gx + int64_t(r) * d;
#pragma omp simd
        for (int j = 0; j < d; ++j) out[j] += gxr[j];
      }
    }
  }
  for (int j = 0; j < d; ++j) {
    double sum_gamma = 0.0, sum_beta = 0.0;
    for (int b = 0; b < blocks; ++b) {
      sum_gamma += partial[size_t(b) * 2 * d + j];
      sum_beta += partial[size_t(b) * 2 * d + d + j];
    }
    ggamma[j] = float(sum_gamma);
    gbeta[j] = float(sum_beta);
  }
}

// y = exp(x - max) / sum exp(x - max) per row: subtracting the row maximum keeps exp() <= 1, so
// it cannot overflow, and does not change the quotient.
void CpuBackend::softmax_forward(int rows, int d, const float* x, float* y) {
#pragma omp parallel for if (int64_t(rows) * d > 32768)
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + int64_t(r) * d;
    float* yr = y + int64_t(r) * d;
    const float max = *std::max_element(xr, xr + d);
    double total = 0.0;
    for (int j = 0; j < d; ++j) {
      yr[j] = std::exp(xr[j] - max);
      total += yr[j];
    }
    const float inv = float(1.0 / total);
#pragma omp simd
    for (int j = 0; j < d; ++j) yr[j] *= inv;
  }
}

// dy_i / dx_j = y_i (delta_ij - y_j), so gx_j = sum_i gy_i y_i (delta_ij - y_j)
//                                            = y_j (gy_j - sum_i gy_i y_i).
void CpuBackend::softmax_backward(int rows, int d, const float* y, const float* gy, float* gx) {
#pragma omp parallel for if (int64_t(rows) * d > 32768)
  for (int r = 0; r < rows; ++r) {
    const float* yr = y + int64_t(r) * d;
    const float* gr = gy + int64_t(r) * d;
    float* gxr = gx + int64_t(r) * d;
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < d; ++j) dot += double(gr[j]) * yr[j];
    const float dotf = float(dot);
#pragma omp simd
    for (int j = 0; j < d; ++j) gxr[j] = yr[j] * (gr[j] - dotf);
  }
}

}  // namespace forge
