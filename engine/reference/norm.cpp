// norm.cpp: layer norm and batch norm (training mode), forward and backward, as loops (see
// reference.h). Both normalise a group of N values x_i the same way:
//   mu = (1/N) sum_i x_i,   var = (1/N) sum_i (x_i - mu)^2   (biased: the batch's own variance)
//   r = 1 / sqrt(var + eps),   xhat_i = (x_i - mu) r,   y_i = gamma xhat_i + beta
// Layer norm: a group is one row (N = d), gamma and beta are per column.
// Batch norm: a group is one channel over the batch and the pixels (N = n hw), gamma and beta
// per channel.
// The backward of one group, with gxhat_i = gamma gy_i: in the forward pass xhat_i depended on
// x_i directly and through mu and r, which depend on every x; working that through gives
//   gx_i = r (gxhat_i - mean_j(gxhat_j) - xhat_i mean_j(gxhat_j xhat_j))
#include <cmath>
#include <vector>

#include "engine/reference/reference.h"

namespace forge::reference {

namespace {

struct Stats {
  double mean, var, rstd;
};

// Mean, variance and 1 / sqrt(var + eps) of the N values x[offset(i)], i < N.
template <typename Offset>
Stats group_stats(const float* x, int64_t count, Offset offset, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += x[offset(i)];
  const double mean = sum / count;  // mu = (1/N) sum x_i
  double sq = 0;
  for (int64_t i = 0; i < count; ++i) sq += (x[offset(i)] - mean) * (x[offset(i)] - mean);
  const double var = sq / count;  // var = (1/N) sum (x_i - mu)^2
  return {mean, var, 1.0 / std::sqrt(var + eps)};
}

// Layer norm's group is one contiguous row: element i of the group is element i of the row.
int64_t in_row(int64_t i) {
  return i;
}

}  // namespace

void layernorm_forward(int rows, int d, const float* x, const float* gamma, const float* beta,
                       float eps, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * d;
    const Stats s = group_stats(xr, d, in_row, eps);
    for (int i = 0; i < d; ++i)  // y_i = gamma_i (x_i - mu) r + beta_i
      y[size_t(r) * d + i] = float(gamma[i] * ((xr[i] - s.mean) * s.rstd) + beta[i]);
  }
}

void layernorm_backward(int rows, int d, const float* x, const float* gy, const float* gamma,
                        float eps, float* gx, float* ggamma, float* gbeta) {
  std::vector<double> gg(d, 0.0), gb(d, 0.0);  // sums over the rows
  for (int r = 0; r < rows; ++r) {
    const float *xr = x + size_t(r) * d, *gyr = gy + size_t(r) * d;
    const Stats s = group_stats(xr, d, in_row, eps);
    // In the forward pass this was y_i = gamma_i xhat_i + beta_i, so now
    //   ggamma_i += gy_i xhat_i,  gbeta_i += gy_i,  gxhat_i = gamma_i gy_i
    double mean_g = 0, mean_gx = 0;  // mean_j(gxhat_j), mean_j(gxhat_j xhat_j)
    for (int i = 0; i < d; ++i) {
      const double xhat = (xr[i] - s.mean) * s.rstd, gxhat = double(gamma[i]) * gyr[i];
      gg[i] += gyr[i] * xhat;
      gb[i] += gyr[i];
      mean_g += gxhat / d;
      mean_gx += gxhat * xhat / d;
    }
    // and xhat_i = (x_i - mu) r, so gx_i = r (gxhat_i - mean(gxhat) - xhat_i mean(gxhat xhat))
    for (int i = 0; i < d; ++i) {
      const double xhat = (xr[i] - s.mean) * s.rstd, gxhat = double(gamma[i]) * gyr[i];
      gx[size_t(r) * d + i] = float(s.rstd * (gxhat - mean_g - xhat * mean_gx));
    }
  }
  for (int i = 0; i < d; ++i) {
    ggamma[i] = float(gg[i]);
    gbeta[i] = float(gb[i]);
  }
}

// x [n, c, hw]: element (b, ch, p) is at (b c + ch) hw + p; the group of channel ch runs over
// (b, p), flattened as i = b hw + p.
static size_t bn_index(int c, int hw, int ch, int64_t i) {
  const int64_t b = i / hw, p = i % hw;
  return size_t((b * c + ch) * hw + p);
}

void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* running_mean, float* running_var) {
  const int64_t count = int64_t(n) * hw;
  for (int ch = 0; ch < c; ++ch) {
    auto at = [&](int64_t i) { return bn_index(c, hw, ch, i); };
    const Stats s = group_stats(x, count, at, eps);
    for (int64_t i = 0; i < count; ++i)  // y_i = gamma (x_i - mu) r + beta
      y[at(i)] = float(gamma[ch] * ((x[at(i)] - s.mean) * s.rstd) + beta[ch]);
    // running = (1 - momentum) running + momentum batch, with the unbiased variance
    // var N / (N - 1), as PyTorch does.
    const double unbiased = count > 1 ? s.var * count / (count - 1) : s.var;
    running_mean[ch] = float((1.0 - momentum) * running_mean[ch] + momentum * s.mean);
    running_var[ch] = float((1.0 - momentum) * running_var[ch] + momentum * unbiased);
  }
}

void batchnorm_backward(int n, int c, int hw, const float* x, const float* gy, const float* gamma,
                        float eps, float* gx, float* ggamma, float* gbeta) {
  const int64_t count = int64_t(n) * hw;
  for (int ch = 0; ch < c; ++ch) {
    auto at = [&](int64_t i) { return bn_index(c, hw, ch, i); };
    const Stats s = group_stats(x, count, at, eps);
    // In the forward pass this was y_i = gamma xhat_i + beta, so now
    //   ggamma = sum_i gy_i xhat_i,  gbeta = sum_i gy_i,  gxhat_i = gamma gy_i
    double sum_gy = 0, sum_gy_xhat = 0;
    for (int64_t i = 0; i < count; ++i) {
      sum_gy += gy[at(i)];
      sum_gy_xhat += gy[at(i)] * ((x[at(i)] - s.mean) * s.rstd);
    }
    ggamma[ch] = float(sum_gy_xhat);
    gbeta[ch] = float(sum_gy);
    // and gx_i = r (gxhat_i - mean(gxhat) - xhat_i mean(gxhat xhat)), the means over the group
    const double mean_g = gamma[ch] * sum_gy / count, mean_gx = gamma[ch] * sum_gy_xhat / count;
    for (int64_t i = 0; i < count; ++i) {
      const double xhat = (x[at(i)] - s.mean) * s.rstd;
      gx[at(i)] = float(s.rstd * (double(gamma[ch]) * gy[at(i)] - mean_g - xhat * mean_gx));
    }
  }
}

void batchnorm_backward_eval(int n, int c, int hw, const float* x, const float* gy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* gx, float* ggamma,
                             float* gbeta) {
  const int64_t count = int64_t(n) * hw;
  for (int ch = 0; ch < c; ++ch) {
    auto at = [&](int64_t i) { return bn_index(c, hw, ch, i); };
    // y_i = gamma (x_i - rm) r + beta with r = 1 / sqrt(rv + eps) fixed, so
    //   gx_i = gamma r gy_i,  ggamma = sum_i gy_i (x_i - rm) r,  gbeta = sum_i gy_i
    const double r = 1.0 / std::sqrt(double(running_var[ch]) + eps);
    double sum_gy = 0, sum_gy_xhat = 0;
    for (int64_t i = 0; i < count; ++i) {
      sum_gy += gy[at(i)];
      sum_gy_xhat += gy[at(i)] * ((x[at(i)] - double(running_mean[ch])) * r);
      gx[at(i)] = float(double(gamma[ch]) * r * gy[at(i)]);
    }
    ggamma[ch] = float(sum_gy_xhat);
    gbeta[ch] = float(sum_gy);
  }
}

}  // namespace forge::reference
