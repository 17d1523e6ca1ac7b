// gemm_mma.h: the launcher of the hand-written bf16 tensor-core GEMM (kernels/gemm_mma.cu).
#pragma once
#include "kernels/bf16.h"

namespace forge::FORGE_GPU_NS {

// c[m x n] = a[m x k] b[k x n], all row-major in device memory: bf16 inputs, fp32 accumulation and
// output, any m, n, k >= 0 (with k = 0, c = 0).
void gemm_bf16_mma(const bf16* a, const bf16* b, float* c, int m, int n, int k);

}  // namespace forge::FORGE_GPU_NS
