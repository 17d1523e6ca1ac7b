// test_autograd.cpp: the graph walk: accumulation, shared subexpressions, no-grad, detach,
// zero_grad, and freeing the graph after backward.
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/ops.h"

using namespace forge;

TEST_CASE("autograd: chain rule through a shared subexpression") {
  // y = (x * x + x) summed; dy/dx = 2x + 1, x used three times.
  Tensor x = Tensor::from_vector({1, -2, 3}, {3});
  x.requires_grad_();
  Tensor y = sum(add(mul(x, x), x));
  CHECK(y.item() == doctest::Approx(1 + 1 + 4 - 2 + 9 + 3));
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{3, -3, 7});
}

TEST_CASE("autograd: gradients accumulate across backward calls until zero_grad") {
  Tensor x = Tensor::from_vector({2}, {1});
  x.requires_grad_();
  sum(mul_scalar(x, 3.f)).backward();
  sum(mul_scalar(x, 3.f)).backward();
  CHECK(x.grad().item() == doctest::Approx(6));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(mul_scalar(x, 3.f)).backward();
  CHECK(x.grad().item() == doctest::Approx(3));
}

TEST_CASE("autograd: no-grad guard and detach record nothing") {
  Tensor x = Tensor::from_vector({1, 2}, {2});
  x.requires_grad_();
  {
    NoGradGuard guard;
    Tensor y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(y.grad_fn());
  }
  CHECK(grad_enabled());
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == x.storage());
  Tensor y = mul(d, x);  // only the x path carries a gradient
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{1, 2});
  CHECK_THROWS_WITH_AS(sum(d).backward(), doctest::Contains("does not require a gradient"),
                       std::invalid_argument);
}

TEST_CASE("autograd: the graph is freed after backward") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3});
  x.requires_grad_();
  Tensor h = exp(x);  // saves its output for backward
  std::weak_ptr<Storage> saved = h.storage();
  Tensor y = sum(h);
  h = Tensor();  // the graph alone keeps exp's output alive now
  CHECK_FALSE(saved.expired());
  y.backward();
  CHECK(saved.expired());  // freed with the node that saved it
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("a second time"), std::logic_error);
}

TEST_CASE("autograd: backward needs a scalar") {
  Tensor x = Tensor::from_vector({1, 2}, {2});
  x.requires_grad_();
  CHECK_THROWS_WITH_AS(mul(x, x).backward(), doctest::Contains("needs a scalar"),
                       std::invalid_argument);
}

TEST_CASE("autograd: the leaf hook names each leaf once, when its gradient is final") {
  // y = sum(w * (w * x) + b): w feeds two nodes, so its gradient is final only after both ran.
  Tensor x = Tensor::from_vector({1, 2}, {2});
  Tensor w = Tensor::from_vector({3, -1}, {2});
  Tensor b = Tensor::from_vector({0.5f, 0.5f}, {2});
  w.requires_grad_();
  b.requires_grad_();
  std::vector<std::pair<const TensorImpl*, std::vector<float>>> named;
  {
    LeafGradientScope hook(
        [&](const Tensor& leaf) { named.emplace_back(&leaf.impl(), leaf.grad().to_vector()); });
    sum(add(mul(w, mul(w, x)), b)).backward();
  }
  REQUIRE(named.size() == 2);
  CHECK(named[0].first != named[1].first);
  for (const auto& [leaf, grad_then] : named) {
    const Tensor& t = leaf == &w.impl() ? w : b;
    CHECK((leaf == &w.impl() || leaf == &b.impl()));
    CHECK(grad_then == t.grad().to_vector());  // what the hook saw is the final gradient
  }
  CHECK(w.grad().to_vector() == std::vector<float>{6, -4});  // d/dw w^2 x = 2 w x
  // Outside the scope nothing is called.
  named.clear();
  sum(mul(w, x)).backward();
  CHECK(named.empty());
}
