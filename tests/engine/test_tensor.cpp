// test_tensor.cpp: creation, views, host transfer, seeded generators and shape errors.
#include <doctest/doctest.h>

#include "engine/ops.h"
#include "engine/tensor.h"

using namespace forge;

TEST_CASE("tensor: creation, shape and contiguous strides") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.strides() == Shape{3, 1});
  CHECK(t.numel() == 6);
  CHECK(t.size(-1) == 3);
  CHECK(t.is_contiguous());
  CHECK(t.device() == Device::cpu);
  CHECK(Tensor::zeros({3}).to_vector() == std::vector<float>{0, 0, 0});
  CHECK(Tensor::full({2}, 2.5f).to_vector() == std::vector<float>{2.5f, 2.5f});
  CHECK_THROWS_WITH_AS(Tensor::from_vector({1, 2, 3}, {2, 2}),
                       doctest::Contains("do not fill shape [2, 2]"), std::invalid_argument);
}

TEST_CASE("tensor: views share storage and read in logical order") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  CHECK(tt.shape() == Shape{3, 2});
  CHECK_FALSE(tt.is_contiguous());
  CHECK(tt.storage() == t.storage());
  CHECK(tt.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(tt.contiguous().is_contiguous());
  CHECK(tt.contiguous().to_vector() == tt.to_vector());
  Tensor s = t.slice(1, 1, 3);
  CHECK(s.shape() == Shape{2, 2});
  CHECK(s.to_vector() == std::vector<float>{1, 2, 4, 5});
  CHECK(t.reshape({3, -1}).shape() == Shape{3, 2});
  CHECK(t.reshape({6}).to_vector() == std::vector<float>{0, 1, 2, 3, 4, 5});
  // reshape of a non-contiguous view copies first, so the values stay in logical order
  CHECK(tt.reshape({6}).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor p = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2}).permute({2, 0, 1});
  CHECK(p.to_vector() == std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7});
}

TEST_CASE("tensor: errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [2, 3] and [4, 5]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("[2, 3] x [4, 5]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(a.reshape({4}), doctest::Contains("cannot view shape [2, 3] as [4]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(a.slice(1, 2, 5), doctest::Contains("slice"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(a.permute({0, 0}), doctest::Contains("permute"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(a.item(), doctest::Contains("more than one element"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_device("tpu"), doctest::Contains("unknown device 'tpu'"),
                       std::invalid_argument);
}

TEST_CASE("generator: seeded, repeatable, with the right moments") {
  Generator g1(42), g2(42), g3(43);
  Tensor a = Tensor::randn({1000}, g1), b = Tensor::randn({1000}, g2),
         c = Tensor::randn({1000}, g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  // Mean and variance of 20000 normals: standard errors 0.007 and 0.01, checked at ~5 sigma.
  Generator g(7);
  std::vector<float> v = Tensor::randn({20000}, g, 1.f, 2.f).to_vector();
  double m = 0, s2 = 0;
  for (float x : v) m += x;
  m /= v.size();
  for (float x : v) s2 += (x - m) * (x - m);
  s2 /= v.size();
  CHECK(m == doctest::Approx(1.0).epsilon(0.08));
  CHECK(s2 == doctest::Approx(4.0).epsilon(0.05));
  std::vector<float> u = Tensor::uniform({20000}, g, -1.f, 3.f).to_vector();
  for (float x : u) REQUIRE((x >= -1.f && x < 3.f));
  // counter_uniform is a pure function of (seed, index)
  CHECK(counter_uniform(5, 17) == counter_uniform(5, 17));
  CHECK(counter_uniform(5, 17) != counter_uniform(6, 17));
}
