// simd_math.h: small AVX2 math kernels shared by the CPU primitives (internal to engine/cpu).
#pragma once
#if defined(__AVX2__)
#include <immintrin.h>

namespace forge {

// e^a for a in [-700, 0] (clamped below) on N vectors of four doubles, in place: a = k ln 2 + r,
// |r| <= ln 2 / 2 (k rounded by the 1.5 * 2^52 shifter, ln 2 split in two for an exact k ln 2),
// e^r by its Taylor series to r^11 (truncation below 1e-14 relative), 2^k written into the
// exponent bits. Each step runs over the N vectors before the next: N independent dependency
// chains in flight, where one chain of ~20 dependent FMAs left the FMA units waiting on latency.
template <int N>
inline void exp_pd(__m256d (&a)[N]) {
  const __m256d shifter = _mm256_set1_pd(6755399441055744.0);
  __m256d t[N], r[N], p[N];
  for (int j = 0; j < N; ++j) {
    a[j] = _mm256_max_pd(a[j], _mm256_set1_pd(-700.0));
    t[j] = _mm256_fmadd_pd(a[j], _mm256_set1_pd(1.4426950408889634), shifter);
    const __m256d k = _mm256_sub_pd(t[j], shifter);
    r[j] = _mm256_fnmadd_pd(k, _mm256_set1_pd(6.93147180369123816490e-01), a[j]);
    r[j] = _mm256_fnmadd_pd(k, _mm256_set1_pd(1.90821492927058770002e-10), r[j]);
    p[j] = _mm256_set1_pd(1.0 / 39916800.0);
  }
  for (double c : {1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
                   1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0})
    for (int j = 0; j < N; ++j) p[j] = _mm256_fmadd_pd(p[j], r[j], _mm256_set1_pd(c));
  for (int j = 0; j < N; ++j) {
    const __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(t[j]), _mm256_castpd_si256(shifter));
    const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52);
    a[j] = _mm256_mul_pd(p[j], _mm256_castsi256_pd(bits));
  }
}

inline __m256d exp_pd(__m256d a) {
  __m256d v[1] = {a};
  exp_pd(v);
  return v[0];
}

}  // namespace forge
#endif
