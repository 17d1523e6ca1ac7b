// gemm_mma.cu: C[m, n] = sum_p A[m, p] B[p, n] on the tensor cores: bf16 A and B, fp32 accumulate,
// through the warp-level instructions of kernels/mma.cuh (mma.sync m16n8k16, ldmatrix, cp.async).
// Batched (blockIdx.z is the problem, each operand a fixed stride from the previous one) with
// cuBLAS's output convention C = alpha A B + beta C, C row stride ldc (C not read when beta = 0).
//
// A block computes a 64 x 64 tile of C with 4 warps in a 2 x 2 arrangement, each warp a 32 x 32
// sub-tile = 2 x 4 mma tiles of 16 x 8, accumulated in registers (acc[2][4][4] per lane, in the
// C fragment layout). The k dimension goes 32 at a time through shared memory, double-buffered:
// while the warps multiply the tile in one stage, cp.async brings the next k tile into the other,
// and cp.async.wait_group<1> + __syncthreads make it visible before its turn.
//
// Fragments from shared memory (docs/TENSOR_CORES.md has the layouts):
//   A, row-major [64][32]: per 16 x 16 piece, ldmatrix.x4, matrices (rows 0-7, k 0-7),
//     (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = registers a0..a3;
//   B, row-major [32][64] (rows are k): per 16 x 16 piece (two n8 tiles), ldmatrix.x4.trans,
//     matrices (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15): .trans hands
//     each lane two consecutive k of one column n, the B fragment's "col" layout.
// Shared rows are padded by 8 bf16 (16 bytes): rows stay 16-byte aligned for ldmatrix and
// cp.async, and the 8 rows one ldmatrix reads fall on different banks.
//
// Tails: tiles past m, n or k are zero in shared memory (zero rows and columns add nothing). When
// k and n are multiples of 8 every 16-byte chunk of A and B is aligned, and cp.async copies it,
// zero-filling the part past the matrix's edge (src-size); otherwise the tiles are loaded element
// by element with ordinary loads, and the pipeline is the same.
#include <stdexcept>
#include <string>

#include "kernels/gemm_mma.h"
#include "kernels/kernel_util.cuh"
#include "kernels/mma.cuh"

namespace forge::FORGE_GPU_NS {
namespace {
using namespace ::forge::tensor_core;

constexpr int kBlockM = 64, kBlockN = 64, kBlockK = 32;
constexpr int kWarpM = 32, kWarpN = 32;  // 2 x 2 warps
constexpr int kThreads = 128;
constexpr int kPad = 8;    // bf16 per shared row beyond the tile: 16 bytes
constexpr int kChunk = 8;  // bf16 in one 16-byte cp.async

struct Stage {
  bf16 a[kBlockM][kBlockK + kPad];
  bf16 b[kBlockK][kBlockN + kPad];
};

// Stages rows [row0, row0 + R) x columns [col0, col0 + C) of a row-major [rows, cols] matrix into
// tile[R][C + kPad], zero outside the matrix.
template <int R, int C, bool kVectorized>
__device__ void load_tile(bf16 (*tile)[C + kPad], const bf16* matrix, int rows, int cols, int row0,
                          int col0) {
  if constexpr (kVectorized) {
    for (int chunk = threadIdx.x; chunk < R * C / kChunk; chunk += kThreads) {
      const int r = chunk / (C / kChunk), c = chunk % (C / kChunk) * kChunk;
      const int row = row0 + r, col = col0 + c;
      const int valid = row < rows ? min_int(max_int(cols - col, 0), kChunk) : 0;
      // With src-size 0 nothing is read; the matrix's base is a valid, aligned address.
      const bf16* source = valid > 0 ? matrix + int64_t(row) * cols + col : matrix;
      cp_async_cg<16>(&tile[r][c], source, valid * int(sizeof(bf16)));
    }
  } else {
    for (int e = threadIdx.x; e < R * C; e += kThreads) {
      const int r = e / C, c = e % C, row = row0 + r, col = col0 + c;
      tile[r][c] = row < rows && col < cols ? matrix[int64_t(row) * cols + col] : bf16_from_bits(0);
    }
  }
}

template <bool kVectorized>
__global__ void __launch_bounds__(kThreads)
    gemm_bf16_mma_kernel(const bf16* a, int64_t stride_a, const bf16* b, int64_t stride_b, float* c,
                         int ldc, int64_t stride_c, float alpha, float beta, int m, int n, int k) {
  __shared__ __align__(16) Stage stages[2];
  a += blockIdx.z * stride_a, b += blockIdx.z * stride_b, c += blockIdx.z * stride_c;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int block_row = blockIdx.y * kBlockM, block_col = blockIdx.x * kBlockN;
  const int warp_row = warp / 2 * kWarpM, warp_col = warp % 2 * kWarpN;
  // The row this lane addresses for ldmatrix.x4: matrix j = lane / 8, its row lane % 8.
  const int matrix = lane / 8, matrix_row = lane % 8;

  float acc[2][4][4] = {};
  const int k_tiles = (k + kBlockK - 1) / kBlockK;
  const auto load_stage = [&](int stage, int k_tile) {
    const int k0 = k_tile * kBlockK;
    load_tile<kBlockM, kBlockK, kVectorized>(stages[stage].a, a, m, k, block_row, k0);
    load_tile<kBlockK, kBlockN, kVectorized>(stages[stage].b, b, k, n, k0, block_col);
    cp_async_commit_group();
  };
  if (k_tiles > 0) load_stage(0, 0);
  for (int kt = 0; kt < k_tiles; ++kt) {
    if (kt + 1 < k_tiles) {
      load_stage((kt + 1) % 2, kt + 1);
      cp_async_wait_group<1>();  // tile kt has landed; kt + 1 may still be in flight
    } else {
      cp_async_wait_group<0>();
    }
    __syncthreads();  // every thread's copies of tile kt are visible to all
    const Stage& s = stages[kt % 2];
    FORGE_UNROLL
    for (int kk = 0; kk < kBlockK; kk += 16) {
      uint32_t fa[2][4], fb[4][2];
      FORGE_UNROLL
      for (int mi = 0; mi < 2; ++mi)
        ldmatrix_x4(
            fa[mi],
            &s.a[warp_row + mi * 16 + (matrix % 2) * 8 + matrix_row][kk + (matrix / 2) * 8]);
      FORGE_UNROLL
      for (int pair = 0; pair < 2; ++pair) {
        uint32_t d[4];
        ldmatrix_x4_trans(
            d, &s.b[kk + (matrix % 2) * 8 + matrix_row][warp_col + pair * 16 + (matrix / 2) * 8]);
        fb[2 * pair][0] = d[0];
        fb[2 * pair][1] = d[1];
        fb[2 * pair + 1][0] = d[2];
        fb[2 * pair + 1][1] = d[3];
      }
      FORGE_UNROLL
      for (int mi = 0; mi < 2; ++mi) FORGE_UNROLL
      for (int ni = 0; ni < 4; ++ni) mma_m16n8k16_bf16(acc[mi][ni], fa[mi], fb[ni], acc[mi][ni]);
    }
    __syncthreads();  // nobody refills this stage (iteration kt + 1) while others still read it
  }

  // C fragment: element e of tile (mi, ni) is row g + 8 (e >= 2), column 2 t + (e & 1).
  const int g = lane >> 2, t = lane % 4;
  FORGE_UNROLL
  for (int mi = 0; mi < 2; ++mi) FORGE_UNROLL
  for (int ni = 0; ni < 4; ++ni) FORGE_UNROLL
  for (int e = 0; e < 4; ++e) {
    const int row = block_row + warp_row + mi * 16 + g + (e >= 2 ? 8 : 0);
    const int col = block_col + warp_col + ni * 8 + 2 * t + (e & 1);
    if (row >= m || col >= n) continue;
    float& out = c[int64_t(row) * ldc + col];
    out = beta == 0.f ? alpha * acc[mi][ni][e] : alpha * acc[mi][ni][e] + beta * out;
  }
}

}  // namespace

void gemm_bf16_mma_batched(int m, int n, int k, float alpha, const bf16* a, int64_t stride_a,
                           const bf16* b, int64_t stride_b, float beta, float* c, int ldc,
                           int64_t stride_c, int batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  if (batch > 65535)  // grid.z limit
    throw std::invalid_argument("gemm_bf16_mma: batch " + std::to_string(batch) + " exceeds 65535");
  const dim3 grid((n + kBlockN - 1) / kBlockN, (m + kBlockM - 1) / kBlockM, unsigned(batch));
  // 16-byte chunks of every problem's rows: k and n multiples of 8 and the strides too.
  const bool aligned = k % kChunk == 0 && n % kChunk == 0 && stride_a % kChunk == 0 &&
                       stride_b % kChunk == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(b) % 16 == 0;
  if (aligned) {
    FORGE_LAUNCH((gemm_bf16_mma_kernel<true>), grid, kThreads, 0, kStream, a, stride_a, b, stride_b,
                 c, ldc, stride_c, alpha, beta, m, n, k);
  } else {
    FORGE_LAUNCH((gemm_bf16_mma_kernel<false>), grid, kThreads, 0, kStream, a, stride_a, b,
                 stride_b, c, ldc, stride_c, alpha, beta, m, n, k);
  }
  FORGE_CHECK_LAUNCH("gemm_bf16_mma_kernel");
}

void gemm_bf16_mma(const bf16* a, const bf16* b, float* c, int m, int n, int k) {
  gemm_bf16_mma_batched(m, n, k, 1.f, a, 0, b, 0, 0.f, c, n, 0, 1);
}

}  // namespace forge::FORGE_GPU_NS
