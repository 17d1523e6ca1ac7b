// reduce.cpp: CPU reductions. reduce_sum sums a tensor down to a shape with some extents set to
// 1 (the backward of broadcasting, bias gradients, means); clip_by_global_norm is gradient
// clipping's. Partial sums are kept in double: a float accumulator over n terms has error growing
// like n * eps, which for the 10^5-10^6 term sums here would be visible in tests.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace forge {

// The general case: each output element walks its reduced coordinates (batch-norm style
// [n, c, hw] -> [c] and anything else).
static void reduce_general(const float* x, const int64_t* in_shape, const int64_t* out_shape,
                           int ndim, float* out) {
  // Row-major strides of the input; the reduced dimensions are those whose output extent is 1
  // while the input's is not.
  std::vector<int64_t> in_strides(ndim), reduced_dims;
  int64_t s = 1, out_n = 1, red_n = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    in_strides[i] = s;
    s *= in_shape[i];
  }
  for (int i = 0; i < ndim; ++i) {
    out_n *= out_shape[i];
    if (out_shape[i] != in_shape[i]) {
      reduced_dims.push_back(i);
      red_n *= in_shape[i];
    }
  }
#pragma omp parallel for if (out_n * red_n > 32768)
  for (int64_t o = 0; o < out_n; ++o) {
    // Input offset of the output element's kept coordinates.
    int64_t base = 0, rem = o;
    for (int i = ndim - 1; i >= 0; --i) {
      base += (rem % out_shape[i]) * in_strides[i];
      rem /= out_shape[i];
    }
    double acc = 0.0;
    for (int64_t r = 0; r < red_n; ++r) {
      int64_t off = base, rr = r;
      for (size_t j = reduced_dims.size(); j-- > 0;) {
        const int d = reduced_dims[j];
        off += (rr % in_shape[d]) * in_strides[d];
        rr /= in_shape[d];
      }
      acc += x[off];
    }
    out[o] = static_cast<float>(acc);
  }
}

// out[a, c] = sum_b x[a, b, c] over a contiguous [outer, mid, inner] layout: the fast path, which
// covers bias gradients ([rows, n] -> [n]), pooling ([n c, h w] -> [n c]) and most broadcasts.
static void reduce_middle(const float* x, int64_t outer, int64_t mid, int64_t inner, float* out) {
  if (inner == 1) {
#pragma omp parallel for if (outer * mid > 32768)
    for (int64_t a = 0; a < outer; ++a) {
      double acc = 0.0;
      const float* row = x + a * mid;
#pragma omp simd reduction(+ : acc)
      for (int64_t b = 0; b < mid; ++b) acc += row[b];
      out[a] = static_cast<float>(acc);
    }
    return;
  }
  // Few outer rows (a bias gradient: [1, rows, n] -> [n]) would leave all but one thread idle
  // when the threads split the outer rows: split the columns instead. Each column is still summed
  // over b in the same order, so the result does not change. (reduce_middle with outer = 1 was
  // 1.6% of a ViT step, single-threaded.)
  if (outer < 4 * int64_t(omp_get_max_threads()) && inner >= 64) {
    for (int64_t a = 0; a < outer; ++a) {
      const float* xa = x + a * mid * inner;
      float* oa = out + a * inner;
      const int64_t chunks = (inner + 63) / 64;
#pragma omp parallel for if (mid * inner > 32768)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t c0 = ch * 64, c1 = std::min(inner, c0 + 64);
        double acc[64] = {};
        for (int64_t b = 0; b < mid; ++b) {
          const float* row = xa + b * inner;
#pragma omp simd
          for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
        }
        for (int64_t c = c0; c < c1; ++c) oa[c] = static_cast<float>(acc[c - c0]);
      }
    }
    return;
  }
#pragma omp parallel if (outer * mid * inner > 32768)
  {
    std::vector<double> acc(inner);
#pragma omp for
    for (int64_t a = 0; a < outer; ++a) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < mid; ++b) {
        const float* row = x + (a * mid + b) * inner;
#pragma omp simd
        for (int64_t c = 0; c < inner; ++c) acc[c] += row[c];
      }
      for (int64_t c = 0; c < inner; ++c) out[a * inner + c] = static_cast<float>(acc[c]);
    }
  }
}

void CpuBackend::reduce_sum(const float* x, const int64_t* in_shape, const int64_t* out_shape,
                            int ndim, float* out) {
  // Merge neighbouring dimensions of the same kind (kept or reduced; extents of 1 join either).
  // If what is left is at most [kept, reduced, kept], one pass of reduce_middle does it.
  std::vector<std::pair<int64_t, bool>> groups;  // (extent, reduced)
  for (int i = 0; i < ndim; ++i) {
    if (in_shape[i] == 1) continue;
    const bool reduced = out_shape[i] != in_shape[i];
    if (!groups.empty() && groups.back().second == reduced)
      groups.back().first *= in_shape[i];
    else
      groups.emplace_back(in_shape[i], reduced);
  }
  if (groups.size() <= 3 && !(groups.size() == 3 && groups[0].second)) {
    int64_t dims[3] = {1, 1, 1};  // outer (kept), middle (reduced), inner (kept)
    size_t g = 0;
    if (g < groups.size() && !groups[g].second) dims[0] = groups[g++].first;
    if (g < groups.size() && groups[g].second) dims[1] = groups[g++].first;
    if (g < groups.size() && !groups[g].second) dims[2] = groups[g++].first;
    if (g == groups.size()) return reduce_middle(x, dims[0], dims[1], dims[2], out);
  }
  reduce_general(x, in_shape, out_shape, ndim, out);
}

// Each tensor's sum in double, rounded to float, the floats added in double: what clipping did
// when it summed one tensor per call. The scale is applied as UnaryOp::scale does.
void CpuBackend::clip_by_global_norm(float* const* xs, const int64_t* ns, int count, float max_norm,
                                     float* norm_out) {
  double total = 0.0;
  for (int t = 0; t < count; ++t) {
    const float* x = xs[t];
    const int64_t n = ns[t];
    double acc = 0.0;
#pragma omp parallel for reduction(+ : acc) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) acc += double(x[i]) * x[i];
    total += static_cast<float>(acc);
  }
  const float norm = static_cast<float>(std::sqrt(total));
  *norm_out = norm;
  if (!std::isfinite(norm) || norm <= max_norm) return;
  const float scale = static_cast<float>(max_norm / (double(norm) + 1e-6));
  for (int t = 0; t < count; ++t) unary(UnaryOp::scale, xs[t], xs[t], ns[t], scale);
}

}  // namespace forge
