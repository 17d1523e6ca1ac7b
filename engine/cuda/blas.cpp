// blas.cpp: GpuBackend::gemm on top of cuBLAS (or, on sim, the host stand-in declared in blas.h).
//
// forge's GEMM is row-major; cuBLAS's is column-major. A row-major m x n matrix with row stride ld
// is, byte for byte, the column-major n x m matrix of its transpose with leading dimension ld. So
// the row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: swap the
// operands (B first), swap m and n, keep each operand's own transpose flag.
//
// The matmul precision (engine/backend.h, docs/MIXED_PRECISION.md) is chosen here: bf16 sends
// gemm and the linear GEMMs to their bf16 paths (kernels/gemm_bf16.cu); tf32 sets the handle's
// math mode.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cuda/gpu_impl.h"
#if FORGE_SIM_BUILD
#include "kernels/sim/runtime.h"
#endif

namespace forge::FORGE_GPU_NS {

#if FORGE_SIM_BUILD

// x rounded to tf32 (fp32's 8-bit exponent, 10 of its 23 mantissa bits), to nearest with ties
// away from zero as cvt.rna.tf32.f32 does; NaN and infinity pass unchanged. cuBLAS's TF32
// kernels may round differently in the last tf32 bit: sim and cuda agree to tf32's rounding.
static float round_to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &u, sizeof u);
  return x;
}

// cuBLAS's argument checks: stored rows of each operand must fit in its leading dimension.
static bool sgemm_arguments_valid(cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                  int k, int lda, int ldb, int ldc, int batchCount) {
  const int a_rows = transa == CUBLAS_OP_N ? m : k, b_rows = transb == CUBLAS_OP_N ? k : n;
  return m >= 0 && n >= 0 && k >= 0 && batchCount >= 0 && lda >= std::max(1, a_rows) &&
         ldb >= std::max(1, b_rows) && ldc >= std::max(1, m);
}

// While a graph is captured (gpu_runtime.h), the stand-ins below do not compute but append
// themselves to the emulated graph, as cuBLAS's kernels are captured on cuda: with the handle's
// settings and the host scalars alpha and beta as they are now (host pointer mode reads them at
// the call), everything else by value.
static bool record_call(std::function<void()> call) {
  if (!sim::recording()) return false;
  sim::record(std::move(call));
  return true;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb,
                                         long long strideB, const float* beta, float* C, int ldc,
                                         long long strideC, int batchCount) {
  if (!sgemm_arguments_valid(transa, transb, m, n, k, lda, ldb, ldc, batchCount))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (record_call([context = handle ? std::optional<SimBlasContext>(*handle) : std::nullopt, transa,
                   transb, m, n, k, alpha = *alpha, A, lda, strideA, B, ldb, strideB, beta = *beta,
                   C, ldc, strideC, batchCount]() mutable {
        cublasSgemmStridedBatched(context ? &*context : nullptr, transa, transb, m, n, k, &alpha, A,
                                  lda, strideA, B, ldb, strideB, &beta, C, ldc, strideC,
                                  batchCount);
      }))
    return CUBLAS_STATUS_SUCCESS;
  // op(A) row i and op(B) column j are packed contiguously so the inner product is a unit-stride
  // loop the compiler vectorises; accumulation is in float, as cuBLAS's SGEMM does. In tf32 math
  // mode the packed inputs are rounded to tf32 (the products of two tf32 are exact in fp32).
  const auto input = [tf32 = handle && handle->tf32](float x) {
    return tf32 ? round_to_tf32(x) : x;
  };
  std::vector<float> a_rows_packed(size_t(m) * k), b_cols_packed(size_t(n) * k);
  for (int batch = 0; batch < batchCount; ++batch) {
    const float* a = A + batch * strideA;
    const float* b = B + batch * strideB;
    float* c = C + batch * strideC;
    for (int i = 0; i < m; ++i)
      for (int l = 0; l < k; ++l)
        a_rows_packed[size_t(i) * k + l] =
            input(transa == CUBLAS_OP_N ? a[i + int64_t(l) * lda] : a[l + int64_t(i) * lda]);
    for (int j = 0; j < n; ++j)
      for (int l = 0; l < k; ++l)
        b_cols_packed[size_t(j) * k + l] =
            input(transb == CUBLAS_OP_N ? b[l + int64_t(j) * ldb] : b[j + int64_t(l) * ldb]);
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

// The bias epilogue as cuBLAS computes D = op(A) op(B) + 1 * D over D pre-set to the bias (the
// same float sums); the bias-gradient one sums op(B)'s columns in row order. No bf16 stand-in:
// the caller's fallback runs the tensor-core GEMM.
cublasStatus_t gemm_with_epilogue(const BlasHandle& handle, GemmEpilogue epilogue,
                                  cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                  int k, const void* A_in, int lda, const void* B_in, int ldb,
                                  float* D, int ldd, float* bias, bool bf16_inputs) {
  if (bf16_inputs) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (!sgemm_arguments_valid(transa, transb, m, n, k, lda, ldb, ldd, 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (record_call([&handle, epilogue, transa, transb, m, n, k, A_in, lda, B_in, ldb, D, ldd, bias] {
        gemm_with_epilogue(handle, epilogue, transa, transb, m, n, k, A_in, lda, B_in, ldb, D, ldd,
                           bias, false);
      }))
    return CUBLAS_STATUS_SUCCESS;
  const float* A = static_cast<const float*>(A_in);
  const float* B = static_cast<const float*>(B_in);
  const float one = 1.f, zero = 0.f;
  if (epilogue == GemmEpilogue::bias)
    for (int j = 0; j < n; ++j) std::copy(bias, bias + m, D + int64_t(j) * ldd);
  const cublasStatus_t status =
      cublasSgemmStridedBatched(handle.get(), transa, transb, m, n, k, &one, A, lda, 0, B, ldb, 0,
                                epilogue == GemmEpilogue::bias ? &one : &zero, D, ldd, 0, 1);
  if (status != CUBLAS_STATUS_SUCCESS || epilogue != GemmEpilogue::bias_grad_b) return status;
  for (int j = 0; j < n; ++j) {
    float sum = 0.f;
    for (int l = 0; l < k; ++l)
      sum += transb == CUBLAS_OP_N ? B[l + int64_t(j) * ldb] : B[j + int64_t(l) * ldb];
    bias[j] = sum;
  }
  return CUBLAS_STATUS_SUCCESS;
}

BlasHandle::BlasHandle() : handle_(&context_) {}
BlasHandle::~BlasHandle() = default;

void BlasHandle::set_tf32(bool tf32) {
  tf32_ = context_.tf32 = tf32;
}

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
  // Every call on the runtime's compute stream (gpu_runtime.h), so that a graph captures it, and
  // with a fixed workspace: cuBLAS must not allocate one while a graph is captured.
  cublasSetStream(handle_, static_cast<cudaStream_t>(compute_stream_handle()));
  const cublasStatus_t lt_status = cublasLtCreate(&lt_);
  if (lt_status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuda: cublasLtCreate failed (") +
                             blas_status_text(lt_status) + ")");
  if (cudaMalloc(&workspace_, kWorkspaceBytes) != cudaSuccess)
    throw std::runtime_error("cuda: cudaMalloc of cuBLASLt's 32 MiB workspace failed");
  cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes);
}
void BlasHandle::set_tf32(bool tf32) {
  tf32_ = tf32;
  cublasSetMathMode(handle_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
}

BlasHandle::~BlasHandle() {
  cudaFree(workspace_);
  cublasLtDestroy(lt_);
  cublasDestroy(handle_);
}

namespace {
// Destroys cuBLASLt descriptors at scope exit, whichever way the scope is left.
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  ~LtDescriptors() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};
}  // namespace

// fp32 or bf16 A and B, fp32 D and bias, fp32 compute (TF32 only when the handle is in tf32
// mode, for fp32 inputs), the epilogue as an attribute; the algorithm is left to cublasLtMatmul's
// own heuristic (algo = nullptr) within the workspace.
cublasStatus_t gemm_with_epilogue(const BlasHandle& handle, GemmEpilogue epilogue,
                                  cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                                  int k, const void* A, int lda, const void* B, int ldb, float* D,
                                  int ldd, float* bias, bool bf16_inputs) {
  LtDescriptors desc;
  const cublasComputeType_t compute =
      handle.tf32() && !bf16_inputs ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  const cudaDataType_t input_type = bf16_inputs ? CUDA_R_16BF : CUDA_R_32F;
  cublasStatus_t status = cublasLtMatmulDescCreate(&desc.op, compute, CUDA_R_32F);
  const cublasLtEpilogue_t lt_epilogue =
      epilogue == GemmEpilogue::bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_BGRADB;
  const auto set = [&](cublasLtMatmulDescAttributes_t attribute, const void* value, size_t size) {
    if (status == CUBLAS_STATUS_SUCCESS)
      status = cublasLtMatmulDescSetAttribute(desc.op, attribute, value, size);
  };
  set(CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa));
  set(CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb));
  set(CUBLASLT_MATMUL_DESC_EPILOGUE, &lt_epilogue, sizeof(lt_epilogue));
  set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
  const auto layout = [&](cublasLtMatrixLayout_t* out, cudaDataType_t type, int rows, int cols,
                          int ld) {
    if (status == CUBLAS_STATUS_SUCCESS)
      status = cublasLtMatrixLayoutCreate(out, type, rows, cols, ld);
  };
  layout(&desc.a, input_type, transa == CUBLAS_OP_N ? m : k, transa == CUBLAS_OP_N ? k : m, lda);
  layout(&desc.b, input_type, transb == CUBLAS_OP_N ? k : n, transb == CUBLAS_OP_N ? n : k, ldb);
  layout(&desc.d, CUDA_R_32F, m, n, ldd);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  const float one = 1.f, zero = 0.f;
  return cublasLtMatmul(handle.lt(), desc.op, &one, A, desc.a, B, desc.b, &zero, D, desc.d, D,
                        desc.d, nullptr, handle.workspace(), BlasHandle::kWorkspaceBytes,
                        static_cast<cudaStream_t>(compute_stream_handle()));
}

#endif

namespace {
std::atomic<uint64_t> blas_calls{0};
}  // namespace

// Row-major m, n, k of the failed call in the message.
[[noreturn]] static void throw_blas_failure(const char* what, cublasStatus_t status, int m, int n,
                                            int k, int batch = 1) {
  throw std::runtime_error(std::string("gpu ") + what + ": cuBLAS failed (" +
                           blas_status_text(status) + ") for m=" + std::to_string(m) +
                           " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                           " batch=" + std::to_string(batch));
}

uint64_t blas_call_count() {
  return blas_calls.load(std::memory_order_relaxed);
}

void GpuBackend::set_matmul_precision(MatmulPrecision precision) {
  impl_->precision = precision;
  impl_->blas.set_tf32(precision == MatmulPrecision::tf32);
}

MatmulPrecision GpuBackend::matmul_precision() const {
  return impl_->precision;
}

void GpuBackend::gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
                      int lda, int64_t stride_a, const float* b, int ldb, int64_t stride_b,
                      float beta, float* c, int ldc, int64_t stride_c, int batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  if (impl_->precision == MatmulPrecision::bf16)
    return gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c,
                     ldc, stride_c, batch);
  blas_calls.fetch_add(1, std::memory_order_relaxed);
  // Column-major C^T [n x m] = op(B)^T [n x k] * op(A)^T [k x m] (see the top of this file).
  const cublasStatus_t status = cublasSgemmStridedBatched(
      impl_->blas.get(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
      n, m, k, &alpha, b, ldb, stride_b, a, lda, stride_a, &beta, c, ldc, stride_c, batch);
  if (status != CUBLAS_STATUS_SUCCESS) throw_blas_failure("gemm", status, m, n, k, batch);
}

// Row-major y = x W^T + bias is column-major y^T [out, rows] = op(W) x^T with W's stored
// column-major view [in, out] transposed: a bias per row of y^T, the BIAS epilogue.
void GpuBackend::linear_forward(int rows, int in, int out, const float* x, const float* w,
                                const float* bias, float* y) {
  if (impl_->precision == MatmulPrecision::bf16 && bias && rows > 0 && out > 0)
    return linear_forward_bf16(rows, in, out, x, w, bias, y);
  if (!bias || rows == 0 || out == 0) {
    gemm(false, true, rows, out, in, 1.f, x, in, 0, w, in, 0, 0.f, y, out, 0, 1);
    return;
  }
  blas_calls.fetch_add(1, std::memory_order_relaxed);
  const cublasStatus_t status =
      gemm_with_epilogue(impl_->blas, GemmEpilogue::bias, CUBLAS_OP_T, CUBLAS_OP_N, out, rows, in,
                         w, in, x, in, y, out, const_cast<float*>(bias));
  if (status == CUBLAS_STATUS_SUCCESS) return;
  if (status != CUBLAS_STATUS_NOT_SUPPORTED)
    throw_blas_failure("linear_forward", status, rows, out, in);
  blas_calls.fetch_sub(1, std::memory_order_relaxed);
  StridedView broadcast{2, {rows, out}, {0, 1}, 0};
  gather(bias, broadcast, y);
  gemm(false, true, rows, out, in, 1.f, x, in, 0, w, in, 0, 1.f, y, out, 0, 1);
}

// Row-major gw = gy^T x is column-major gw^T [in, out] = x^T op(gy), op(gy) [rows, out] the
// transpose of gy's stored view [out, rows]: gbias sums op(gy)'s columns, the BGRADB epilogue.
void GpuBackend::linear_backward_weight(int rows, int in, int out, const float* x, const float* gy,
                                        float* gw, float* gbias) {
  if (impl_->precision == MatmulPrecision::bf16 && gbias && rows > 0 && out > 0 && in > 0)
    return linear_backward_weight_bf16(rows, in, out, x, gy, gw, gbias);
  if (!gbias || rows == 0 || out == 0 || in == 0) {
    gemm(true, false, out, in, rows, 1.f, gy, out, 0, x, in, 0, 0.f, gw, in, 0, 1);
    if (gbias) {
      const int64_t in_shape[2] = {rows, out}, out_shape[2] = {1, out};
      reduce_sum(gy, in_shape, out_shape, 2, gbias);
    }
    return;
  }
  blas_calls.fetch_add(1, std::memory_order_relaxed);
  const cublasStatus_t status =
      gemm_with_epilogue(impl_->blas, GemmEpilogue::bias_grad_b, CUBLAS_OP_N, CUBLAS_OP_T, in, out,
                         rows, x, in, gy, out, gw, in, gbias);
  if (status == CUBLAS_STATUS_SUCCESS) return;
  if (status != CUBLAS_STATUS_NOT_SUPPORTED)
    throw_blas_failure("linear_backward_weight", status, out, in, rows);
  blas_calls.fetch_sub(1, std::memory_order_relaxed);
  gemm(true, false, out, in, rows, 1.f, gy, out, 0, x, in, 0, 0.f, gw, in, 0, 1);
  const int64_t in_shape[2] = {rows, out}, out_shape[2] = {1, out};
  reduce_sum(gy, in_shape, out_shape, 2, gbias);
}

}  // namespace forge::FORGE_GPU_NS
