// bf16_convert.h: fp32 device buffers rounded to bf16 (kernels/bf16.h: round to nearest even), the
// first step of every bf16 matmul (docs/MIXED_PRECISION.md). Launchers of kernels/bf16_convert.cu.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace forge::FORGE_GPU_NS {

// out[i] = bf16(x[i]) for i < n.
void convert_to_bf16(const float* x, int64_t n, bf16* out);

// The row-major op(X) of each of `batch` problems, rounded and packed contiguous: out [batch,
// rows, cols], out[z][i][j] = bf16(trans ? X_z[j * ld + i] : X_z[i * ld + j]), X_z = x + z stride:
// a GEMM operand as GpuBackend::gemm takes it, made ready for gemm_bf16_mma_batched.
void convert_op_to_bf16(bool trans, int rows, int cols, const float* x, int ld, int64_t stride,
                        int batch, bf16* out);

}  // namespace forge::FORGE_GPU_NS
