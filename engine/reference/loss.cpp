// loss.cpp: GELU, softmax, and softmax cross-entropy with label smoothing, forward and backward,
// as loops (see reference.h). GELU is evaluated with the C library's erf, independently of the erfc
// fit the backends share (engine/gelu_math.h).
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/reference/reference.h"

namespace forge::reference {

// ---- GELU --------------------------------------------------------------------------------------
//   gelu(x) = x Phi(x),   Phi(x) = (1 + erf(x / sqrt 2)) / 2   (the standard normal CDF)

void gelu_forward(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = float(v * 0.5 * (1.0 + std::erf(v / std::sqrt(2.0))));  // x Phi(x)
  }
}

void gelu_backward(int64_t n, const float* x, const float* gy, float* gx) {
  const double inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * M_PI);
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    // In the forward pass this was y = x Phi(x), so now dy/dx = Phi(x) + x phi(x), with the
    // density phi(x) = exp(-x^2 / 2) / sqrt(2 pi) (= Phi'(x)), and gx = gy dy/dx.
    const double cdf = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
    const double pdf = std::exp(-0.5 * v * v) * inv_sqrt_2pi;
    gx[i] = float(gy[i] * (cdf + v * pdf));
  }
}

// ---- softmax
// -------------------------------------------------------------------------------------
//   y_c = exp(x_c - m) / sum_c' exp(x_c' - m),   m = max_c x_c   (the shift changes nothing but
//   keeps exp from overflowing)

void softmax_forward(int rows, int d, const float* x, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + size_t(r) * d;
    double m = -INFINITY, z = 0;
    for (int c = 0; c < d; ++c) m = std::max(m, double(xr[c]));
    for (int c = 0; c < d; ++c) z += std::exp(xr[c] - m);  // z = sum_c exp(x_c - m)
    for (int c = 0; c < d; ++c) y[size_t(r) * d + c] = float(std::exp(xr[c] - m) / z);
  }
}

void softmax_backward(int rows, int d, const float* x, const float* gy, float* gx) {
  std::vector<float> y(d);
  for (int r = 0; r < rows; ++r) {
    softmax_forward(1, d, x + size_t(r) * d, y.data());
    const float* g = gy + size_t(r) * d;
    // In the forward pass this was y_c = softmax_c(x), whose Jacobian is
    //   d y_c / d x_c' = y_c ([c == c'] - y_c'), so now
    //   gx_c' = sum_c gy_c y_c ([c == c'] - y_c') = y_c' (gy_c' - sum_c gy_c y_c)
    double dot = 0;
    for (int c = 0; c < d; ++c) dot += double(g[c]) * y[c];
    for (int c = 0; c < d; ++c) gx[size_t(r) * d + c] = float(y[c] * (g[c] - dot));
  }
}

// ---- softmax cross-entropy ---------------------------------------------------------------------
// For row r with logits z_c, label l, smoothing s and K classes:
//   target_c = (1 - s) [c == l] + s / K
//   loss_r = -sum_c target_c log softmax_c(z) = lse(z) - sum_c target_c z_c,
//   lse(z) = m + log sum_c exp(z_c - m),   m = max_c z_c   (sum_c target_c = 1)

static double log_sum_exp(int classes, const float* z) {
  double m = -INFINITY;
  for (int c = 0; c < classes; ++c) m = std::max(m, double(z[c]));
  double sum = 0;
  for (int c = 0; c < classes; ++c) sum += std::exp(z[c] - m);
  return m + std::log(sum);
}

static double target(int c, int label, int classes, float smoothing) {
  return (c == label ? 1.0 - smoothing : 0.0) + double(smoothing) / classes;
}

void cross_entropy_forward(int rows, int classes, const float* logits, const int32_t* labels,
                           float smoothing, float* loss) {
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + size_t(r) * classes;
    double dot = 0;  // sum_c target_c z_c
    for (int c = 0; c < classes; ++c) dot += target(c, labels[r], classes, smoothing) * z[c];
    loss[r] = float(log_sum_exp(classes, z) - dot);
  }
}

void cross_entropy_backward(int rows, int classes, const float* logits, const int32_t* labels,
                            float smoothing, const float* gloss, float* glogits) {
  for (int r = 0; r < rows; ++r) {
    const float* z = logits + size_t(r) * classes;
    const double lse = log_sum_exp(classes, z);
    // In the forward pass this was loss = lse(z) - sum_c target_c z_c, and d lse / d z_c is
    // exp(z_c - lse) = softmax_c, so now glogits_c = gloss (softmax_c - target_c).
    for (int c = 0; c < classes; ++c)
      glogits[size_t(r) * classes + c] =
          float(gloss[r] * (std::exp(z[c] - lse) - target(c, labels[r], classes, smoothing)));
  }
}

}  // namespace forge::reference
