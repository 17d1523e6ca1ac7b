// reduce.cpp: CPU reductions. reduce_sum sums a tensor down to a shape with some extents set to
// 1 (the backward of broadcasting, bias gradients, means); sum_squares feeds gradient clipping.
// Partial sums are kept in double: a float accumulator over n terms has error growing like
// n * eps, which for the 10^5-10^6 term sums here would be visible in tests.
#include <vector>

#include "engine/cpu/cpu_backend.h"

namespace forge {

void CpuBackend::reduce_sum(const float* x, const int64_t* in_shape, const int64_t* out_shape,
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

void CpuBackend::sum_squares(const float* x, int64_t n, float* out) {
  double acc = 0.0;
#pragma omp parallel for reduction(+ : acc) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) acc += double(x[i]) * x[i];
  out[0] = static_cast<float>(acc);
}

}  // namespace forge
