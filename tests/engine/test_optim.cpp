// test_optim.cpp: optimizers, gradient clipping and learning-rate schedules against arithmetic
// written out by hand, optimizer state round trips, and small regression problems that each
// optimizer must solve.
//
// Tolerances: one update of a value of magnitude ~1 goes through a handful of float32 roundings
// (relative error ~1.2e-7 each), so hand values are checked to a relative 1e-6.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/optim/schedule.h"

using namespace forge;

namespace {

constexpr double kTol = 1e-6;  // a few float32 roundings at magnitude ~1 (see the file comment)

Tensor param(const std::vector<float>& values) {
  Tensor p = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  p.requires_grad_();
  return p;
}

void set_grad(const Tensor& p, const std::vector<float>& g) {
  p.set_grad(Tensor::from_vector(g, p.shape()));
}

void check_values(const Tensor& t, const std::vector<double>& expected) {
  std::vector<float> v = t.to_vector();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(expected[i]).epsilon(kTol));
}

// An optimizer whose rate follows a cosine schedule over 800 steps (20 of warm-up).
template <class Opt>
struct Scheduled {
  Opt opt;
  LrSchedule schedule = LrSchedule::cosine(0.05f, 800, 20, 0.f);
  void zero_grad() { opt.zero_grad(); }
  void step() {
    opt.set_lr(schedule.lr(opt.step_count()));
    opt.step();
  }
};

}  // namespace

TEST_CASE("optim: SGD with momentum, two steps by hand") {
  // lr 0.1, momentum 0.9, p = [1, -2].
  // Step 1, g = [0.5, 0.25]:  buf = g = [0.5, 0.25];  p = [1 - 0.05, -2 - 0.025] = [0.95, -2.025]
  // Step 2, g = [-0.5, 1]:    buf = 0.9 [0.5, 0.25] + [-0.5, 1] = [-0.05, 1.225]
  //                           p = [0.95 + 0.005, -2.025 - 0.1225] = [0.955, -2.1475]
  Tensor p = param({1.f, -2.f});
  SGD sgd({p}, {.lr = 0.1f, .momentum = 0.9f});
  set_grad(p, {0.5f, 0.25f});
  sgd.step();
  check_values(p, {0.95, -2.025});
  set_grad(p, {-0.5f, 1.f});
  sgd.step();
  check_values(p, {0.955, -2.1475});
  CHECK(sgd.step_count() == 2);
}

TEST_CASE("optim: SGD Nesterov and weight decay, one step by hand") {
  // Nesterov, lr 0.1, momentum 0.9, p = 1, g = 0.5: buf = 0.5, p = 1 - 0.1 (0.5 + 0.9 * 0.5)
  // = 1 - 0.095 = 0.905.
  Tensor p = param({1.f});
  SGD nesterov({p}, {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
  set_grad(p, {0.5f});
  nesterov.step();
  check_values(p, {0.905});
  // Weight decay 0.01, no momentum, p = 1, g = 0.5: g' = 0.5 + 0.01 = 0.51, p = 1 - 0.051.
  Tensor q = param({1.f});
  SGD decayed({q}, {.lr = 0.1f, .weight_decay = 0.01f});
  set_grad(q, {0.5f});
  decayed.step();
  check_values(q, {0.949});
  CHECK_THROWS_AS(SGD({q}, {.lr = 0.1f, .nesterov = true}), std::invalid_argument);
}

TEST_CASE("optim: Adam, two steps by hand") {
  // lr 0.1, b1 0.9, b2 0.999, eps 1e-8, p = 1.
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  // Step 1, g = 0.5: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025,
  //   m^ = 0.05 / 0.1 = 0.5, v^ = 0.00025 / 0.001 = 0.25, p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) ~ 0.9
  double m = (1 - b1) * 0.5, v = (1 - b2) * 0.25;
  double p_ref = 1 - lr * (m / (1 - b1)) / (std::sqrt(v / (1 - b2)) + eps);
  Tensor p = param({1.f});
  Adam adam({p}, {.lr = 0.1f});
  set_grad(p, {0.5f});
  adam.step();
  check_values(p, {p_ref});
  CHECK(p_ref == doctest::Approx(0.9).epsilon(1e-7));  // the hand value above
  // Step 2, g = -0.25: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
  //   m^ = 0.02 / 0.19 = 0.10526, v^ = 0.00031225 / 0.001999 = 0.15620, sqrt = 0.39523,
  //   p = 0.9 - 0.1 * 0.10526 / 0.39523 = 0.9 - 0.026634 = 0.873366
  m = b1 * m + (1 - b1) * -0.25;
  v = b2 * v + (1 - b2) * 0.0625;
  p_ref -= lr * (m / (1 - b1 * b1)) / (std::sqrt(v / (1 - b2 * b2)) + eps);
  set_grad(p, {-0.25f});
  adam.step();
  check_values(p, {p_ref});
  CHECK(p_ref == doctest::Approx(0.873366).epsilon(1e-6));
}

TEST_CASE("optim: Adam's L2 decay is normalised away, AdamW's decoupled decay is not") {
  // lr 0.1, wd 0.1, p = [1, 2], g = [0.5, -0.1]; on step 1 Adam moves each weight by lr * sign(g').
  // Adam:  g' = g + 0.1 p = [0.6, 0.1]      -> p = [1 - 0.1, 2 - 0.1] = [0.9, 1.9]
  //        (the decay only changed the sign of the second update)
  // AdamW: p *= 1 - 0.1 * 0.1 -> [0.99, 1.98], then p -= 0.1 sign(g) -> [0.89, 2.08]
  Tensor a = param({1.f, 2.f}), w = param({1.f, 2.f});
  Adam adam({a}, {.lr = 0.1f, .weight_decay = 0.1f});
  AdamW adamw({w}, {.lr = 0.1f, .weight_decay = 0.1f});
  set_grad(a, {0.5f, -0.1f});
  set_grad(w, {0.5f, -0.1f});
  adam.step();
  adamw.step();
  // The eps in the denominator moves each result by ~lr * eps / |g'| <= 1e-8: inside kTol.
  check_values(a, {0.9, 1.9});
  check_values(w, {0.89, 2.08});
}

TEST_CASE("optim: parameters without a gradient are skipped and keep their own step count") {
  Tensor used = param({1.f}), frozen = param({1.f});
  Adam adam({used, frozen}, {.lr = 0.1f});
  set_grad(used, {0.5f});
  adam.step();
  CHECK(frozen.to_vector()[0] == 1.f);  // untouched, exactly
  // Now `frozen` gets its first gradient at the optimizer's step 2: its bias correction must be
  // that of its own first update (t = 1), which moves it by exactly lr (see the Adam test).
  set_grad(frozen, {0.5f});
  adam.step();
  check_values(frozen, {0.9});
  adam.zero_grad();
  CHECK(!used.grad().defined());
  CHECK(!frozen.grad().defined());
  Tensor not_a_leaf = param({1.f}) * 2.f;
  CHECK_THROWS_AS(SGD({not_a_leaf}, {}), std::invalid_argument);
  Tensor no_grad_flag = Tensor::ones({2});
  CHECK_THROWS_AS(Adam({no_grad_flag}, {}), std::invalid_argument);
}

TEST_CASE("optim: count_step advances the counts of the parameters a recorded step updated") {
  // A replayed CUDA graph updates on the device what its captured step updated, whatever the
  // host's gradients are by then (train/graph_step.h): the counts follow the recorded flags.
  Tensor used = param({1.f}), frozen = param({1.f});
  Adam adam({used, frozen}, {.lr = 0.1f});
  set_grad(used, {0.5f});
  adam.step();
  const std::vector<bool> captured = adam.updated_by_last_step();
  CHECK(captured == std::vector<bool>{true, false});
  adam.zero_grad();  // the host's gradients gone, as after the run report's Grad-CAM
  adam.count_step(captured);
  adam.count_step(captured);
  CHECK(adam.step_count() == 3);
  const OptimizerState s = adam.state();
  CHECK(s.tensors[4].first == "step.0");
  CHECK(s.tensors[4].second.item() == 3.f);
  CHECK(s.tensors[5].second.item() == 0.f);
  CHECK_THROWS_WITH_AS(adam.count_step({true}), doctest::Contains("1 flags for 2 parameters"),
                       std::invalid_argument);
}

TEST_CASE("optim: state round trip reproduces the next step bit for bit") {
  Generator gen(7);
  auto make = [&](Tensor& p) {
    p = Tensor::randn({3, 4}, gen);
    p.requires_grad_();
  };
  Tensor p1, p2;
  make(p1);
  p2 = p1.clone();
  p2.requires_grad_();
  Tensor g1 = Tensor::randn({3, 4}, gen), g2 = Tensor::randn({3, 4}, gen);
  AdamW first({p1}, {.lr = 0.01f, .weight_decay = 0.05f});
  p1.set_grad(g1);
  first.step();
  // Copy the state and the weights into a fresh optimizer, then take the same step with both.
  AdamW second({p2}, {.lr = 0.01f, .weight_decay = 0.05f});
  OptimizerState saved = first.state();
  CHECK(saved.step == 1);
  CHECK(saved.tensors.size() == 3);  // exp_avg.0, exp_avg_sq.0, step.0
  second.load_state(saved);
  p2.copy_from(p1);
  p1.set_grad(g2);
  p2.set_grad(g2);
  first.step();
  second.step();
  CHECK(p1.to_vector() == p2.to_vector());
  CHECK(second.step_count() == 2);
  // A state from another optimizer shape is refused, naming the tensor.
  OptimizerState wrong = saved;
  wrong.tensors[0].second = Tensor::zeros({4, 3});
  CHECK_THROWS_AS(second.load_state(wrong), std::invalid_argument);
  SGD sgd({p2}, {.lr = 0.1f, .momentum = 0.9f});
  CHECK_THROWS_AS(sgd.load_state(saved), std::invalid_argument);
}

TEST_CASE("optim: clip_grad_norm against a hand norm") {
  // Gradients [3, 4] and [12]: norm = sqrt(9 + 16 + 144) = 13.
  Tensor a = param({0.f, 0.f}), b = param({0.f}), unused = param({5.f});
  set_grad(a, {3.f, 4.f});
  set_grad(b, {12.f});
  // Below the threshold: the norm is returned and nothing changes.
  CHECK(clip_grad_norm({a, b, unused}, 20.f).item() == doctest::Approx(13.0).epsilon(1e-7));
  CHECK(a.grad().to_vector() == std::vector<float>{3.f, 4.f});
  // Above: scaled by 6.5 / (13 + 1e-6), i.e. halved to within 1e-7 relative.
  CHECK(clip_grad_norm({a, b, unused}, 6.5f).item() == doctest::Approx(13.0).epsilon(1e-7));
  check_values(a.grad(), {1.5, 2.0});
  check_values(b.grad(), {6.0});
  // A NaN gradient makes the norm NaN; the gradients are left as they were for the caller.
  set_grad(b, {std::numeric_limits<float>::quiet_NaN()});
  CHECK(std::isnan(clip_grad_norm({a, b}, 1.f).item()));
  check_values(a.grad(), {1.5, 2.0});
}

TEST_CASE("optim: cosine schedule with warm-up against the formula") {
  // base 0.1, floor 0.001, 10 warm-up steps of 100.
  LrSchedule s = LrSchedule::cosine(0.1f, 100, 10, 0.001f);
  const double pi = std::acos(-1.0);
  auto cosine = [&](double progress) {
    return 0.001 + 0.099 * 0.5 * (1 + std::cos(pi * progress));
  };
  CHECK(s.lr(0) == doctest::Approx(0.01).epsilon(kTol));  // base * 1/10: warm-up starts near 0
  CHECK(s.lr(4) == doctest::Approx(0.05).epsilon(kTol));
  CHECK(s.lr(9) == doctest::Approx(0.1).epsilon(kTol));  // end of warm-up: the full rate
  CHECK(s.lr(10) == doctest::Approx(0.1).epsilon(kTol));
  CHECK(s.lr(55) == doctest::Approx(0.0505).epsilon(kTol));  // half way: mean of base and floor
  CHECK(s.lr(32) == doctest::Approx(cosine(22.0 / 90.0)).epsilon(kTol));
  CHECK(s.lr(100) == doctest::Approx(0.001).epsilon(kTol));  // the floor at the end
  CHECK(s.lr(5000) == doctest::Approx(0.001).epsilon(kTol));
  CHECK_THROWS_AS(LrSchedule::cosine(0.1f, 10, 10), std::invalid_argument);
}

TEST_CASE("optim: step decay schedule with warm-up against the formula") {
  // base 0.1, times 0.1 every 30 steps after 5 warm-up steps.
  LrSchedule s = LrSchedule::step_decay(0.1f, 30, 0.1f, 5);
  CHECK(s.lr(0) == doctest::Approx(0.02).epsilon(kTol));
  CHECK(s.lr(4) == doctest::Approx(0.1).epsilon(kTol));
  CHECK(s.lr(5) == doctest::Approx(0.1).epsilon(kTol));
  CHECK(s.lr(34) == doctest::Approx(0.1).epsilon(kTol));
  CHECK(s.lr(35) == doctest::Approx(0.01).epsilon(kTol));
  CHECK(s.lr(64) == doctest::Approx(0.01).epsilon(kTol));
  CHECK(s.lr(65) == doctest::Approx(0.001).epsilon(kTol));  // (65 - 5) / 30 = 2 decays
  LrSchedule no_warmup = LrSchedule::step_decay(1.f, 2, 0.5f);
  CHECK(no_warmup.lr(0) == 1.f);
  CHECK(no_warmup.lr(3) == 0.5f);
  CHECK(no_warmup.lr(4) == 0.25f);
}

TEST_CASE("optim: each optimizer fits a small linear regression") {
  // y = X w* + b* exactly, X [64, 3]: the least-squares minimum is w*, b* with zero loss.
  Generator gen(11);
  Tensor x = Tensor::randn({64, 3}, gen);
  const std::vector<float> w_true = {1.5f, -2.f, 0.5f};
  const float b_true = 0.3f;
  Tensor y = matmul(x, Tensor::from_vector(w_true, {3, 1})) + Tensor::full({1}, b_true);

  auto fit = [&](auto make_optimizer, int steps) {
    Tensor w = Tensor::zeros({3, 1}), b = Tensor::zeros({1});
    w.requires_grad_();
    b.requires_grad_();
    auto opt = make_optimizer(std::vector<Tensor>{w, b});
    float loss_value = 0.f;
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      Tensor d = matmul(x, w) + b - y;
      Tensor loss = mean(d * d);
      loss.backward();
      opt.step();
      loss_value = loss.item();
    }
    // Converged: loss near 0 and the weights at the truth. 1e-3 absolute on weights of order 1
    // is far tighter than where they start (distance ~2.6) yet loose for float32 at the optimum.
    CHECK(loss_value < 1e-5f);
    std::vector<float> wv = w.to_vector();
    for (int k = 0; k < 3; ++k) CHECK(wv[k] == doctest::Approx(w_true[k]).epsilon(1e-3));
    CHECK(b.item() == doctest::Approx(b_true).epsilon(1e-3));
  };
  fit([](std::vector<Tensor> ps) { return SGD(ps, {.lr = 0.1f, .momentum = 0.9f}); }, 300);
  fit(
      [](std::vector<Tensor> ps) {
        return SGD(ps, {.lr = 0.05f, .momentum = 0.9f, .nesterov = true});
      },
      300);
  // Adam's steps are ~lr until m / sqrt(v) shrinks: a rate decaying to 0 settles it.
  auto adam_fit = [&](auto make) {
    fit([&](std::vector<Tensor> ps) { return Scheduled<decltype(make(ps))>{make(ps)}; }, 800);
  };
  adam_fit([](std::vector<Tensor> ps) { return Adam(ps, {.lr = 0.05f}); });
  adam_fit([](std::vector<Tensor> ps) { return AdamW(ps, {.lr = 0.05f, .weight_decay = 1e-3f}); });
}
