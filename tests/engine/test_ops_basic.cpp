// test_ops_basic.cpp: elementwise, reduction, shape and linear-algebra ops: forward against naive
// loops, backward against finite differences (tests/engine/gradcheck.h states step and
// tolerance).
#include <doctest/doctest.h>

#include <cmath>

#include "engine/ops.h"
#include "tests/engine/gradcheck.h"

using namespace forge;
using namespace forge::testing;

TEST_CASE("ops: broadcast binary ops, forward and gradient") {
  Generator gen(1);
  Tensor a = leaf({3, 1, 5}, gen), b = leaf({4, 1}, gen, 0.5f, 2.f);  // b > 0 for div
  // forward against a naive broadcast loop
  std::vector<float> av = a.to_vector(), bv = b.to_vector(), out = add(a, b).to_vector();
  REQUIRE(out.size() == 3 * 4 * 5);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k) CHECK(out[(i * 4 + j) * 5 + k] == av[i * 5 + k] + bv[j]);
  check_gradients([](auto& x) { return add(x[0], x[1]); }, {a, b});
  check_gradients([](auto& x) { return sub(x[0], x[1]); }, {a, b});
  check_gradients([](auto& x) { return mul(x[0], x[1]); }, {a, b});
  check_gradients([](auto& x) { return div(x[0], x[1]); }, {a, b});
}

TEST_CASE("ops: unary ops and activations, forward and gradient") {
  Generator gen(2);
  Tensor x = leaf({2, 7}, gen, -2.f, 2.f);
  Tensor pos = leaf({9}, gen, 0.5f, 3.f);
  std::vector<float> xv = x.to_vector(), g = gelu(x).to_vector(), r = relu(x).to_vector();
  for (size_t i = 0; i < xv.size(); ++i) {
    CHECK(g[i] == doctest::Approx(0.5 * xv[i] * (1 + std::erf(xv[i] / std::sqrt(2.0)))));
    CHECK(r[i] == (xv[i] > 0 ? xv[i] : 0.f));
  }
  check_gradients([](auto& t) { return gelu(t[0]); }, {x});
  check_gradients([](auto& t) { return exp(t[0]); }, {x});
  check_gradients([](auto& t) { return log(t[0]); }, {pos});
  check_gradients([](auto& t) { return neg(add_scalar(mul_scalar(t[0], 3.f), 1.f)); }, {x});
  // ReLU has a kink at 0: keep every input at least 0.1 away from it (the step is 0.01).
  std::vector<float> away = xv;
  for (float& v : away) v = v >= 0 ? v + 0.1f : v - 0.1f;
  Tensor xa = Tensor::from_vector(away, x.shape());
  xa.requires_grad_();
  check_gradients([](auto& t) { return relu(t[0]); }, {xa});
}

TEST_CASE("ops: dropout is seeded, scales kept values, and is the identity in eval") {
  Generator gen(3);
  Tensor x = leaf({4, 50}, gen, 1.f, 2.f);
  std::vector<float> xv = x.to_vector(), y = dropout(x, 0.3f, true, 99).to_vector();
  int dropped = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0.f)
      ++dropped;
    else
      CHECK(y[i] == doctest::Approx(xv[i] / 0.7f));
  }
  // 200 Bernoulli(0.3) draws: mean 60, std 6.5; accept 4 sigma either side.
  CHECK(dropped > 34);
  CHECK(dropped < 86);
  CHECK(dropout(x, 0.3f, true, 99).to_vector() == y);
  CHECK(dropout(x, 0.3f, true, 100).to_vector() != y);
  CHECK(dropout(x, 0.3f, false, 99).to_vector() == xv);
  check_gradients([](auto& t) { return dropout(t[0], 0.3f, true, 99); }, {x});
  CHECK_THROWS_AS(dropout(x, 1.f, true, 1), std::invalid_argument);
}

TEST_CASE("ops: dropout_add and gelu_dropout equal the unfused ops and have their gradients") {
  Generator gen(8);
  Tensor x = leaf({7, 13}, gen, -2.f, 2.f), r = leaf({7, 13}, gen);
  CHECK(dropout_add(r, x, 0.3f, true, 99).to_vector() ==
        add(r, dropout(x, 0.3f, true, 99)).to_vector());
  CHECK(gelu_dropout(x, 0.3f, true, 99).to_vector() ==
        dropout(gelu(x), 0.3f, true, 99).to_vector());
  CHECK(dropout_add(r, x, 0.3f, false, 99).to_vector() == add(r, x).to_vector());
  CHECK(gelu_dropout(x, 0.3f, false, 99).to_vector() == gelu(x).to_vector());
  check_gradients([](auto& t) { return dropout_add(t[0], t[1], 0.3f, true, 99); }, {r, x});
  check_gradients([](auto& t) { return gelu_dropout(t[0], 0.3f, true, 99); }, {x});
  CHECK_THROWS_AS(dropout_add(r, x.reshape({13, 7}), 0.3f, true, 1), std::invalid_argument);
  CHECK_THROWS_AS(gelu_dropout(x, 1.f, true, 1), std::invalid_argument);
}

TEST_CASE("ops: sum, mean and global average pool") {
  Generator gen(4);
  Tensor x = leaf({2, 3, 4, 5}, gen);
  std::vector<float> xv = x.to_vector();
  double total = 0;
  for (float v : xv) total += v;
  CHECK(sum(x).item() == doctest::Approx(total).epsilon(1e-5));
  CHECK(mean(x).item() == doctest::Approx(total / 120).epsilon(1e-5));
  Tensor s = sum(x, {1, 3});
  REQUIRE(s.shape() == Shape{2, 4});
  std::vector<float> sv = s.to_vector();
  for (int n = 0; n < 2; ++n)
    for (int h = 0; h < 4; ++h) {
      double acc = 0;
      for (int c = 0; c < 3; ++c)
        for (int w = 0; w < 5; ++w) acc += xv[((n * 3 + c) * 4 + h) * 5 + w];
      CHECK(sv[n * 4 + h] == doctest::Approx(acc).epsilon(1e-5));
    }
  CHECK(sum(x, {0}, true).shape() == Shape{1, 3, 4, 5});
  CHECK(global_avg_pool(x).shape() == Shape{2, 3});
  check_gradients([](auto& t) { return sum(t[0], {1, 3}); }, {x});
  check_gradients([](auto& t) { return mean(t[0], {0}, true); }, {x});
  check_gradients([](auto& t) { return global_avg_pool(t[0]); }, {x});
}

TEST_CASE("ops: shape ops carry gradients back") {
  Generator gen(5);
  Tensor x = leaf({2, 3, 5}, gen), y = leaf({2, 1, 5}, gen);
  check_gradients([](auto& t) { return t[0].permute({2, 0, 1}).contiguous(); }, {x});
  check_gradients([](auto& t) { return t[0].transpose(0, 2).reshape({5, 6}); }, {x});
  check_gradients([](auto& t) { return t[0].slice(1, 1, 3); }, {x});
  check_gradients([](auto& t) { return concat({t[0], t[1]}, 1); }, {x, y});
  Tensor c = concat({x, y}, 1);
  REQUIRE(c.shape() == Shape{2, 4, 5});
  CHECK(c.slice(1, 3, 4).to_vector() == y.to_vector());
  CHECK(c.slice(1, 0, 3).to_vector() == x.to_vector());
}

// Naive matrix product of row-major a [m, k] and b [k, n].
static std::vector<float> naive_matmul(const std::vector<float>& a, const std::vector<float>& b,
                                       int m, int k, int n) {
  std::vector<float> c(m * n, 0.f);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double acc = 0;
      for (int p = 0; p < k; ++p) acc += double(a[i * k + p]) * b[p * n + j];
      c[i * n + j] = float(acc);
    }
  return c;
}

TEST_CASE("ops: matmul, batched and broadcast, and linear") {
  Generator gen(6);
  Tensor a = leaf({3, 5}, gen), b = leaf({5, 7}, gen);
  // Each entry sums 5 products of numbers below 1: float32 error far below 1e-5.
  CHECK(max_abs_diff(matmul(a, b).to_vector(),
                     naive_matmul(a.to_vector(), b.to_vector(), 3, 5, 7)) < 1e-5f);
  Tensor ab = leaf({2, 3, 4, 5}, gen), bb = leaf({3, 5, 6}, gen), v = leaf({5}, gen);
  Tensor c = matmul(ab, bb);
  REQUIRE(c.shape() == Shape{2, 3, 4, 6});
  // batch (1, 2) of c is ab[1, 2] x bb[2]
  CHECK(max_abs_diff(c.slice(0, 1, 2).slice(1, 2, 3).to_vector(),
                     naive_matmul(ab.slice(0, 1, 2).slice(1, 2, 3).to_vector(),
                                  bb.slice(0, 2, 3).to_vector(), 4, 5, 6)) < 1e-5f);
  check_gradients([](auto& t) { return matmul(t[0], t[1]); }, {a, b});
  check_gradients([](auto& t) { return matmul(t[0], t[1]); }, {ab, bb});
  check_gradients([](auto& t) { return matmul(t[0], t[1]); }, {ab, b});  // shared 2-D weight
  check_gradients([](auto& t) { return matmul(t[0], t[1]); }, {a, v});
  Tensor x = leaf({2, 3, 5}, gen), w = leaf({4, 5}, gen), bias = leaf({4}, gen);
  Tensor y = linear(x, w, bias);
  REQUIRE(y.shape() == Shape{2, 3, 4});
  std::vector<float> ref = naive_matmul(x.to_vector(), w.transpose(0, 1).to_vector(), 6, 5, 4);
  std::vector<float> bv = bias.to_vector();
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 4; ++o) ref[r * 4 + o] += bv[o];
  CHECK(max_abs_diff(y.to_vector(), ref) < 1e-5f);
  check_gradients([](auto& t) { return linear(t[0], t[1], t[2]); }, {x, w, bias});
  check_gradients([](auto& t) { return linear(t[0], t[1], Tensor()); }, {x, w});
}
