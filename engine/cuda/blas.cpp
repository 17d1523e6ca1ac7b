// blas.cpp: GpuBackend::gemm on top of cuBLAS (or, on sim, the host stand-in declared in blas.h).
//
// forge's GEMM is row-major; cuBLAS's is column-major. A row-major m x n matrix with row stride ld
// is, byte for byte, the column-major n x m matrix of its transpose with leading dimension ld. So
// the row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: swap the
// operands (B first), swap m and n, keep each operand's own transpose flag.
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda/gpu_impl.h"

namespace forge::FORGE_GPU_NS {

#if FORGE_SIM_BUILD

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb,
                                         long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batchCount) {
  // cuBLAS's argument checks: stored rows of each operand must fit in its leading dimension.
  const int a_rows = transa == CUBLAS_OP_N ? m : k, b_rows = transb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || batchCount < 0 || lda < std::max(1, a_rows) ||
      ldb < std::max(1, b_rows) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  // op(A) row i and op(B) column j are packed contiguously so the inner product is a unit-stride
  // loop the compiler vectorises; accumulation is in float, as cuBLAS's SGEMM does.
  std::vector<float> a_rows_packed(size_t(m) * k), b_cols_packed(size_t(n) * k);
  for (int batch = 0; batch < batchCount; ++batch) {
    const float* a = A + batch * strideA;
    const float* b = B + batch * strideB;
    float* c = C + batch * strideC;
    for (int i = 0; i < m; ++i)
      for (int l = 0; l < k; ++l)
        a_rows_packed[size_t(i) * k + l] =
            transa == CUBLAS_OP_N ? a[i + int64_t(l) * lda] : a[l + int64_t(i) * lda];
    for (int j = 0; j < n; ++j)
      for (int l = 0; l < k; ++l)
        b_cols_packed[size_t(j) * k + l] =
            transb == CUBLAS_OP_N ? b[l + int64_t(j) * ldb] : b[j + int64_t(l) * ldb];
#pragma omp parallel for if (int64_t(m) * n * k > 32768)
    for (int j = 0; j < n; ++j) {
      const float* bj = b_cols_packed.data() + size_t(j) * k;
      for (int i = 0; i < m; ++i) {
        const float* ai = a_rows_packed.data() + size_t(i) * k;
        float dot = 0.f;
        for (int l = 0; l < k; ++l) dot += ai[l] * bj[l];
        float& cij = c[i + int64_t(j) * ldc];
        cij = *beta == 0.f ? *alpha * dot : *alpha * dot + *beta * cij;
      }
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

BlasHandle::BlasHandle() = default;
BlasHandle::~BlasHandle() = default;

static const char* blas_status_text(cublasStatus_t status) {
  return status == CUBLAS_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE" : "unknown";
}

#else

static const char* blas_status_text(cublasStatus_t status) {
  return cublasGetStatusString(status);
}

BlasHandle::BlasHandle() {
  const cublasStatus_t status = cublasCreate(&handle_);
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuda: cublasCreate failed (") + blas_status_text(status) +
                             ")");
  // No tensor-core TF32 rounding: fp32 GEMMs stay fp32, matching the CPU within k * eps.
  cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH);
}
BlasHandle::~BlasHandle() {
  cublasDestroy(handle_);
}

#endif

namespace {
std::atomic<uint64_t> blas_calls{0};
}  // namespace

uint64_t blas_call_count() {
  return blas_calls.load(std::memory_order_relaxed);
}

void GpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, int64_t stride_a, const float* b, int ldb, int64_t stride_b,
                      float beta, float* c, int ldc, int64_t stride_c, int batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  blas_calls.fetch_add(1, std::memory_order_relaxed);
  // Column-major C^T [n x m] = op(B)^T [n x k] * op(A)^T [k x m] (see the top of this file).
  const cublasStatus_t status = cublasSgemmStridedBatched(
      impl_->blas.get(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
      n, m, k, &alpha, b, ldb, stride_b, a, lda, stride_a, &beta, c, ldc, stride_c, batch);
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("gpu gemm: cublasSgemmStridedBatched failed (") +
                             blas_status_text(status) + ") for m=" + std::to_string(m) +
                             " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                             " batch=" + std::to_string(batch));
}

}  // namespace forge::FORGE_GPU_NS
