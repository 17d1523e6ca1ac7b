// test_mma.cpp: the tensor-core wrappers of kernels/mma.cuh on kernels/sim: the bf16 conversion
// is cuda_bf16.h's bit for bit; mma.sync and ldmatrix put every element where the PTX ISA's
// fragment tables say (the kernels in mma_test_kernels.cu build fragments by those tables, and
// the results are compared with a scalar reference); a kernel with two lanes' fragments swapped
// fails those checks; cp.async data is invisible before its wait. CTest runs this in both lane
// orders.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <ios>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bf16.h"
#include "tests/kernels/mma_test_kernels.h"
// NVIDIA's host implementation of the conversions, the reference (after cuda_compat.h).
#include <cuda_bf16.h>

namespace mt = forge::gpu_sim::mma_test;
using mt::Swap;

namespace {

uint16_t cuda_bits(float x) {
  const __nv_bfloat16 h = __float2bfloat16_rn(x);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---- mma: small integers are exact in bf16 (|x| <= 256) and their products and sums in fp32,
// so the reference D = A B + C is exact and any misplaced element shows.
struct Tiles {
  int count;
  std::vector<uint16_t> a, b;  // bf16 bits, [count][16][16] and [count][16][8]
  std::vector<float> c;        // [count][16][8]
  explicit Tiles(int n) : count(n), a(n * 256), b(n * 128), c(n * 128, 0.f) {}
};

uint16_t bf16_of(float x) {
  return forge::bf16_bits(forge::float_to_bf16(x));
}

std::vector<float> reference(const Tiles& t) {
  std::vector<float> d(t.count * 128);
  for (int q = 0; q < t.count; ++q)
    for (int r = 0; r < 16; ++r)
      for (int n = 0; n < 8; ++n) {
        double sum = t.c[q * 128 + r * 8 + n];
        for (int k = 0; k < 16; ++k)
          sum += double(forge::bf16_to_float(forge::bf16_from_bits(t.a[q * 256 + r * 16 + k]))) *
                 forge::bf16_to_float(forge::bf16_from_bits(t.b[q * 128 + k * 8 + n]));
        d[q * 128 + r * 8 + n] = float(sum);
      }
  return d;
}

std::vector<float> run_mma(const Tiles& t, Swap swap) {
  std::vector<float> d(t.count * 128, -1.f);
  mt::mma_tiles(t.a.data(), t.b.data(), t.c.data(), d.data(), t.count, swap);
  return d;
}

// Number of output elements that differ from the reference; the first is described in `first`.
int mismatches(const std::vector<float>& got, const std::vector<float>& want, std::string* first) {
  int count = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i] && count++ == 0 && first)
      *first = "tile " + std::to_string(i / 128) + " D[" + std::to_string(i % 128 / 8) + "][" +
               std::to_string(i % 8) + "] = " + std::to_string(got[i]) + ", want " +
               std::to_string(want[i]);
  return count;
}

Tiles random_integer_tiles(int count, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> small(-8, 8), wide(-64, 64);
  Tiles t(count);
  for (auto& x : t.a) x = bf16_of(float(small(gen)));
  for (auto& x : t.b) x = bf16_of(float(small(gen)));
  for (auto& x : t.c) x = float(wide(gen));
  return t;
}

// ---- ldmatrix: matrix j's element (r, c) is the distinct value 1 + 64 j + 8 r + c.
uint16_t element(int j, int r, int c) {
  return uint16_t(1 + 64 * j + 8 * r + c);
}

std::vector<uint32_t> expected_fragments(int matrices, bool transposed) {
  std::vector<uint32_t> want(32 * matrices);
  for (int lane = 0; lane < 32; ++lane)
    for (int j = 0; j < matrices; ++j) {
      const int g = lane / 4, p = lane % 4 * 2;
      const uint32_t lo = transposed ? element(j, p, g) : element(j, g, p);
      const uint32_t hi = transposed ? element(j, p + 1, g) : element(j, g, p + 1);
      want[lane * matrices + j] = lo | hi << 16;
    }
  return want;
}

std::vector<uint32_t> run_ldmatrix(int matrices, bool transposed, Swap swap) {
  std::vector<uint16_t> m(64 * matrices);
  for (int j = 0; j < matrices; ++j)
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c) m[j * 64 + r * 8 + c] = element(j, r, c);
  std::vector<uint32_t> out(32 * matrices, 0);
  mt::ldmatrix_fragments(m.data(), matrices, transposed, out.data(), swap);
  return out;
}

}  // namespace

TEST_CASE("bf16: float_to_bf16 is cuda_bf16.h's __float2bfloat16_rn bit for bit") {
  int differ = 0;
  uint32_t first = 0;
  const auto compare = [&](uint32_t u) {
    const float x = from_bits(u);
    if (forge::bf16_bits(forge::float_to_bf16(x)) != cuda_bits(x) && differ++ == 0) first = u;
  };
  // Every upper half (sign, exponent: subnormals, infinities, NaNs; mantissa) with the lower
  // halves around the rounding boundary: exact, just below / at / just above the tie, maximal.
  for (uint32_t high = 0; high < 0x10000u; ++high)
    for (uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x4000u, 0xc000u})
      compare(high << 16 | low);
  // And a sample of every bit pattern: one in 251 (a prime stride, about 17 million values).
  for (uint64_t u = 0; u <= 0xffffffffull; u += 251) compare(uint32_t(u));
  INFO("first difference at float bits 0x" << std::hex << first);
  CHECK(differ == 0);
  // Spot checks of the rule itself.
  CHECK(forge::bf16_bits(forge::float_to_bf16(from_bits(0x3f808000u))) == 0x3f80);  // tie, even
  CHECK(forge::bf16_bits(forge::float_to_bf16(from_bits(0x3f818000u))) == 0x3f82);  // tie, odd up
  CHECK(forge::bf16_bits(forge::float_to_bf16(from_bits(0x7f7fffffu))) == 0x7f80);  // max -> inf
  CHECK(forge::bf16_bits(forge::float_to_bf16(from_bits(0xffc00001u))) == 0x7fff);  // NaN
  CHECK(forge::bf16_bits(forge::float_to_bf16(from_bits(0x00008000u))) == 0x0000);  // subnormal tie
}

TEST_CASE("bf16: bf16_to_float is exact, as cuda_bf16.h's __bfloat162float, for all 65536 values") {
  int differ = 0;
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    __nv_bfloat16_raw raw;
    raw.x = uint16_t(bits);
    const float want = __bfloat162float(__nv_bfloat16(raw));
    const float got = forge::bf16_to_float(forge::bf16_from_bits(uint16_t(bits)));
    uint32_t w, g;
    std::memcpy(&w, &want, 4);
    std::memcpy(&g, &got, 4);
    differ += (w != g) || (g != bits << 16);
  }
  CHECK(differ == 0);
}

TEST_CASE("mma.sync m16n8k16 bf16: random integer tiles match the scalar reference exactly") {
  const Tiles t = random_integer_tiles(8, 11);
  std::string first;
  CHECK_MESSAGE(mismatches(run_mma(t, Swap::none), reference(t), &first) == 0, first);
}

TEST_CASE("mma.sync m16n8k16 bf16: every A, B and C element reaches the right D elements") {
  // One tile per element position: A one-hot at (r, k) against distinct B values gives D row r =
  // B row k and zero elsewhere; B one-hot at (k, n) against distinct A gives D column n = A column
  // k; C distinct against zero A, B must come back unchanged.
  Tiles t(256 + 128 + 1);
  for (int q = 0; q < t.count; ++q) {
    for (int e = 0; e < 256; ++e)
      t.a[q * 256 + e] = q < 256   ? bf16_of(q == e ? 1.f : 0.f)
                         : q < 384 ? bf16_of(float(1 + e))
                                   : 0;
    for (int e = 0; e < 128; ++e) {
      t.b[q * 128 + e] = q < 256   ? bf16_of(float(1 + e))
                         : q < 384 ? bf16_of(q - 256 == e ? 1.f : 0.f)
                                   : 0;
      t.c[q * 128 + e] = q == 384 ? float(1000 + e) : 0.f;
    }
  }
  std::string first;
  CHECK_MESSAGE(mismatches(run_mma(t, Swap::none), reference(t), &first) == 0, first);
}

TEST_CASE("mma.sync m16n8k16 bf16: a kernel with two lanes' fragments swapped fails the check") {
  const Tiles t = random_integer_tiles(4, 12);
  const std::vector<float> want = reference(t);
  CHECK(mismatches(run_mma(t, Swap::a_lanes_0_1), want, nullptr) > 0);
  CHECK(mismatches(run_mma(t, Swap::b_lanes_0_4), want, nullptr) > 0);
}

TEST_CASE("mma.sync accumulates in fp32 from exactly converted bf16 inputs") {
  // 1 + 2^-7 is a bf16 (8 significant bits); its square 1 + 2^-6 + 2^-14 needs 15 bits: exact in
  // fp32, lost in bf16. 16 such products summed into C = 0 give 16 + 2^-2 + 2^-10, exact in fp32.
  Tiles t(1);
  for (auto& x : t.a) x = bf16_of(1.f + 1.f / 128);
  for (auto& x : t.b) x = bf16_of(1.f + 1.f / 128);
  const std::vector<float> d = run_mma(t, Swap::none);
  CHECK(d[0] == 16.f + 1.f / 4 + 1.f / 1024);
  CHECK(d == reference(t));
}

TEST_CASE("ldmatrix x1/x2/x4, plain and .trans: every lane's registers hold the ISA's elements") {
  for (int matrices : {1, 2, 4})
    for (bool transposed : {false, true}) {
      CAPTURE(matrices);
      CAPTURE(transposed);
      const std::vector<uint32_t> got = run_ldmatrix(matrices, transposed, Swap::none);
      const std::vector<uint32_t> want = expected_fragments(matrices, transposed);
      int wrong = 0;
      for (size_t i = 0; i < got.size(); ++i) wrong += got[i] != want[i];
      CHECK(wrong == 0);
      // The same check on a kernel that swaps lanes 0 and 1 must fail.
      CHECK(run_ldmatrix(matrices, transposed, Swap::result_lanes_0_1) != want);
    }
}

TEST_CASE("cp.async: a group's data is visible after its wait_group, not before") {
  std::vector<float> first(128), second(128);
  for (int i = 0; i < 128; ++i) {
    first[i] = float(i);
    second[i] = float(1000 + i);
  }
  std::vector<float> after_wait_1(128), before_wait_0(128), after_wait_0(128);
  mt::cp_async_groups(first.data(), second.data(), after_wait_1.data(), before_wait_0.data(),
                      after_wait_0.data());
  CHECK(after_wait_1 == first);
  CHECK(after_wait_0 == second);
  // Read before its wait: still the 0xFF bytes dynamic shared memory starts with (NaN), so a
  // kernel that forgets the wait computes garbage on the sim.
  int stale = 0;
  for (float x : before_wait_0) stale += std::isnan(x);
  CHECK(stale == 128);
}

TEST_CASE("cp.async: 4, 8 and 16 byte copies (.ca and .cg), zero fill past src-size") {
  std::vector<uint8_t> src(32 * 80), out(32 * 80, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 7 % 251);
  mt::cp_async_sizes(src.data(), out.data());
  int wrong = 0;
  for (int t = 0; t < 32; ++t)
    for (int e = 0; e < 80; ++e) {
      const bool copied = e < 4 || (e >= 16 && e < 24) || (e >= 32 && e < 69);
      const uint8_t want = copied ? src[80 * t + e] : e >= 69 ? 0 : 0xFF;
      wrong += out[80 * t + e] != want;
    }
  CHECK(wrong == 0);
}

TEST_CASE("the emulator rejects a misaligned cp.async and an mma from a partial warp") {
  alignas(16) uint8_t src[16] = {};
  CHECK_THROWS_WITH_AS(mt::cp_async_misaligned(src), doctest::Contains("aligned to 16 bytes"),
                       std::runtime_error);
  std::vector<float> out(16);
  CHECK_THROWS_WITH_AS(mt::mma_partial_warp(out.data()), doctest::Contains("partial"),
                       std::runtime_error);
}
