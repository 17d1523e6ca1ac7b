// blas.h: GEMM for the GPU backend. Under nvcc it is cuBLAS. Under the sim build the same names
// (cublasHandle_t, CUBLAS_OP_N/T, cublasSgemmStridedBatched) are declared here, in
// forge::gpu_sim, by a host implementation with cuBLAS's exact semantics, so GpuBackend::gemm
// (blas.cpp) is one piece of code for both builds.
//
// cuBLAS's convention is column-major: element (i, j) of a matrix X with leading dimension ldx is
// X[i + j * ldx]. op(X) is X or its transpose. For each batch b:
//   C_b = alpha * op(A_b) op(B_b) + beta * C_b,  op(A) m x k, op(B) k x n, C m x n,
//   X_b = X + b * strideX.
// As in cuBLAS, C is not read when beta == 0 (it may hold NaN from an earlier owner).
#pragma once

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

#include <cstdint>

#if !FORGE_SIM_BUILD
#include <cublasLt.h>
#include <cublas_v2.h>
#endif

namespace forge::FORGE_GPU_NS {

#if FORGE_SIM_BUILD
// The part of cuBLAS's API that the backend uses, with the same meaning.
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_NOT_SUPPORTED = 15
};
// What a cuBLAS handle's math mode holds: whether fp32 GEMMs round their inputs to tf32.
struct SimBlasContext {
  bool tf32 = false;
};
using cublasHandle_t = SimBlasContext*;

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb,
                                         long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batchCount);
#endif

// What a GEMM does after the product, as cuBLASLt's epilogues (CUBLASLT_EPILOGUE_BIAS, _BGRADB),
// column-major D [m, n] = op(A) op(B) with op(B) [k, n]:
//   bias:        D(i, j) += bias[i]                 (a bias per row of D, broadcast over columns)
//   bias_grad_b: bias[j] = sum over l of op(B)(l, j) (the gradient of a bias added to op(B)'s rows)
enum class GemmEpilogue { bias, bias_grad_b };

// D = op(A) op(B) with the epilogue, in one library call: cublasLtMatmul on cuda, a host stand-in
// with the same sums on sim. A and B are fp32, or bf16 when bf16_inputs (D, the bias and the
// accumulation stay fp32). Returns CUBLAS_STATUS_NOT_SUPPORTED where cuBLASLt has no kernel for
// the case, and on sim for bf16 inputs (the caller then runs a plain GEMM, the sim's on the
// tensor-core kernel, and a separate bias kernel).
class BlasHandle;
cublasStatus_t gemm_with_epilogue(const BlasHandle& handle, GemmEpilogue epilogue,
                                  cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                  int k, const void* A, int lda, const void* B, int ldb, float* D,
                                  int ldd, float* bias, bool bf16_inputs = false);

// GpuBackend::gemm calls so far: each is one cuBLAS call, a launch of at least one kernel.
uint64_t blas_call_count();

// Owns the library handles (cuBLAS and cuBLASLt on cuda, with cuBLASLt's workspace; nothing to own
// on sim).
class BlasHandle {
 public:
  BlasHandle();
  ~BlasHandle();
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }
  // fp32 GEMMs with tf32 inputs (CUBLAS_TF32_TENSOR_OP_MATH, CUBLAS_COMPUTE_32F_FAST_TF32) or not.
  void set_tf32(bool tf32);
  bool tf32() const { return tf32_; }
#if !FORGE_SIM_BUILD
  cublasLtHandle_t lt() const {
    return lt_;
  }
  void* workspace() const {
    return workspace_;
  }
  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // cuBLASLt's advice for Hopper
#endif

 private:
  cublasHandle_t handle_ = nullptr;
  bool tf32_ = false;
#if FORGE_SIM_BUILD
  SimBlasContext context_;
#else
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
#endif
};

}  // namespace forge::FORGE_GPU_NS
