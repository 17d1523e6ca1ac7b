// bf16.h: bfloat16, the 16-bit float the tensor-core kernels take as input: fp32's sign and 8-bit
// exponent with the top 7 of its 23 mantissa bits (8 significant bits with the implicit one), so
// a bf16 is the upper half of an fp32 and converting back is exact.
//
// float -> bf16 rounds to nearest, ties to even, bit for bit as cuda_bf16.h's
// __float2bfloat16_rn: with x the fp32 bits, the result is the upper 16 bits of
// x + 0x7fff + (bit 16 of x) (that carry rounds up exactly when the dropped 16 bits exceed half,
// or equal half and the kept part is odd); every NaN becomes the canonical 0x7fff. Infinities and
// overflow to infinity come out of the same formula (0x7f7fffff... rounds up into 0x7f80).
//
// Under nvcc the type is __nv_bfloat16 and the conversions are CUDA's (cvt.rn.bf16.f32); on
// kernels/sim (and in host code) it is a struct around the uint16_t bits with the same layout.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#endif

namespace forge {

#if defined(__CUDACC__)
using bf16 = __nv_bfloat16;

__host__ __device__ __forceinline__ bf16 float_to_bf16(float x) {
  return __float2bfloat16_rn(x);
}
__host__ __device__ __forceinline__ float bf16_to_float(bf16 x) {
  return __bfloat162float(x);
}
__host__ __device__ __forceinline__ uint16_t bf16_bits(bf16 x) {
  return __bfloat16_as_ushort(x);
}
__host__ __device__ __forceinline__ bf16 bf16_from_bits(uint16_t bits) {
  return __ushort_as_bfloat16(bits);
}

#else
struct bf16 {
  uint16_t bits;
};

inline uint16_t float_to_bf16_bits(float x) {
  uint32_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;  // NaN, any payload or sign
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline bf16 float_to_bf16(float x) {
  return bf16{float_to_bf16_bits(x)};
}
inline float bf16_to_float(bf16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}
inline uint16_t bf16_bits(bf16 x) {
  return x.bits;
}
inline bf16 bf16_from_bits(uint16_t bits) {
  return bf16{bits};
}
#endif

static_assert(sizeof(bf16) == 2, "bf16 is 16 bits on both builds");

}  // namespace forge
