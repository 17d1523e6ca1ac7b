// attention.cpp: scaled-dot-product attention, forward and backward, as loops (see reference.h).
//
// For one (batch, head) slice, token i attends to every token j:
//   s_ij = scale * q_i . k_j                  (scores)
//   p_ij = exp(s_ij - m_i) / sum_j' exp(s_ij' - m_i),   m_i = max_j s_ij   (softmax over j)
//   out_i = sum_j p_ij v_j
//   lse_i = m_i + log sum_j exp(s_ij - m_i)   (= log sum_j exp s_ij, what backends save)
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/reference/reference.h"

namespace forge::reference {

// The probabilities p_ij of one slice, rows i, as doubles [t, t].
static std::vector<double> probabilities(int t, int dh, float scale, const float* q, const float* k,
                                         double* lse /*nullable, [t]*/) {
  std::vector<double> p(size_t(t) * t);
  for (int i = 0; i < t; ++i) {
    double* row = &p[size_t(i) * t];
    double m = -INFINITY;
    for (int j = 0; j < t; ++j) {
      double s = 0;  // s_ij = scale * sum_c q_ic k_jc
      for (int c = 0; c < dh; ++c) s += double(q[i * dh + c]) * k[j * dh + c];
      row[j] = scale * s;
      m = std::max(m, row[j]);  // m_i = max_j s_ij, so that exp never overflows
    }
    double z = 0;  // z_i = sum_j exp(s_ij - m_i)
    for (int j = 0; j < t; ++j) {
      row[j] = std::exp(row[j] - m);
      z += row[j];
    }
    for (int j = 0; j < t; ++j) row[j] /= z;  // p_ij = exp(s_ij - m_i) / z_i
    if (lse) lse[i] = m + std::log(z);        // log sum_j exp(s_ij)
  }
  return p;
}

void attention_forward(int bh, int t, int dh, float scale, const float* q, const float* k,
                       const float* v, float* out, float* lse) {
  std::vector<double> lse_slice(t);
  for (int b = 0; b < bh; ++b) {
    const size_t off = size_t(b) * t * dh;
    const std::vector<double> p = probabilities(t, dh, scale, q + off, k + off, lse_slice.data());
    for (int i = 0; i < t; ++i) {
      for (int c = 0; c < dh; ++c) {
        double o = 0;  // out_ic = sum_j p_ij v_jc
        for (int j = 0; j < t; ++j) o += p[size_t(i) * t + j] * v[off + size_t(j) * dh + c];
        out[off + size_t(i) * dh + c] = float(o);
      }
      lse[size_t(b) * t + i] = float(lse_slice[i]);
    }
  }
}

void attention_backward(int bh, int t, int dh, float scale, const float* q, const float* k,
                        const float* v, const float* gout, float* gq, float* gk, float* gv) {
  for (int b = 0; b < bh; ++b) {
    const size_t off = size_t(b) * t * dh;
    const float *qs = q + off, *ks = k + off, *vs = v + off, *go = gout + off;
    const std::vector<double> p = probabilities(t, dh, scale, qs, ks, nullptr);

    // In the forward pass this was out_ic = sum_j p_ij v_jc, so now
    //   gv_jc = sum_i p_ij gout_ic         (v_jc reaches every out_i, weighted by p_ij)
    //   gp_ij = sum_c gout_ic v_jc         (p_ij multiplies the row v_j)
    for (int j = 0; j < t; ++j)
      for (int c = 0; c < dh; ++c) {
        double g = 0;
        for (int i = 0; i < t; ++i) g += p[size_t(i) * t + j] * go[i * dh + c];
        gv[off + size_t(j) * dh + c] = float(g);
      }
    std::vector<double> gp(size_t(t) * t);
    for (int i = 0; i < t; ++i)
      for (int j = 0; j < t; ++j) {
        double g = 0;
        for (int c = 0; c < dh; ++c) g += double(go[i * dh + c]) * vs[j * dh + c];
        gp[size_t(i) * t + j] = g;
      }

    // In the forward pass this was p_ij = softmax_j(s_ij), whose Jacobian is
    //   d p_ij / d s_ij' = p_ij ([j == j'] - p_ij'), so now
    //   gs_ij' = sum_j gp_ij p_ij ([j == j'] - p_ij') = p_ij' (gp_ij' - sum_j gp_ij p_ij)
    std::vector<double> gs(size_t(t) * t);
    for (int i = 0; i < t; ++i) {
      double dot = 0;  // sum_j gp_ij p_ij
      for (int j = 0; j < t; ++j) dot += gp[size_t(i) * t + j] * p[size_t(i) * t + j];
      for (int j = 0; j < t; ++j)
        gs[size_t(i) * t + j] = p[size_t(i) * t + j] * (gp[size_t(i) * t + j] - dot);
    }

    // In the forward pass this was s_ij = scale * sum_c q_ic k_jc, so now
    //   gq_ic = scale * sum_j gs_ij k_jc,   gk_jc = scale * sum_i gs_ij q_ic
    for (int i = 0; i < t; ++i)
      for (int c = 0; c < dh; ++c) {
        double g = 0;
        for (int j = 0; j < t; ++j) g += gs[size_t(i) * t + j] * ks[j * dh + c];
        gq[off + size_t(i) * dh + c] = float(scale * g);
      }
    for (int j = 0; j < t; ++j)
      for (int c = 0; c < dh; ++c) {
        double g = 0;
        for (int i = 0; i < t; ++i) g += gs[size_t(i) * t + j] * qs[i * dh + c];
        gk[off + size_t(j) * dh + c] = float(scale * g);
      }
  }
}

}  // namespace forge::reference
