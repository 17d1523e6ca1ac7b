// gemm.cpp: CPU GEMM through oneDNN's dnnl_sgemm (row-major; oneDNN picks AVX2 or AVX-512
// kernels for the CPU it runs on; the development machines have AVX2). Measured rates are in
// docs/BENCHMARKS.md.
//
// A batch of at least as many problems as threads is split over the OpenMP threads, each running
// whole problems through single-threaded sgemm calls (oneDNN does not thread a call made inside a
// parallel region): one parallel region and one barrier for the batch. A loop of calls, each
// threaded by oneDNN, paid a region and a barrier per problem, and on a loaded machine every
// barrier waited a scheduler tick for a descheduled thread: 96 problems of [65, 64] x [64, 65]
// took 772 ms against 0.78 ms single-threaded. Smaller batches stay a loop of threaded calls.
#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/cpu/cpu_backend.h"

namespace forge {

void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, int64_t stride_a, const float* b, int ldb, int64_t stride_b,
                      float beta, float* c, int ldc, int64_t stride_c, int batch) {
  if (m == 0 || n == 0 || batch <= 0) return;
  // The first failure's status (read after the loop: no exception leaves a parallel region).
  dnnl_status_t failed = dnnl_success;
  const auto problem = [&](int i) {
    const dnnl_status_t st =
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a + i * stride_a, lda,
                   b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
    if (st != dnnl_success) {
#pragma omp critical(forge_gemm_status)
      failed = failed == dnnl_success ? st : failed;
    }
  };
  // Not `parallel for if (...)`: a region whose if-clause is false still runs as a (one-thread)
  // parallel region, and oneDNN then threads none of its calls: every single GEMM (the linear
  // layers) ran on one thread, 2080 x 192 -> 768 forward 4.6 -> 11.6 ms on 2 threads.
  if (batch > 1 && batch >= omp_get_max_threads()) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < batch; ++i) problem(i);
  } else {
    for (int i = 0; i < batch; ++i) problem(i);
  }
  if (failed != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(int(failed)) +
                             " for m=" + std::to_string(m) + " n=" + std::to_string(n) +
                             " k=" + std::to_string(k) + " batch=" + std::to_string(batch));
}

// The GEMM writes x W^T (beta = 0), then one pass adds the bias to every row, as a GEMM epilogue
// would (and as the GPU's does). Copying the bias into y first for a GEMM adding into it (beta =
// 1) cost more: 2080 x 192 -> 768, one thread, least CPU time, median of six alternated runs:
// 8.8 -> 8.1 ms, against 7.3 ms without a bias.
void CpuBackend::linear_forward(int rows, int in, int out, const float* x, const float* w,
                                const float* bias, float* y) {
  gemm(false, true, rows, out, in, 1.f, x, in, 0, w, in, 0, 0.f, y, out, 0, 1);
  if (!bias) return;
#pragma omp parallel for if (int64_t(rows) * out > 32768)
  for (int r = 0; r < rows; ++r) {
    float* row = y + int64_t(r) * out;
#pragma omp simd
    for (int j = 0; j < out; ++j) row[j] += bias[j];
  }
}

void CpuBackend::linear_backward_weight(int rows, int in, int out, const float* x, const float* gy,
                                        float* gw, float* gbias) {
  gemm(true, false, out, in, rows, 1.f, gy, out, 0, x, in, 0, 0.f, gw, in, 0, 1);
  if (gbias) {
    const int64_t in_shape[2] = {rows, out}, out_shape[2] = {1, out};
    reduce_sum(gy, in_shape, out_shape, 2, gbias);
  }
}

}  // namespace forge
