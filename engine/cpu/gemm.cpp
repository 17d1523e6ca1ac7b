// gemm.cpp: CPU GEMM through oneDNN's dnnl_sgemm (row-major, AVX-512 kernels where the CPU has
// them: measured 100-330 GFLOP/s on the 2-core development machines, against 50-60 for OpenBLAS
// held to AVX2). Batches are a loop of calls; each call is threaded by oneDNN itself.
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
