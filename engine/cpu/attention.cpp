// attention.cpp: CPU fused scaled-dot-product attention, q, k, v, out [bh, t, dh].
//
// Forward, for each problem b < bh and query row i (independent, so parallel over (b, i)):
//   s_ij  = scale q_i . k_j                               (j < t)
//   lse_i = m_i + log sum_j exp(s_ij - m_i),  m_i = max_j s_ij   (max-subtracted: no overflow)
//   out_i = sum_j p_ij v_j,                   p_ij = exp(s_ij - lse_i)
// Only lse [bh, t] is kept for backward; the scores live in a per-thread scratch row of length t.
//
// Backward, with g_i = dL/dout_i. Recompute p_ij = exp(s_ij - lse_i) from q, k and lse. Then
//   dL/dv_j  = sum_i p_ij g_i                                 (out is linear in v)
//   dL/dp_ij = g_i . v_j
//   dL/ds_ij = p_ij (g_i . v_j - D_i),  D_i = sum_j p_ij (g_i . v_j) = g_i . out_i
//              (softmax Jacobian: dp_ij/ds_ik = p_ij ([j = k] - p_ik))
//   dL/dq_i  = scale sum_j gs_ij k_j,     dL/dk_j = scale sum_i gs_ij q_i
// gk and gv receive contributions from every row i of their problem, so one thread owns a whole
// problem b in backward (parallel over bh, rows in order inside): no two threads write one row.
// Each p_ij is recomputed where it is used, so backward needs no scratch at all.
//
// Why loops rather than GEMM calls: the ViT case is t = 65, dh = 64, i.e. 65x65x64 products per
// problem, too small for a dnnl_sgemm call to amortise its dispatch, and oneDNN's own threading
// would nest inside the OpenMP loop over problems. Row-wise, every inner loop is a contiguous
// dot product or axpy over dh that the compiler vectorises, nothing of size t x t is ever
// allocated, and the structure is that of the CUDA kernel this backend is the oracle for.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace forge {

static inline float dot(const float* a, const float* b, int n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int d = 0; d < n; ++d) acc += a[d] * b[d];
  return acc;
}

// y += alpha x over n contiguous elements.
static inline void add_scaled(float* y, float alpha, const float* x, int n) {
#pragma omp simd
  for (int d = 0; d < n; ++d) y[d] += alpha * x[d];
}

// Scores s_j = scale q . k_j of one query row into s[0..t), returning their log-sum-exp.
static float score_row(const float* q, const float* k, int t, int dh, float scale, float* s) {
  float m = -INFINITY;
  for (int j = 0; j < t; ++j) {
    s[j] = scale * dot(q, k + int64_t(j) * dh, dh);
    m = std::max(m, s[j]);
  }
  double z = 0.0;  // t terms in (0, 1]: double keeps the sum exact to float precision for any t
  for (int j = 0; j < t; ++j) z += std::exp(double(s[j] - m));
  return m + float(std::log(z));
}

void CpuBackend::attention_forward(int bh, int t, int dh, float scale, const float* q,
                                   const float* k, const float* v, float* out, float* lse) {
  const int64_t rows = int64_t(bh) * t;
#pragma omp parallel if (rows * t * dh > 32768)
  {
    std::vector<float> s(t);  // this thread's score row
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = r / t;
      const float* kb = k + b * t * dh;
      const float* vb = v + b * t * dh;
      const float l = score_row(q + r * dh, kb, t, dh, scale, s.data());
      lse[r] = l;
      float* o = out + r * dh;
      std::fill(o, o + dh, 0.f);
      for (int j = 0; j < t; ++j) add_scaled(o, std::exp(s[j] - l), vb + int64_t(j) * dh, dh);
    }
  }
}

void CpuBackend::attention_backward(int bh, int t, int dh, float scale, const float* q,
                                    const float* k, const float* v, const float* out,
                                    const float* gout, const float* lse, float* gq, float* gk,
                                    float* gv) {
#pragma omp parallel for schedule(static) if (int64_t(bh) * t * t * dh > 32768)
  for (int b = 0; b < bh; ++b) {
    const int64_t base = int64_t(b) * t * dh;
    const float *qb = q + base, *kb = k + base, *vb = v + base;
    float *gqb = gq + base, *gkb = gk + base, *gvb = gv + base;
    std::fill(gkb, gkb + int64_t(t) * dh, 0.f);
    std::fill(gvb, gvb + int64_t(t) * dh, 0.f);
    for (int i = 0; i < t; ++i) {
      const float* qi = qb + int64_t(i) * dh;
      const float* gi = gout + base + int64_t(i) * dh;
      const float l = lse[int64_t(b) * t + i];
      const float d_i = dot(gi, out + base + int64_t(i) * dh, dh);
      float* gqi = gqb + int64_t(i) * dh;
      std::fill(gqi, gqi + dh, 0.f);
      for (int j = 0; j < t; ++j) {
        const float* kj = kb + int64_t(j) * dh;
        const float* vj = vb + int64_t(j) * dh;
        const float p = std::exp(scale * dot(qi, kj, dh) - l);
        const float gs = p * (dot(gi, vj, dh) - d_i);
        add_scaled(gvb + int64_t(j) * dh, p, gi, dh);
        add_scaled(gqi, scale * gs, kj, dh);
        add_scaled(gkb + int64_t(j) * dh, scale * gs, qi, dh);
      }
    }
  }
}

}  // namespace forge
