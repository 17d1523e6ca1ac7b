// stored_dtype.cpp: float <-> F16 / BF16 / I64 conversions (the rounding rules in stored_dtype.h),
// in integer arithmetic on the bit patterns so that no floating-point mode (flush-to-zero,
// denormals-are-zero) can change a result.
#include "engine/io/stored_dtype.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>

#include "kernels/bf16.h"

namespace forge {

static_assert(std::endian::native == std::endian::little,
              "the stored element types are little-endian; a big-endian host would need swaps");

const char* stored_dtype_name(StoredDtype dtype) {
  switch (dtype) {
    case StoredDtype::f32:
      return "F32";
    case StoredDtype::f16:
      return "F16";
    case StoredDtype::bf16:
      return "BF16";
    case StoredDtype::i64:
      return "I64";
  }
  return "?";
}

std::optional<StoredDtype> parse_stored_dtype(const std::string& name) {
  for (StoredDtype d : {StoredDtype::f32, StoredDtype::f16, StoredDtype::bf16, StoredDtype::i64}) {
    std::string lower = stored_dtype_name(d);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == stored_dtype_name(d) || name == lower) return d;
  }
  return std::nullopt;
}

size_t stored_dtype_bytes(StoredDtype dtype) {
  switch (dtype) {
    case StoredDtype::f32:
      return 4;
    case StoredDtype::f16:
      return 2;
    case StoredDtype::bf16:
      return 2;
    case StoredDtype::i64:
      return 8;
  }
  return 0;
}

uint16_t float_to_f16_bits(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;           // |x|
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (a >= 0x47800000u) return sign | 0x7c00u;  // |x| >= 2^16: infinity (or overflow to it)
  if (a < 0x38800000u) {                        // |x| < 2^-14: an F16 subnormal or zero
    if (a <= 0x33000000u) return sign;          // |x| <= 2^-25, half the smallest subnormal
    // |x| = m 2^(e - 150) with the implicit bit in m; in units of 2^-24 that is m >> (126 - e).
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(a >> 23);  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1u))) ++q;  // may carry into the smallest normal
    return sign | static_cast<uint16_t>(q);
  }
  // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits, rounding; a carry out of
  // the mantissa steps the exponent, up to 0x7c00 (infinity) from 65520 on.
  uint32_t h = (a - (112u << 23)) >> 13;
  const uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

float f16_bits_to_float(uint16_t bits) {
  const uint32_t sign = uint32_t(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t u;
  if (exponent == 31) {
    u = sign | 0x7f800000u | (mantissa << 13);  // infinity, or NaN with its payload
  } else if (exponent != 0) {
    u = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    u = sign;
  } else {  // subnormal m 2^-24: normalise into a float exponent
    uint32_t e = 113;
    while (!(mantissa & 0x400u)) {
      mantissa <<= 1;
      --e;
    }
    u = sign | (e << 23) | ((mantissa & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(u);
}

size_t encode_floats(StoredDtype dtype, const float* values, size_t n, unsigned char* out) {
  switch (dtype) {
    case StoredDtype::f32:
      if (n) std::memcpy(out, values, n * 4);
      return n;
    case StoredDtype::f16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_f16_bits(values[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return n;
    case StoredDtype::bf16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = float_to_bf16_bits(values[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return n;
    case StoredDtype::i64:
      for (size_t i = 0; i < n; ++i) {
        const float x = values[i];
        // [-2^63, 2^63): both bounds are floats, so the comparison is exact.
        if (!std::isfinite(x) || std::trunc(x) != x || x < -0x1p63f || x >= 0x1p63f) return i;
        const int64_t v = static_cast<int64_t>(x);
        std::memcpy(out + 8 * i, &v, 8);
      }
      return n;
  }
  return 0;
}

size_t decode_floats(StoredDtype dtype, const unsigned char* bytes, size_t n, float* out) {
  switch (dtype) {
    case StoredDtype::f32:
      if (n) std::memcpy(out, bytes, n * 4);
      return n;
    case StoredDtype::f16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = f16_bits_to_float(h);
      }
      return n;
    case StoredDtype::bf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        out[i] = bf16_to_float(bf16_from_bits(h));
      }
      return n;
    case StoredDtype::i64:
      for (size_t i = 0; i < n; ++i) {
        int64_t v;
        std::memcpy(&v, bytes + 8 * i, 8);
        const float x = static_cast<float>(v);
        // x may round up to 2^63, which int64 cannot hold: that is never exact.
        if (x >= 0x1p63f || static_cast<int64_t>(x) != v) return i;
        out[i] = x;
      }
      return n;
  }
  return 0;
}

}  // namespace forge
