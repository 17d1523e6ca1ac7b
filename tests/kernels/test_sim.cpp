// test_sim.cpp: the emulator (kernels/sim) runs CUDA's execution model faithfully and catches the
// kernel bugs it promises to catch. CTest runs this executable in both lane orders
// (FORGE_SIM_ORDER); the order-sensitive tests also switch the order themselves.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "tests/kernels/sim_test_kernels.h"

namespace st = forge::gpu_sim::sim_test;
using forge::sim::Order;

namespace {

// Sets the emulator's order for one scope and restores the previous one.
class OrderScope {
 public:
  explicit OrderScope(Order order) : saved_(forge::sim::order()) { forge::sim::set_order(order); }
  ~OrderScope() { forge::sim::set_order(saved_); }

 private:
  Order saved_;
};

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

constexpr int kM = 37, kN = 29, kK = 53;  // multiples of no tile size

std::vector<float> matmul_on_sim(const std::vector<float>& a, const std::vector<float>& b,
                                 bool second_syncthreads) {
  std::vector<float> c(kM * kN, 0.0f);
  st::tiled_matmul(a.data(), b.data(), c.data(), kM, kN, kK, second_syncthreads);
  return c;
}

std::vector<float> matmul_on_host(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> c(kM * kN);
  for (int i = 0; i < kM; ++i)
    for (int j = 0; j < kN; ++j) {
      double acc = 0;
      for (int p = 0; p < kK; ++p) acc += double(a[i * kK + p]) * b[p * kN + j];
      c[i * kN + j] = float(acc);
    }
  return c;
}

// Largest |x - y| over two equally long vectors.
float max_difference(const std::vector<float>& x, const std::vector<float>& y) {
  float worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

// |entries| <= 1, k = 53 products: float summation error stays below k * eps * k ~ 3.4e-4.
constexpr float kMatmulTolerance = kK * kK * 1.2e-7f;

__global__ void throwing_kernel(int thrower) {
  if (int(threadIdx.x) == thrower) throw std::domain_error("thrown by a kernel body");
  __syncthreads();
}

}  // namespace

TEST_CASE("tiled matmul with both __syncthreads agrees with a host loop in both orders") {
  const auto a = random_floats(kM * kK, 1), b = random_floats(kK * kN, 2);
  const auto expected = matmul_on_host(a, b);
  for (Order order : {Order::forward, Order::reverse}) {
    OrderScope scope(order);
    CHECK(max_difference(matmul_on_sim(a, b, true), expected) < kMatmulTolerance);
  }
}

TEST_CASE("tiled matmul missing its second __syncthreads is caught by the order switch") {
  const auto a = random_floats(kM * kK, 1), b = random_floats(kK * kN, 2);
  const auto expected = matmul_on_host(a, b);
  std::vector<float> forward, reverse;
  {
    OrderScope scope(Order::forward);
    forward = matmul_on_sim(a, b, false);
  }
  {
    OrderScope scope(Order::reverse);
    reverse = matmul_on_sim(a, b, false);
  }
  const bool caught = max_difference(forward, reverse) > kMatmulTolerance ||
                      max_difference(forward, expected) > kMatmulTolerance ||
                      max_difference(reverse, expected) > kMatmulTolerance;
  CHECK(caught);
}

TEST_CASE("a __syncthreads that half the block never reaches is diagnosed") {
  std::vector<float> out(64);
  CHECK_THROWS_WITH_AS(st::divergent_syncthreads(out.data()),
                       doctest::Contains("divergent_syncthreads_kernel"), std::runtime_error);
  CHECK_THROWS_WITH_AS(st::divergent_syncthreads(out.data()),
                       doctest::Contains("never reached by 32 threads that exited"),
                       std::runtime_error);
}

TEST_CASE("threads waiting at different barriers are diagnosed") {
  std::vector<float> out(64);
  CHECK_THROWS_WITH_AS(st::mismatched_barriers(out.data()),
                       doctest::Contains("mismatched_barriers_kernel"), std::runtime_error);
  CHECK_THROWS_WITH_AS(st::mismatched_barriers(out.data()), doctest::Contains("different barriers"),
                       std::runtime_error);
}

TEST_CASE("a shuffle whose mask names an exited lane is diagnosed") {
  std::vector<float> out(32);
  CHECK_THROWS_WITH_AS(st::shuffle_with_exited_lane(out.data()),
                       doctest::Contains("shuffle_with_exited_lane_kernel"), std::runtime_error);
  CHECK_THROWS_WITH_AS(st::shuffle_with_exited_lane(out.data()),
                       doctest::Contains("names lane 5 (5,0,0), which has exited"),
                       std::runtime_error);
}

TEST_CASE("a shuffle reading a lane outside its mask is diagnosed") {
  std::vector<float> out(32);
  CHECK_THROWS_WITH_AS(
      st::shuffle_outside_mask(out.data()),
      doctest::Contains("reads lane 20 with __shfl_sync, which is not in its mask"),
      std::runtime_error);
}

TEST_CASE("a full mask in a partial warp names absent lanes and is diagnosed") {
  std::vector<float> out(48);
  CHECK_THROWS_WITH_AS(st::shuffle_in_partial_warp(out.data()),
                       doctest::Contains("names lanes absent from its warp"), std::runtime_error);
}

TEST_CASE("the emulator still runs kernels correctly after diagnosing a broken one") {
  std::vector<float> out(64);
  CHECK_THROWS_AS(st::mismatched_barriers(out.data()), std::runtime_error);
  int counter = 0;
  st::count_threads(dim3(3), dim3(64), &counter);
  CHECK(counter == 3 * 64);
}

TEST_CASE("warp reductions with __shfl_down_sync and __shfl_xor_sync, and __ballot_sync") {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = float(i % 7) - 3.0f + (i >= 32 ? 0.25f : 0.0f);
  std::vector<float> down(2), all(64);
  std::vector<unsigned> ballots(2);
  st::warp_reductions(x.data(), down.data(), all.data(), ballots.data());
  for (int w = 0; w < 2; ++w) {
    float sum = 0;
    unsigned bits = 0;
    for (int lane = 0; lane < 32; ++lane) {
      sum += x[w * 32 + lane];
      if (x[w * 32 + lane] > 0) bits |= 1u << lane;
    }
    // Small integers and quarters: every partial sum is exact in float.
    CHECK(down[w] == sum);
    CHECK(ballots[w] == bits);
    for (int lane = 0; lane < 32; ++lane) CHECK(all[w * 32 + lane] == sum);
  }
}

TEST_CASE("block reduction of 1000 elements: shared memory, shuffles, float atomicAdd") {
  const int n = 1000;
  const auto x = random_floats(n, 3);
  double expected = 0, magnitude = 0;
  for (float v : x) expected += v, magnitude += std::abs(v);
  float sum = 0;
  st::block_reduce_sum(x.data(), n, &sum);
  // Any order of float additions is within n * eps * sum|x| of the exact sum.
  CHECK(std::abs(sum - expected) <= n * 1.2e-7 * magnitude);
}

TEST_CASE("integer atomics across blocks: max, min, add, exchange, compare-and-swap") {
  const int blocks = 5, threads = blocks * 256;
  std::vector<int> out(5, 0);
  unsigned long long exchanged = 0;
  st::integer_atomics(blocks, out.data(), &exchanged);
  int most = 0, least = 0;
  unsigned long long all_indices = 0;
  for (int t = 0; t < threads; ++t) {
    const int value = (t * 37) % 1001 - 500;
    most = std::max(most, value), least = std::min(least, value);
    all_indices += t;
  }
  CHECK(out[0] == most);
  CHECK(out[1] == least);
  CHECK(out[2] == threads);
  // The exchanges form a chain 0 -> t1 -> t2 ...: every index but the last one stored was seen.
  CHECK(exchanged + out[3] == all_indices);
  CHECK(out[4] >= 1);
  CHECK(out[4] <= threads);
}

TEST_CASE("dynamic shared memory read before it is written is NaN") {
  const int n = 48;
  std::vector<float> out(2 * n, 0.0f);
  st::read_dynamic_smem(out.data(), n);
  for (int i = 0; i < n; ++i) {
    CHECK(std::isnan(out[i]));
    CHECK(out[n + i] == float(i) * 0.5f);
  }
}

TEST_CASE("3-D grids and blocks see their coordinates") {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const unsigned threads = 3 * 2 * 2 * 4 * 3 * 2;
  std::vector<unsigned> out(12 * threads, ~0u);
  st::index_3d(grid, block, out.data());
  unsigned t = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx, ++t) {
              const std::vector<unsigned> expected{bx, by, bz, tx, ty, tz, 4, 3, 2, 3, 2, 2};
              CHECK(std::vector<unsigned>(out.begin() + 12 * t, out.begin() + 12 * (t + 1)) ==
                    expected);
            }
}

TEST_CASE("invalid launch configurations are refused naming the kernel") {
  const auto refused = [](dim3 grid, dim3 block, size_t smem, const char* why) {
    CHECK_THROWS_WITH_AS(st::launch_empty(grid, block, smem),
                         doctest::Contains("empty_kernel: invalid launch"), std::runtime_error);
    CHECK_THROWS_WITH_AS(st::launch_empty(grid, block, smem), doctest::Contains(why),
                         std::runtime_error);
  };
  refused(dim3(1), dim3(1025), 0, "more than 1024 threads");
  refused(dim3(1), dim3(32, 32, 2), 0, "more than 1024 threads");
  refused(dim3(0), dim3(32), 0, "dimension is zero");
  refused(dim3(1), dim3(32, 0), 0, "dimension is zero");
  refused(dim3(1), dim3(1, 1, 65), 0, "blockDim.z above 64");
  refused(dim3(1, 65536), dim3(32), 0, "grid dimension");
  refused(dim3(1), dim3(32), 227 * 1024 + 1, "227 KiB");
  CHECK_NOTHROW(st::launch_empty(dim3(1), dim3(1024), 227 * 1024));
}

TEST_CASE("an exception thrown in a kernel body comes back from the launch") {
  for (int thrower : {0, 37, 63}) {
    CHECK_THROWS_WITH_AS(FORGE_LAUNCH(throwing_kernel, 2, 64, 0, 0, thrower),
                         "thrown by a kernel body", std::domain_error);
  }
  int counter = 0;
  st::count_threads(dim3(2), dim3(64), &counter);
  CHECK(counter == 2 * 64);
}

TEST_CASE("the pool and its fibers are reused across many launches") {
  int counter = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) st::count_threads(dim3(4), dim3(64), &counter);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(counter == 200 * 4 * 64);
  MESSAGE("200 launches of 4 blocks x 64 threads: " << seconds * 1e6 / 200 << " us a launch");
}
