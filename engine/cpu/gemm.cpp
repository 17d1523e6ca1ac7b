// gemm.cpp: CPU GEMM through oneDNN's dnnl_sgemm (row-major; oneDNN picks AVX2 or AVX-512
// kernels for the CPU it runs on; the development machines have AVX2). Batches are a loop of
// calls; each call is threaded by oneDNN itself. Measured rates are in docs/BENCHMARKS.md.
#include <dnnl.h>

#include <stdexcept>
#include <string>

#include "engine/cpu/cpu_backend.h"

namespace forge {

void CpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, int64_t stride_a, const float* b, int ldb, int64_t stride_b,
                      float beta, float* c, int ldc, int64_t stride_c, int batch) {
  if (m == 0 || n == 0) return;
  for (int i = 0; i < batch; ++i) {
    const dnnl_status_t st =
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a + i * stride_a, lda,
                   b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
    if (st != dnnl_success)
      throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(int(st)) +
                               " for m=" + std::to_string(m) + " n=" + std::to_string(n) +
                               " k=" + std::to_string(k));
  }
}

}  // namespace forge
