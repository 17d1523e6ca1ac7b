// test_stored_dtype.cpp: the float <-> F16 / BF16 / I64 conversions of engine/io/stored_dtype.h.
//   - F16 writing against the compiler's own _Float16 conversion (IEEE round to nearest even) on
//     two million floats spread over every exponent, and by hand on the ties and the edges;
//   - F16 and BF16 reading is exact: every one of the 65536 patterns comes back through float;
//   - I64 refuses what the other side cannot hold.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/io/stored_dtype.h"
#include "kernels/bf16.h"

using namespace forge;

namespace {

float from_bits(uint32_t bits) {
  return std::bit_cast<float>(bits);
}

bool is_f16_nan(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}

}  // namespace

TEST_CASE("stored dtype: names round trip and unknown names are refused") {
  for (StoredDtype d : {StoredDtype::f32, StoredDtype::f16, StoredDtype::bf16, StoredDtype::i64})
    CHECK(parse_stored_dtype(stored_dtype_name(d)) == d);
  CHECK(parse_stored_dtype("bf16") == StoredDtype::bf16);
  CHECK(!parse_stored_dtype("F64"));
  CHECK(!parse_stored_dtype("Bf16"));
  CHECK(stored_dtype_bytes(StoredDtype::f16) == 2);
  CHECK(stored_dtype_bytes(StoredDtype::i64) == 8);
}

TEST_CASE("stored dtype: F16 rounds to nearest even at the ties and edges") {
  CHECK(float_to_f16_bits(1.f) == 0x3c00);
  CHECK(float_to_f16_bits(-2.f) == 0xc000);
  CHECK(float_to_f16_bits(-0.f) == 0x8000);
  CHECK(float_to_f16_bits(1.f + 0x1p-11f) == 0x3c00);             // tie: down to the even 1.0
  CHECK(float_to_f16_bits(1.f + 3 * 0x1p-11f) == 0x3c02);         // tie: up to the even mantissa 2
  CHECK(float_to_f16_bits(1.f + 0x1p-11f + 0x1p-20f) == 0x3c01);  // just above the tie
  CHECK(float_to_f16_bits(65504.f) == 0x7bff);
  CHECK(float_to_f16_bits(65519.f) == 0x7bff);
  CHECK(float_to_f16_bits(65520.f) == 0x7c00);  // the tie above the largest finite
  CHECK(float_to_f16_bits(-INFINITY) == 0xfc00);
  CHECK(float_to_f16_bits(0x1p-24f) == 0x0001);  // smallest subnormal
  CHECK(float_to_f16_bits(0x1p-25f) == 0x0000);  // half of it: tie to the even zero
  CHECK(float_to_f16_bits(0x1.0002p-25f) == 0x0001);
  CHECK(float_to_f16_bits(3 * 0x1p-25f) == 0x0002);             // 1.5 units: tie to even 2
  CHECK(float_to_f16_bits(0x1p-14f - 0x1p-25f) == 0x0400);      // tie into the smallest normal
  CHECK(float_to_f16_bits(-from_bits(0x00000001u)) == 0x8000);  // a float subnormal
  CHECK(is_f16_nan(float_to_f16_bits(NAN)));
  CHECK(is_f16_nan(float_to_f16_bits(from_bits(0xff800001u))));
}

#if defined(__FLT16_MAX__)
TEST_CASE("stored dtype: F16 writing agrees with the compiler's _Float16 on 2 million floats") {
  // Every 2147th bit pattern: all exponents, both signs, mantissas spread over their range.
  size_t checked = 0, mismatches = 0;
  for (uint64_t u = 0; u <= 0xffffffffull; u += 2147) {
    const float x = from_bits(static_cast<uint32_t>(u));
    const uint16_t mine = float_to_f16_bits(x);
    const uint16_t theirs = std::bit_cast<uint16_t>(static_cast<_Float16>(x));
    ++checked;
    if (std::isnan(x) ? !is_f16_nan(mine) : mine != theirs) {
      if (++mismatches > 5) continue;  // the first five are enough to see the pattern
      CAPTURE(u);
      CHECK(mine == theirs);
    }
  }
  CHECK(checked > 2'000'000);
  CHECK(mismatches == 0);
}
#endif

TEST_CASE("stored dtype: every F16 and BF16 pattern reads exactly and writes back to itself") {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = f16_bits_to_float(bits);
    if (is_f16_nan(bits)) {
      CHECK(std::isnan(f));
      continue;
    }
#if defined(__FLT16_MAX__)
    CHECK(f == static_cast<float>(std::bit_cast<_Float16>(bits)));
#endif
    CHECK(float_to_f16_bits(f) == bits);

    const float b = bf16_to_float(bf16_from_bits(bits));
    CHECK(std::bit_cast<uint32_t>(b) == uint32_t(h) << 16);
    if (!std::isnan(b)) CHECK(float_to_bf16_bits(b) == bits);
  }
}

TEST_CASE("stored dtype: encode and decode through bytes, I64 refusing what it cannot hold") {
  const std::vector<float> values = {1.f, -2.5f, 1.f + 0x1p-8f, 1.f + 3 * 0x1p-8f};
  std::vector<unsigned char> bytes(values.size() * 8);
  std::vector<float> back(values.size());

  REQUIRE(encode_floats(StoredDtype::bf16, values.data(), values.size(), bytes.data()) == 4);
  REQUIRE(decode_floats(StoredDtype::bf16, bytes.data(), 4, back.data()) == 4);
  CHECK(back == std::vector<float>{1.f, -2.5f, 1.f, 1.f + 0x1p-6f});  // ties to even
  CHECK(bytes[0] == 0x80);                                            // little-endian 0x3f80
  CHECK(bytes[1] == 0x3f);

  REQUIRE(encode_floats(StoredDtype::f16, values.data(), values.size(), bytes.data()) == 4);
  REQUIRE(decode_floats(StoredDtype::f16, bytes.data(), 4, back.data()) == 4);
  CHECK(back == values);  // all four are F16 values

  const std::vector<float> integers = {0.f, -7.f, 0x1p40f, -0x1p63f};
  REQUIRE(encode_floats(StoredDtype::i64, integers.data(), 4, bytes.data()) == 4);
  REQUIRE(decode_floats(StoredDtype::i64, bytes.data(), 4, back.data()) == 4);
  CHECK(back == integers);
  for (float bad : {0.5f, NAN, INFINITY, 0x1p63f}) {
    CAPTURE(bad);
    const std::vector<float> v = {3.f, bad};
    CHECK(encode_floats(StoredDtype::i64, v.data(), 2, bytes.data()) == 1);
  }
  for (int64_t bad : {(int64_t(1) << 24) + 1, INT64_MAX, INT64_MIN + 1}) {
    CAPTURE(bad);
    const int64_t v[2] = {5, bad};
    CHECK(decode_floats(StoredDtype::i64, reinterpret_cast<const unsigned char*>(v), 2,
                        back.data()) == 1);
  }
}
