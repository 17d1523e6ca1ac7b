// gemm_bf16.cu: GpuBackend's GEMMs at MatmulPrecision::bf16 (engine/backend.h,
// docs/MIXED_PRECISION.md). Each operand op(X) is rounded to bf16 (round to nearest even) and
// packed row-major into scratch (kernels/bf16_convert.cu); the products run on the tensor cores
// with fp32 accumulation into the fp32 output, alpha and beta applied in fp32:
//   sim   the hand-written mma.sync GEMM (kernels/gemm_mma.cu), so the emulator runs and checks a
//         real tensor-core kernel;
//   cuda  cuBLAS (cublasGemmStridedBatchedEx, CUDA_R_16BF inputs, CUBLAS_COMPUTE_32F) and, for the
//         linear layers, cuBLASLt with the bias / bias-gradient epilogue fused (blas.cpp's
//         gemm_with_epilogue with bf16 inputs).
// Where cuBLASLt has no epilogue kernel (and always on sim) the linear layers run the plain bf16
// GEMM and an fp32 bias broadcast or fp32 bias-gradient reduction beside it.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/cuda/gpu_impl.h"
#include "kernels/bf16_convert.h"
#include "kernels/gemm_mma.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

void GpuBackend::gemm_bf16(bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                           const float* a, int lda, int64_t stride_a, const float* b, int ldb,
                           int64_t stride_b, float beta, float* c, int ldc, int64_t stride_c,
                           int batch) {
  // A problem's op(A) [m, k] and op(B) [k, n], packed: consecutive problems m k and k n apart.
  const int64_t packed_a = int64_t(m) * k, packed_b = int64_t(k) * n;
  Bf16Scratch a16(*this, packed_a * batch), b16(*this, packed_b * batch);
  convert_op_to_bf16(trans_a, m, k, a, lda, stride_a, batch, a16.data());
  convert_op_to_bf16(trans_b, k, n, b, ldb, stride_b, batch, b16.data());
#if FORGE_SIM_BUILD
  gemm_bf16_mma_batched(m, n, k, alpha, a16.data(), packed_a, b16.data(), packed_b, beta, c, ldc,
                        stride_c, batch);
#else
  // Row-major C = A' B' is column-major C^T = B'^T A'^T, both packed: no transposes (blas.cpp).
  const cublasStatus_t status = cublasGemmStridedBatchedEx(
      impl_->blas.get(), CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, b16.data(), CUDA_R_16BF,
      std::max(n, 1), packed_b, a16.data(), CUDA_R_16BF, std::max(k, 1), packed_a, &beta, c,
      CUDA_R_32F, ldc, stride_c, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("gpu gemm (bf16): cuBLAS failed (") +
                             cublasGetStatusString(status) + ") for m=" + std::to_string(m) +
                             " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                             " batch=" + std::to_string(batch));
#endif
}

#if !FORGE_SIM_BUILD
// cuBLASLt's verdict on a bf16 linear GEMM with an epilogue: success, or NOT_SUPPORTED for the
// caller's fallback; any other status is an error naming the op.
static bool epilogue_ran(cublasStatus_t status, const char* op, int rows, int in, int out) {
  if (status == CUBLAS_STATUS_SUCCESS) return true;
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) return false;
  throw std::runtime_error(std::string("gpu ") + op + " (bf16): cuBLASLt failed (" +
                           cublasGetStatusString(status) + ") for rows=" + std::to_string(rows) +
                           " in=" + std::to_string(in) + " out=" + std::to_string(out));
}
#endif

// y [rows, out] = x W^T + bias (see blas.cpp's linear_forward for the column-major reading).
void GpuBackend::linear_forward_bf16(int rows, int in, int out, const float* x, const float* w,
                                     const float* bias, float* y) {
#if !FORGE_SIM_BUILD
  {
    Bf16Scratch x16(*this, int64_t(rows) * in), w16(*this, int64_t(out) * in);
    convert_to_bf16(x, int64_t(rows) * in, x16.data());
    convert_to_bf16(w, int64_t(out) * in, w16.data());
    if (epilogue_ran(gemm_with_epilogue(impl_->blas, GemmEpilogue::bias, CUBLAS_OP_T, CUBLAS_OP_N,
                                        out, rows, in, w16.data(), in, x16.data(), in, y, out,
                                        const_cast<float*>(bias), true),
                     "linear_forward", rows, in, out))
      return;
  }
#endif
  StridedView broadcast{2, {rows, out}, {0, 1}, 0};
  gather(bias, broadcast, y);
  gemm_bf16(false, true, rows, out, in, 1.f, x, in, 0, w, in, 0, 1.f, y, out, 0, 1);
}

// gw [out, in] = gy^T x, gbias [out] = the sum of gy's rows (in fp32, from the fp32 gy).
void GpuBackend::linear_backward_weight_bf16(int rows, int in, int out, const float* x,
                                             const float* gy, float* gw, float* gbias) {
#if !FORGE_SIM_BUILD
  {
    Bf16Scratch x16(*this, int64_t(rows) * in), gy16(*this, int64_t(rows) * out);
    convert_to_bf16(x, int64_t(rows) * in, x16.data());
    convert_to_bf16(gy, int64_t(rows) * out, gy16.data());
    if (epilogue_ran(
            gemm_with_epilogue(impl_->blas, GemmEpilogue::bias_grad_b, CUBLAS_OP_N, CUBLAS_OP_T, in,
                               out, rows, x16.data(), in, gy16.data(), out, gw, in, gbias, true),
            "linear_backward_weight", rows, in, out))
      return;
  }
#endif
  gemm_bf16(true, false, out, in, rows, 1.f, gy, out, 0, x, in, 0, 0.f, gw, in, 0, 1);
  const int64_t in_shape[2] = {rows, out}, out_shape[2] = {1, out};
  reduce_sum(gy, in_shape, out_shape, 2, gbias);
}

}  // namespace forge::FORGE_GPU_NS
