// gemm_mma.h: the launcher of the hand-written bf16 tensor-core GEMM (kernels/gemm_mma.cu).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace forge::FORGE_GPU_NS {

// c[m x n] = a[m x k] b[k x n], all row-major in device memory: bf16 inputs, fp32 accumulation and
// output, any m, n, k >= 0 (with k = 0, c = 0).
void gemm_bf16_mma(const bf16* a, const bf16* b, float* c, int m, int n, int k);

// For each of `batch` problems z: C_z = alpha A_z B_z + beta C_z, A_z = a + z stride_a [m x k]
// and B_z = b + z stride_b [k x n] row-major bf16, C_z = c + z stride_c row-major fp32 with row
// stride ldc (not read when beta = 0); batch at most 65535.
void gemm_bf16_mma_batched(int m, int n, int k, float alpha, const bf16* a, int64_t stride_a,
                           const bf16* b, int64_t stride_b, float beta, float* c, int ldc,
                           int64_t stride_c, int batch);

}  // namespace forge::FORGE_GPU_NS
