// fast_divmod.cuh: division by a divisor known on the host, as a multiply-high, an add and a
// shift on the device (Granlund and Montgomery, "Division by invariant integers using
// multiplication", PLDI 1994, section 4; the form PyTorch's IntDivider and CUTLASS's FastDivmod
// use). A 64-bit `/` or `%` on a GPU is a software routine of several dozen instructions; a
// strided view's index needs one per dimension per element.
//
// The math, for W-bit unsigned words (W = 32 or 64), a divisor 1 <= d <= 2^(W-1) and a numerator
// 0 <= n < 2^(W-1):
//   l = ceil(log2 d), so 2^(l-1) < d <= 2^l;
//   m = floor(2^W (2^l - d) / d) + 1, which is < 2^W because (2^l - d) / d < 1 (so it fits a word);
//   q = (mulhi(m, n) + n) >> l, with mulhi(m, n) = floor(m n / 2^W);   then q = floor(n / d).
// Why: with M = 2^W + m = floor(2^(W+l) / d) + 1 we have 0 < M d - 2^(W+l) <= d <= 2^l, and
// Granlund-Montgomery's theorem 4.2 gives floor(n / d) = floor(M n / 2^(W+l)) for all n < 2^W.
// M n / 2^(W+l) = (n + m n / 2^W) / 2^l, and flooring m n / 2^W first changes no floor because n
// is an integer. mulhi(m, n) <= n < 2^(W-1), so the sum fits a word. d = 1 gives l = 0, m = 1,
// q = 0 + n; a power of two gives m = 1 and mulhi = 0: a plain shift. r = n - q d.
// The host precomputes m and l (a 2W-bit division, once per launch); the device never divides.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS {

// floor(a b / 2^W) for W-bit words: PTX mul.hi on the device, a double-width product on the host.
__host__ __device__ __forceinline__ uint32_t mul_hi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return uint32_t((uint64_t(a) * b) >> 32);
#endif
}
__host__ __device__ __forceinline__ uint64_t mul_hi(uint64_t a, uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return uint64_t((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

template <class Word>
struct FastDivmod {
  static_assert(std::is_same_v<Word, uint32_t> || std::is_same_v<Word, uint64_t>);
  static constexpr int kBits = 8 * sizeof(Word);
  using Wide = std::conditional_t<kBits == 32, uint64_t, unsigned __int128>;

  Word divisor = 1, magic = 1;
  int shift = 0;

  FastDivmod() = default;  // divides by 1
  // Host only: the divisor must be in [1, 2^(W-1)].
  explicit FastDivmod(int64_t d) {
    if (d < 1 || uint64_t(d) > (uint64_t(1) << (kBits - 1)))
      throw std::invalid_argument("FastDivmod: divisor " + std::to_string(d) + " outside [1, 2^" +
                                  std::to_string(kBits - 1) + "]");
    divisor = Word(d);
    while ((Wide(1) << shift) < Wide(divisor)) ++shift;
    magic = Word((Wide(1) << kBits) * ((Wide(1) << shift) - divisor) / divisor + 1);
  }

  // floor(n / divisor) for 0 <= n < 2^(W-1).
  __host__ __device__ __forceinline__ Word div(Word n) const {
    return (mul_hi(magic, n) + n) >> shift;
  }
  // n = quotient * divisor + remainder, 0 <= remainder < divisor.
  __host__ __device__ __forceinline__ void divmod(Word n, Word& quotient, Word& remainder) const {
    quotient = div(n);
    remainder = n - quotient * divisor;
  }
};

}  // namespace forge::FORGE_GPU_NS
