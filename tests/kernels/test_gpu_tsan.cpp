// test_gpu_tsan.cpp: the attention kernels and two reduction kernels on tiny shapes, small
// enough to run under ThreadSanitizer (scripts/tsan_sim.sh builds this with FORGE_TSAN=ON and
// fails on any report). In an ordinary build it is one more sim-against-CPU check.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/cuda/builtin.h"
#include "engine/ops.h"

using namespace forge;

// Runs f on copies of the inputs on `device` with requires_grad, backward from sum(f * weights),
// and returns the output followed by every input gradient, on the host.
static std::vector<std::vector<float>> run(Device device, const std::vector<Tensor>& inputs,
                                           Tensor (*f)(const std::vector<Tensor>&)) {
  std::vector<Tensor> xs;
  for (const Tensor& t : inputs) xs.push_back(t.to(device).requires_grad_());
  Tensor y = f(xs);
  Generator gen(3);
  sum(mul(y, Tensor::uniform(y.shape(), gen, -1.f, 1.f, device))).backward();
  std::vector<std::vector<float>> out{y.to_vector()};
  for (const Tensor& x : xs) out.push_back(x.grad().to_vector());
  return out;
}

static void check_sim_matches_cpu(const std::vector<Tensor>& inputs,
                                  Tensor (*f)(const std::vector<Tensor>&)) {
  register_builtin_backends();
  const auto cpu = run(Device::cpu, inputs, f), sim = run(Device::sim, inputs, f);
  REQUIRE(cpu.size() == sim.size());
  for (size_t k = 0; k < cpu.size(); ++k)
    for (size_t i = 0; i < cpu[k].size(); ++i)
      // Sums of at most 32 terms of size ~1 in another order: 32 x 2^-23 ~ 4e-6; 1e-4 leaves room.
      CHECK_MESSAGE(std::fabs(cpu[k][i] - sim[k][i]) <= 1e-4f * (1.f + std::fabs(cpu[k][i])),
                    "tensor " << k << " element " << i);
}

TEST_CASE("tsan-sized: attention forward and backward, t = 5, head dim 32") {
  Generator gen(1);
  std::vector<Tensor> qkv;
  for (int i = 0; i < 3; ++i) qkv.push_back(Tensor::randn({1, 2, 5, 32}, gen));
  check_sim_matches_cpu(qkv, [](const std::vector<Tensor>& x) {
    return scaled_dot_product_attention(x[0], x[1], x[2], 0.2f);
  });
}

TEST_CASE("tsan-sized: layer norm and a broadcast sum (block and warp reductions)") {
  Generator gen(2);
  std::vector<Tensor> in{Tensor::randn({3, 37}, gen), Tensor::randn({37}, gen),
                         Tensor::randn({37}, gen)};
  check_sim_matches_cpu(in, [](const std::vector<Tensor>& x) {
    return sum(layer_norm(x[0], x[1], x[2], 1e-5f), {0}, true);
  });
}
