// test_ops_conv_norm.cpp: conv2d, max_pool2d, batch_norm2d, layer_norm and softmax: forward
// against naive loops written here, backward against finite differences (tests/engine/gradcheck.h
// states step and tolerance), batch-norm running statistics against hand computation, and the
// shape errors. Sizes are small and odd so that no index mix-up hides behind a square or a power
// of two.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/ops.h"
#include "tests/engine/gradcheck.h"

using namespace forge;
using namespace forge::testing;

namespace {

// Index of [a, b, c, d] in a row-major tensor of extents [*, B, C, D].
int64_t at4(int64_t a, int64_t b, int64_t c, int64_t d, int64_t B, int64_t C, int64_t D) {
  return ((a * B + b) * C + c) * D + d;
}

// Direct convolution in double, zero padding; bias may be empty.
std::vector<float> naive_conv2d(const Tensor& x, const Tensor& w, const std::vector<float>& bias,
                                int stride, int pad) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t k = w.size(0), r = w.size(2), s = w.size(3);
  const int64_t oh = (h + 2 * pad - r) / stride + 1, ow = (wd + 2 * pad - s) / stride + 1;
  const std::vector<float> xv = x.to_vector(), wv = w.to_vector();
  std::vector<float> y(n * k * oh * ow);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t o = 0; o < k; ++o)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = bias.empty() ? 0.0 : bias[o];
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t a = 0; a < r; ++a)
              for (int64_t e = 0; e < s; ++e) {
                const int64_t iy = i * stride - pad + a, ix = j * stride - pad + e;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += double(xv[at4(b, ci, iy, ix, c, h, wd)]) * wv[at4(o, ci, a, e, c, r, s)];
              }
          y[at4(b, o, i, j, k, oh, ow)] = float(acc);
        }
  return y;
}

// Max pooling with padding read as -infinity.
std::vector<float> naive_max_pool2d(const Tensor& x, int kernel, int stride, int pad) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = (h + 2 * pad - kernel) / stride + 1, ow = (w + 2 * pad - kernel) / stride + 1;
  const std::vector<float> xv = x.to_vector();
  std::vector<float> y;
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        float best = -std::numeric_limits<float>::infinity();
        for (int64_t a = 0; a < kernel; ++a)
          for (int64_t e = 0; e < kernel; ++e) {
            const int64_t iy = i * stride - pad + a, ix = j * stride - pad + e;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
              best = std::max(best, xv[(p * h + iy) * w + ix]);
          }
        y.push_back(best);
      }
  return y;
}

// Per-channel mean and biased variance of x [n, c, h, w], in double.
void naive_channel_moments(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  const std::vector<float> xv = x.to_vector();
  mean.assign(c, 0.0);
  var.assign(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) mean[ch] += xv[(b * c + ch) * hw + i];
    mean[ch] /= double(n * hw);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) {
        const double dev = xv[(b * c + ch) * hw + i] - mean[ch];
        var[ch] += dev * dev;
      }
    var[ch] /= double(n * hw);
  }
}

// y = gamma (x - mean) / sqrt(var + eps) + beta per channel of x [n, c, h, w].
std::vector<float> naive_batch_norm(const Tensor& x, const std::vector<double>& mean,
                                    const std::vector<double>& var, const Tensor& gamma,
                                    const Tensor& beta, float eps) {
  const int64_t c = x.size(1), hw = x.size(2) * x.size(3);
  const std::vector<float> xv = x.to_vector(), g = gamma.to_vector(), b = beta.to_vector();
  std::vector<float> y(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const int64_t ch = int64_t(i) / hw % c;
    y[i] = float(g[ch] * (xv[i] - mean[ch]) / std::sqrt(var[ch] + eps) + b[ch]);
  }
  return y;
}

// A leaf [n, c, h, w] whose values are a shuffled ladder -1 - 0.1 i plus noise in [0, 0.02):
// all distinct, at least 0.08 apart, so a finite-difference step of 0.01 never changes which
// element is a window's maximum; all negative, so zero padding instead of -inf would show.
Tensor distinct_negative_leaf(const Shape& shape, Generator& gen) {
  const int64_t count = shape_numel(shape);
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = count - 1; i > 0; --i)  // Fisher-Yates with the test's generator
    std::swap(order[i], order[int64_t(gen.uniform() * double(i + 1)) % (i + 1)]);
  std::vector<float> values(count);
  for (int64_t i = 0; i < count; ++i)
    values[i] = float(-1.0 - 0.1 * double(order[i]) + 0.02 * gen.uniform());
  Tensor t = Tensor::from_vector(values, shape);
  t.requires_grad_();
  return t;
}

}  // namespace

TEST_CASE("conv2d: forward matches a direct loop, gradients match finite differences") {
  Generator gen(11);
  Tensor x = leaf({2, 3, 7, 5}, gen), b = leaf({4}, gen);
  const std::vector<float> bv = b.to_vector();
  struct Case {
    int r, s, stride, pad;
  };
  for (Case cs : {Case{3, 3, 1, 0}, Case{3, 3, 1, 1}, Case{3, 3, 2, 0}, Case{3, 3, 2, 1},
                  Case{1, 1, 1, 0}, Case{3, 2, 2, 1}}) {
    CAPTURE(cs.r);
    CAPTURE(cs.s);
    CAPTURE(cs.stride);
    CAPTURE(cs.pad);
    Tensor w = leaf({4, 3, cs.r, cs.s}, gen);
    Tensor y = conv2d(x, w, b, cs.stride, cs.pad);
    const int64_t oh = (7 + 2 * cs.pad - cs.r) / cs.stride + 1;
    const int64_t ow = (5 + 2 * cs.pad - cs.s) / cs.stride + 1;
    REQUIRE(y.shape() == Shape{2, 4, oh, ow});
    // Sums of at most 27 products of values in [-1, 1]: float32 rounding stays below 1e-5.
    CHECK(max_abs_diff(y.to_vector(), naive_conv2d(x, w, bv, cs.stride, cs.pad)) < 1e-4f);
    // The same shape without bias (a separately cached primitive), and again (a cache hit).
    for (int repeat = 0; repeat < 2; ++repeat)
      CHECK(max_abs_diff(conv2d(x, w, Tensor(), cs.stride, cs.pad).to_vector(),
                         naive_conv2d(x, w, {}, cs.stride, cs.pad)) < 1e-4f);
    const int stride = cs.stride, pad = cs.pad;
    check_gradients([=](auto& t) { return conv2d(t[0], t[1], t[2], stride, pad); }, {x, w, b});
    check_gradients([=](auto& t) { return conv2d(t[0], t[1], Tensor(), stride, pad); }, {x, w});
  }
}

TEST_CASE("conv2d: skips the input gradient of data and rejects bad shapes") {
  Generator gen(12);
  Tensor image = Tensor::uniform({2, 3, 7, 5}, gen, -1.f, 1.f);  // data: no gradient wanted
  Tensor w = leaf({4, 3, 3, 3}, gen);
  sum(conv2d(image, w, Tensor(), 1, 1)).backward();
  CHECK(w.grad().defined());
  CHECK_FALSE(image.grad().defined());

  CHECK_THROWS_AS(conv2d(image, leaf({4, 2, 3, 3}, gen), Tensor(), 1, 0),
                  std::invalid_argument);  // channel mismatch
  CHECK_THROWS_AS(conv2d(image, leaf({4, 3, 9, 3}, gen), Tensor(), 1, 0),
                  std::invalid_argument);  // kernel taller than the padded input (7 + 0)
  CHECK_NOTHROW(conv2d(image, leaf({4, 3, 9, 3}, gen), Tensor(), 1, 1));           // 7 + 2 >= 9
  CHECK_THROWS_AS(conv2d(image, w, leaf({5}, gen), 1, 0), std::invalid_argument);  // bias
  CHECK_THROWS_AS(conv2d(image, w, Tensor(), 0, 0), std::invalid_argument);        // stride
  CHECK_THROWS_AS(conv2d(image.reshape({6, 7, 5}), w, Tensor(), 1, 0), std::invalid_argument);
}

TEST_CASE("max_pool2d: forward matches a loop with -inf padding, gradients route to the max") {
  Generator gen(13);
  Tensor x = distinct_negative_leaf({2, 3, 7, 5}, gen);
  struct Case {
    int kernel, stride, pad;
  };
  // Non-overlapping windows with a ragged edge, padded windows, and overlapping windows (one
  // input can be the maximum of several outputs: its gradient is their sum).
  for (Case cs : {Case{2, 2, 0}, Case{3, 2, 1}, Case{3, 1, 1}}) {
    CAPTURE(cs.kernel);
    CAPTURE(cs.stride);
    CAPTURE(cs.pad);
    Tensor y = max_pool2d(x, cs.kernel, cs.stride, cs.pad);
    const int64_t oh = (7 + 2 * cs.pad - cs.kernel) / cs.stride + 1;
    const int64_t ow = (5 + 2 * cs.pad - cs.kernel) / cs.stride + 1;
    REQUIRE(y.shape() == Shape{2, 3, oh, ow});
    CHECK(y.to_vector() == naive_max_pool2d(x, cs.kernel, cs.stride, cs.pad));  // exact: a copy
    check_gradients([=](auto& t) { return max_pool2d(t[0], cs.kernel, cs.stride, cs.pad); }, {x});
  }
  {
    INFO("ties keep the first maximum in row-major order, a NaN never wins (2x2 stride 2 and 3x3)");
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // window (0,0): all equal; (0,1): the later row wins by being larger; (1,0): a NaN first;
    // (1,1): equal pair in the second row.
    Tensor t = Tensor::from_vector({1, 1, 0, 0,    //
                                    1, 1, 0, 5,    //
                                    nan, 2, 3, 4,  //
                                    2, 1, 7, 7},
                                   {1, 1, 4, 4})
                   .requires_grad_();
    Tensor y = max_pool2d(t, 2, 2, 0);
    CHECK(y.to_vector() == std::vector<float>{1, 5, 2, 7});
    run_backward(y, Tensor::ones({1, 1, 2, 2}));
    CHECK(t.grad().to_vector() ==
          std::vector<float>{1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0});
  }
  CHECK_THROWS_AS(max_pool2d(x, 3, 1, 2), std::invalid_argument);  // pad > kernel / 2
  CHECK_THROWS_AS(max_pool2d(x, 8, 1, 0), std::invalid_argument);  // kernel > w = 5
}

TEST_CASE("batch_norm2d: training forward, running statistics and gradients") {
  Generator gen(14);
  Tensor x = leaf({2, 3, 5, 3}, gen, -1.f, 2.f), gamma = leaf({3}, gen, 0.5f, 1.5f),
         beta = leaf({3}, gen);
  const std::vector<float> rm0{0.5f, -0.25f, 1.f}, rv0{2.f, 0.5f, 1.f};
  Tensor rm = Tensor::from_vector(rm0, {3}), rv = Tensor::from_vector(rv0, {3});
  const float momentum = 0.1f, eps = 1e-5f;
  Tensor y = batch_norm2d(x, gamma, beta, rm, rv, true, momentum, eps);

  std::vector<double> mean, var;
  naive_channel_moments(x, mean, var);
  // |y| is a few units; float32 normalisation of 30 values rounds to ~1e-6 relative.
  CHECK(max_abs_diff(y.to_vector(), naive_batch_norm(x, mean, var, gamma, beta, eps)) < 1e-5f);
  // running = (1 - momentum) running + momentum batch, the variance unbiased: N = 2 * 5 * 3 = 30.
  const std::vector<float> rm1 = rm.to_vector(), rv1 = rv.to_vector();
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(rm1[ch] == doctest::Approx(0.9 * rm0[ch] + 0.1 * mean[ch]).epsilon(1e-6));
    CHECK(rv1[ch] == doctest::Approx(0.9 * rv0[ch] + 0.1 * var[ch] * 30.0 / 29.0).epsilon(1e-6));
  }
  // The loss weights r in check_gradients are random, so it is not invariant to the
  // normalisation (sum(y) alone would have gx == 0 identically).
  check_gradients(
      [&](auto& t) { return batch_norm2d(t[0], t[1], t[2], rm, rv, true, momentum, eps); },
      {x, gamma, beta});

  CHECK_THROWS_AS(batch_norm2d(x.slice(0, 0, 1).slice(2, 0, 1).slice(3, 0, 1), gamma, beta, rm, rv,
                               true, momentum, eps),
                  std::invalid_argument);  // one value per channel: no variance
  CHECK_THROWS_AS(batch_norm2d(x, leaf({4}, gen), beta, rm, rv, true, momentum, eps),
                  std::invalid_argument);
}

TEST_CASE("batch_norm2d: eval mode normalises with the running statistics, leaves them alone") {
  Generator gen(15);
  Tensor x = leaf({2, 3, 5, 3}, gen, -1.f, 2.f), gamma = leaf({3}, gen, 0.5f, 1.5f),
         beta = leaf({3}, gen);
  const std::vector<float> rm0{0.5f, -0.25f, 1.f}, rv0{2.f, 0.5f, 1.f};
  Tensor rm = Tensor::from_vector(rm0, {3}), rv = Tensor::from_vector(rv0, {3});
  const float eps = 1e-5f;
  Tensor y = batch_norm2d(x, gamma, beta, rm, rv, false, 0.1f, eps);
  const std::vector<double> mean(rm0.begin(), rm0.end()), var(rv0.begin(), rv0.end());
  CHECK(max_abs_diff(y.to_vector(), naive_batch_norm(x, mean, var, gamma, beta, eps)) < 1e-5f);
  CHECK(rm.to_vector() == rm0);
  CHECK(rv.to_vector() == rv0);
  check_gradients([&](auto& t) { return batch_norm2d(t[0], t[1], t[2], rm, rv, false, 0.1f, eps); },
                  {x, gamma, beta});
}

TEST_CASE("batch_norm2d: the fused eval backward equals the one composed from elementwise ops") {
  // The composition the fused primitive replaced: s = 1 / sqrt(rv + eps),
  //   gx = gy gamma s,  ggamma = sum_{n,h,w} gy (x - rm) s,  gbeta = sum_{n,h,w} gy
  Generator gen(27);
  Tensor x = leaf({3, 4, 7, 5}, gen, -1.f, 2.f), gamma = leaf({4}, gen, 0.5f, 1.5f),
         beta = leaf({4}, gen), gy = Tensor::randn({3, 4, 7, 5}, gen, 0.f, 1.f);
  Tensor rm = Tensor::from_vector({0.5f, -0.25f, 1.f, 0.f}, {4}),
         rv = Tensor::from_vector({2.f, 0.5f, 1.f, 0.01f}, {4});
  const float eps = 1e-5f;
  run_backward(batch_norm2d(x, gamma, beta, rm, rv, false, 0.1f, eps), gy);
  std::vector<float> s(4);
  for (int ch = 0; ch < 4; ++ch) s[ch] = 1.f / std::sqrt(rv.to_vector()[ch] + eps);
  Tensor s4 = Tensor::from_vector(s, {1, 4, 1, 1});
  Tensor xhat = mul(sub(x.detach(), reshape(rm, {1, 4, 1, 1})), s4);
  const auto composed_gx = mul(gy, mul(reshape(gamma.detach(), {1, 4, 1, 1}), s4)).to_vector();
  const auto composed_ggamma = sum(mul(gy, xhat), {0, 2, 3}).to_vector();
  const auto composed_gbeta = sum(gy, {0, 2, 3}).to_vector();
  CHECK(max_abs_diff(x.grad().to_vector(), composed_gx) < 1e-6f);
  CHECK(max_abs_diff(gamma.grad().to_vector(), composed_ggamma) < 1e-4f);
  CHECK(max_abs_diff(beta.grad().to_vector(), composed_gbeta) < 1e-4f);
}

TEST_CASE("layer_norm: forward per row, gradients of x, gamma and beta") {
  Generator gen(16);
  const float eps = 1e-5f;
  // 15 rows (one per block of the deterministic parameter-gradient sums) and 130 rows (several
  // rows per block: the backward splits rows into at most 64 blocks).
  for (int64_t rows : {int64_t(15), int64_t(130)}) {
    CAPTURE(rows);
    Tensor x = leaf({rows / 5, 5, 7}, gen, -1.f, 2.f), gamma = leaf({7}, gen, 0.5f, 1.5f),
           beta = leaf({7}, gen);
    const std::vector<float> xv = x.to_vector(), g = gamma.to_vector(), b = beta.to_vector(),
                             y = layer_norm(x, gamma, beta, eps).to_vector();
    std::vector<float> expected(xv.size());
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, var = 0;
      for (int j = 0; j < 7; ++j) mean += xv[r * 7 + j] / 7.0;
      for (int j = 0; j < 7; ++j) var += (xv[r * 7 + j] - mean) * (xv[r * 7 + j] - mean) / 7.0;
      for (int j = 0; j < 7; ++j)
        expected[r * 7 + j] = float(g[j] * (xv[r * 7 + j] - mean) / std::sqrt(var + eps) + b[j]);
    }
    CHECK(max_abs_diff(y, expected) < 1e-5f);  // |y| of a few units, rows of 7: ~1e-6 rounding
    check_gradients([eps](auto& t) { return layer_norm(t[0], t[1], t[2], eps); }, {x, gamma, beta});
  }
  CHECK_THROWS_AS(layer_norm(leaf({3, 7}, gen), leaf({6}, gen), leaf({7}, gen), eps),
                  std::invalid_argument);
}

// On a residual stream the layer norm's backward adds x's gradient into the one autograd has
// summed so far (Node::backward_into); where that buffer is its own gy (x + layer_norm(x): add
// passes gy through) it must not, and both must give the true gradient.
TEST_CASE("layer_norm on a residual stream: the gradient added in place equals the sum") {
  Generator gen(18);
  Tensor x = leaf({6, 7}, gen, -1.f, 2.f), gamma = leaf({7}, gen, 0.5f, 1.5f),
         beta = leaf({7}, gen);
  check_gradients([](auto& t) { return add(t[0], layer_norm(t[0], t[1], t[2], 1e-5f)); },
                  {x, gamma, beta});
  check_gradients([](auto& t) { return add(mul(t[0], t[0]), layer_norm(t[0], t[1], t[2], 1e-5f)); },
                  {x, gamma, beta});
  // The in-place sum rounds as autograd's axpy did: the same gradient bit for bit as a graph
  // whose layer norm sees a copy of x (no accumulated gradient to add into, so a fresh one).
  auto grad_of_x = [&](bool through_copy) {
    Tensor xc = x.detach().clone();
    xc.requires_grad_();
    Tensor h = exp(xc);  // one more gradient for xc: e + ln, in either order
    Tensor n =
        layer_norm(through_copy ? add(xc, Tensor::zeros(xc.shape())) : xc, gamma, beta, 1e-5f);
    sum(add(h, n)).backward();
    return xc.grad().to_vector();
  };
  CHECK(grad_of_x(false) == grad_of_x(true));
}

TEST_CASE("softmax: rows sum to one, large logits do not overflow, gradient") {
  Generator gen(17);
  Tensor x = leaf({3, 5, 7}, gen, -2.f, 2.f);
  const std::vector<float> xv = x.to_vector(), y = softmax(x).to_vector();
  std::vector<float> expected(xv.size());
  for (int r = 0; r < 15; ++r) {
    double total = 0;
    for (int j = 0; j < 7; ++j) total += std::exp(double(xv[r * 7 + j]));
    for (int j = 0; j < 7; ++j)
      expected[r * 7 + j] = float(std::exp(double(xv[r * 7 + j])) / total);
  }
  CHECK(max_abs_diff(y, expected) < 1e-6f);  // values in (0, 1), float32 exp: ~1e-7 rounding
  // exp(1000) overflows float32; after subtracting the row maximum the result is unchanged
  // (up to the rounding of x + 1000, whose ulp is 6e-5: relative error in y of about 1e-4).
  CHECK(max_abs_diff(softmax(add_scalar(x, 1000.f)).to_vector(), expected) < 2e-4f);
  check_gradients([](auto& t) { return softmax(t[0]); }, {x});
}
