// gradcheck.h: finite-difference gradient checking for the engine's tests.
//
// For a function f of some input tensors, the scalar L = sum_i f(x)_i * r_i with fixed random
// weights r touches every output component. Its analytic gradient comes from backward(); the
// numerical one from central differences,
//   dL/dx_j ~ (L(x + h e_j) - L(x - h e_j)) / 2h,
// whose truncation error is O(h^2 |L'''|) and whose float32 rounding error is about
// eps_f32 * |L| / h (eps_f32 = 1.2e-7). With h = 1e-2 and |L| of order 1-10 both stay near
// 1e-4 .. 1e-3, so the default tolerance |analytic - numeric| <= atol + rtol |numeric| uses
// atol = 2e-3, rtol = 2e-2. Functions with kinks (ReLU, max) must keep inputs away from them.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/tensor.h"

namespace forge::testing {

struct GradcheckOptions {
  float step = 1e-2f;
  float atol = 2e-3f;
  float rtol = 2e-2f;
  uint64_t seed = 1234;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// L = sum(f(xs) * r), computed in double on the host.
inline double weighted_sum(const Tensor& y, const std::vector<float>& r) {
  std::vector<float> v = y.to_vector();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += double(v[i]) * r[i];
  return s;
}

// Checks backward() of f against central differences for every element of every input that
// requires a gradient. Inputs must be leaves on the CPU or sim device.
inline void check_gradients(const TensorFn& f, std::vector<Tensor> xs,
                            const GradcheckOptions& opt = {}) {
  for (Tensor& x : xs) x.zero_grad();
  Tensor y = f(xs);
  Generator gen(opt.seed);
  std::vector<float> r(y.numel());
  for (float& v : r) v = static_cast<float>(gen.uniform() * 2.0 - 1.0);
  Tensor rt = Tensor::from_vector(r, y.shape(), y.device());
  sum(mul(y, rt)).backward();

  for (size_t k = 0; k < xs.size(); ++k) {
    if (!xs[k].requires_grad()) continue;
    REQUIRE_MESSAGE(xs[k].grad().defined(), "input " << k << " received no gradient");
    std::vector<float> analytic = xs[k].grad().to_vector();
    std::vector<float> values = xs[k].to_vector();
    for (size_t j = 0; j < values.size(); ++j) {
      NoGradGuard no_grad;
      auto eval_at = [&](float v) {
        std::vector<float> moved = values;
        moved[j] = v;
        std::vector<Tensor> ys = xs;
        ys[k] = Tensor::from_vector(moved, xs[k].shape(), xs[k].device());
        return weighted_sum(f(ys), r);
      };
      const double numeric =
          (eval_at(values[j] + opt.step) - eval_at(values[j] - opt.step)) / (2.0 * opt.step);
      const double err = std::fabs(analytic[j] - numeric);
      CHECK_MESSAGE(err <= opt.atol + opt.rtol * std::fabs(numeric),
                    "input " << k << " element " << j << ": analytic " << analytic[j] << " numeric "
                             << numeric);
    }
  }
}

// Max |a - b| over two equally long vectors.
inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// A leaf tensor of the given shape with values uniform in [lo, hi), requiring a gradient.
inline Tensor leaf(const Shape& shape, Generator& gen, float lo = -1.f, float hi = 1.f,
                   Device device = Device::cpu) {
  Tensor t = Tensor::uniform(shape, gen, lo, hi, device);
  t.requires_grad_();
  return t;
}

}  // namespace forge::testing
