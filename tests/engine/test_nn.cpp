// test_nn.cpp: modules (names, counts, modes), initialiser statistics, dropout's step-seeded
// masks, drop path's per-sample draws, and a two-layer MLP that learns XOR.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/nn/layers.h"
#include "engine/ops.h"
#include "tests/engine/gradcheck.h"

using namespace forge;
using namespace forge::nn;

// Mean and standard deviation of a tensor's values.
static std::pair<double, double> moments(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  double m = 0, s = 0;
  for (float x : v) m += x;
  m /= v.size();
  for (float x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / v.size())};
}

TEST_CASE("nn: parameter names, counts and train/eval propagate through children") {
  Generator gen(1);
  Sequential net({std::make_shared<Linear>(3, 4, gen, Device::cpu), std::make_shared<GELU>(),
                  std::make_shared<Dropout>(0.5f, gen),
                  std::make_shared<Linear>(4, 2, gen, Device::cpu)});
  NamedTensors params = net.named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].first == "0.weight");
  CHECK(params[1].first == "0.bias");
  CHECK(params[3].first == "3.bias");
  CHECK(net.parameter_count() == 3 * 4 + 4 + 4 * 2 + 2);
  for (auto& [name, p] : params) CHECK(p.requires_grad());
  BatchNorm2d bn(5, Device::cpu);
  CHECK(bn.named_buffers().size() == 2);
  CHECK(bn.named_buffers()[0].first == "running_mean");
  net.eval();
  CHECK_FALSE(net.training());
  // In eval mode dropout is the identity: two calls agree.
  Tensor x = Tensor::randn({8, 3}, gen);
  CHECK(net.forward(x).to_vector() == net.forward(x).to_vector());
}

TEST_CASE("nn: initialisers have the stated statistics") {
  Generator gen(2);
  // 40000 draws: standard error of the std estimate ~0.35%, checked at 3%.
  auto [km, ks] = moments(kaiming_normal({200, 200}, 50, gen, Device::cpu));
  CHECK(std::fabs(km) < 0.005);
  CHECK(ks == doctest::Approx(std::sqrt(2.0 / 50)).epsilon(0.03));
  Tensor xu = xavier_uniform({200, 200}, 100, 300, gen, Device::cpu);
  const double a = std::sqrt(6.0 / 400);
  for (float v : xu.to_vector()) REQUIRE(std::fabs(v) <= a);
  CHECK(moments(xu).second == doctest::Approx(a / std::sqrt(3.0)).epsilon(0.03));
  Tensor tn = trunc_normal({40000}, 0.02f, gen, Device::cpu);
  for (float v : tn.to_vector()) REQUIRE(std::fabs(v) <= 0.04f + 1e-7f);
  // A normal truncated at +-2 sigma has std 0.8796 sigma.
  CHECK(moments(tn).second == doctest::Approx(0.02 * 0.8796).epsilon(0.03));
}

TEST_CASE("nn: dropout masks are a function of the step and the call") {
  Generator gen(3);
  Dropout d(0.5f, gen);
  Tensor x = Tensor::ones({64});
  d.set_step(7);
  std::vector<float> a = d.forward(x).to_vector(), b = d.forward(x).to_vector();
  CHECK(a != b);  // second call in the step: a new mask
  d.set_step(7);
  CHECK(d.forward(x).to_vector() == a);  // same step, same first call: same mask
  d.set_step(8);
  CHECK(d.forward(x).to_vector() != a);
}

TEST_CASE("nn: drop path is the plain sum in eval mode and when p is 0") {
  Generator gen(4);
  Tensor residual = Tensor::randn({6, 3, 5}, gen), x = Tensor::randn({6, 3, 5}, gen);
  const std::vector<float> sum = add(residual, x).to_vector();
  DropPath d(0.5f, 0);
  d.eval();
  CHECK_FALSE(d.active());
  CHECK(d.forward_add(residual, x).to_vector() == sum);
  DropPath off(0.f, 0);
  CHECK_FALSE(off.active());
  CHECK(off.forward_add(residual, x).to_vector() == sum);
  CHECK_THROWS_AS(DropPath(1.f, 0), std::invalid_argument);
}

TEST_CASE("nn: drop path drops whole samples at rate p and scales the kept by 1/(1-p)") {
  const float p = 0.3f;
  const int rows = 2000;
  DropPath d(p, 5);
  std::vector<uint64_t> keys(rows);
  for (int b = 0; b < rows; ++b) keys[b] = splitmix64(1000 + b);
  d.set_step(1);
  d.set_sample_keys(keys);
  Generator gen(5);
  Tensor x = Tensor::uniform({rows, 2, 3}, gen, 0.5f, 1.5f), residual = Tensor::zeros({rows, 2, 3});
  const std::vector<float> y = d.forward_add(residual, x).to_vector(), xv = x.to_vector();
  int dropped = 0;
  for (int b = 0; b < rows; ++b) {
    int zeros = 0, scaled = 0;
    for (int j = 0; j < 6; ++j) {
      const size_t i = size_t(b) * 6 + j;
      zeros += y[i] == 0.f;
      scaled += std::abs(y[i] - xv[i] / (1 - p)) <= 1e-6f * xv[i];
    }
    CHECK((zeros == 6 || scaled == 6));  // the whole branch of a sample, or none of it
    dropped += zeros == 6;
  }
  // Binomial(2000, 0.3): standard deviation 20.5; the keys are fixed, so this cannot flake.
  CHECK(std::abs(dropped - p * rows) < 80);
}

TEST_CASE("nn: drop path's draw is a function of the sample's key, not of its row or batch") {
  DropPath d(0.5f, 2);
  std::vector<uint64_t> keys(64);
  for (size_t b = 0; b < keys.size(); ++b) keys[b] = splitmix64(b);
  d.set_step(3);
  d.set_sample_keys(keys);
  const std::vector<float> scales = d.sample_scales(64);
  CHECK(std::count(scales.begin(), scales.end(), 0.f) > 0);
  CHECK(std::count(scales.begin(), scales.end(), 2.f) > 0);
  std::vector<uint64_t> reversed(keys.rbegin(), keys.rend());
  d.set_step(9);  // another step, another batch order: each sample draws the same
  d.set_sample_keys(reversed);
  const std::vector<float> again = d.sample_scales(64);
  for (size_t b = 0; b < 64; ++b) CHECK(again[63 - b] == scales[b]);
  DropPath other_layer(0.5f, 3);
  other_layer.set_sample_keys(keys);
  CHECK(other_layer.sample_scales(64) != scales);  // layers draw independently
  // Without keys (set_step forgets them), rows are keyed by the step.
  d.set_step(3);
  const std::vector<float> unkeyed = d.sample_scales(64);
  d.set_step(3);
  CHECK(d.sample_scales(64) == unkeyed);
  d.set_step(4);
  CHECK(d.sample_scales(64) != unkeyed);
}

TEST_CASE("nn: drop path's gradient matches finite differences") {
  DropPath d(0.5f, 1);
  std::vector<uint64_t> keys{11, 12, 13, 14, 15, 16, 17, 18};
  auto f = [&](const std::vector<Tensor>& in) {
    d.set_step(0);
    d.set_sample_keys(keys);
    return d.forward_add(in[0], in[1]);
  };
  Generator gen(6);
  d.set_sample_keys(keys);
  const std::vector<float> scales = d.sample_scales(8);
  REQUIRE(std::count(scales.begin(), scales.end(), 0.f) > 0);  // both cases are exercised
  REQUIRE(std::count(scales.begin(), scales.end(), 2.f) > 0);
  forge::testing::check_gradients(
      f, {forge::testing::leaf({8, 3}, gen), forge::testing::leaf({8, 3}, gen)});
}

TEST_CASE("nn: a two-layer MLP learns XOR") {
  Generator gen(4);
  Sequential mlp({std::make_shared<Linear>(2, 8, gen, Device::cpu), std::make_shared<GELU>(),
                  std::make_shared<Linear>(8, 2, gen, Device::cpu)});
  Tensor x = Tensor::from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  const std::vector<int32_t> y{0, 1, 1, 0};
  float loss = 0;
  for (int step = 0; step < 2000; ++step) {
    Tensor l = cross_entropy(mlp.forward(x), y);
    for (Tensor& p : mlp.parameters()) p.zero_grad();
    l.backward();
    loss = l.item();
    NoGradGuard no_grad;  // plain gradient descent, lr 0.5
    for (Tensor& p : mlp.parameters()) p.copy_from(sub(p, mul_scalar(p.grad(), 0.5f)));
  }
  CHECK(loss < 0.05f);
  std::vector<float> logits = mlp.forward(x).to_vector();
  for (int i = 0; i < 4; ++i) CHECK((logits[2 * i + 1] > logits[2 * i]) == (y[i] == 1));
}

TEST_CASE("nn: a tiny conv net fits a small synthetic batch to 100% accuracy") {
  // 16 random 8x8 RGB images with random labels among 3 classes: nothing to generalise, so only
  // a working forward and backward through conv, batch norm, pooling and linear can fit them.
  Generator gen(5);
  Sequential net({std::make_shared<Conv2d>(3, 8, 3, 1, 1, gen, Device::cpu),
                  std::make_shared<BatchNorm2d>(8, Device::cpu), std::make_shared<ReLU>(),
                  std::make_shared<Conv2d>(8, 8, 3, 2, 1, gen, Device::cpu),
                  std::make_shared<BatchNorm2d>(8, Device::cpu), std::make_shared<ReLU>()});
  Linear head(8 * 4 * 4, 3, gen, Device::cpu);
  Tensor x = Tensor::randn({16, 3, 8, 8}, gen);
  std::vector<int32_t> y(16);
  for (auto& label : y) label = static_cast<int32_t>(gen.below(3));
  auto logits = [&] { return head.forward(net.forward(x).reshape({16, -1})); };
  std::vector<Tensor> params = net.parameters();
  for (auto& p : head.parameters()) params.push_back(p);
  for (int step = 0; step < 300; ++step) {
    Tensor l = cross_entropy(logits(), y);
    for (Tensor& p : params) p.zero_grad();
    l.backward();
    NoGradGuard no_grad;
    for (Tensor& p : params) p.copy_from(sub(p, mul_scalar(p.grad(), 0.1f)));
  }
  net.eval();
  NoGradGuard no_grad;
  std::vector<float> out = logits().to_vector();
  int correct = 0;
  for (int i = 0; i < 16; ++i) {
    int best = 0;
    for (int c = 1; c < 3; ++c)
      if (out[i * 3 + c] > out[i * 3 + best]) best = c;
    correct += best == y[i];
  }
  CHECK(correct == 16);
}
