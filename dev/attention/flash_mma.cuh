// flash_mma.cuh: the playground's version 5, FlashAttention-2's forward pass on the tensor cores.
// bf16 Q, K, V in, fp32 O and lse out, fp32 statistics; the warp-level instructions are
// kernels/mma.cuh's (mma.sync m16n8k16, ldmatrix, cp.async), whose fragment layouts
// docs/TENSOR_CORES.md tabulates. Included by attention_playground.cu (one build per device).
//
// Per problem b (layout [bh, t, D], lse [bh, t], as engine/ops/attention.cpp lays it out):
//   S = scale Q K^T,  O = softmax_rows(S) V,  lse_i = log sum_j exp(S_ij)
// computed one tile of N keys at a time with the online softmax, in base 2 (exp2 is the GPU's
// native exponential; scores are scaled by log2(e) once):
//   x_ij = S_ij log2(e),  m_i <- max(m_i, max_j x_ij),  r = 2^(m_old - m_new),
//   l_i <- r l_i + sum_j 2^(x_ij - m_i),  acc_i <- r acc_i + sum_j bf16(2^(x_ij - m_i)) V_j,
//   at the end O_i = acc_i / l_i and lse_i = (m_i + log2 l_i) ln 2.
//
// Work split (FlashAttention-2, Dao 2023, section 3.1): a block of 4 warps owns 64 query rows, a
// warp owns 16 of them, so no two warps ever combine partial results.
//   Q: the warp's 16 x D rows are loaded once, straight from global memory, into A fragments
//      (D / 16 of them, 4 registers each) and stay in registers for the whole pass.
//   K, V: tiles of N keys (N = 64, or 32 at D = 128 to stay within 48 KiB of static shared
//      memory) go into shared memory by cp.async, double-buffered: while the warps work on tile
//      kt, the copies of tile kt + 1 are in flight; cp.async.wait_group 1 + __syncthreads make
//      tile kt visible. Rows past t are zero-filled (cp.async's src-size 0).
//   S = Q K^T: for each 16 columns of D and each 16 keys, one ldmatrix.x4 of K (rows = keys,
//      non-transposed: a B fragment holds two consecutive d of one key, the "col" layout) feeds two
//      mma.m16n8k16 into S's accumulators, N / 8 C fragments of 16 x 8.
//   softmax: a lane's C fragments hold rows g = lane / 4 and g + 8, columns 2 (lane % 4) + {0, 1}
//      of each 8-key slice; the row max is the lane's max combined over the 4 lanes of its quad by
//      __shfl_xor 1 and 2. l stays a per-lane partial sum until the end (one quad sum then).
//   P V: the C fragments of P, rounded to bf16, ARE the A fragments of P for the next mma (the
//      m16n8k16 C layout of two adjacent 8-key slices equals the A layout of one 16-key slice),
//      so P never leaves registers. V's B fragments come from ldmatrix.x4.trans (V is [key][d]
//      row-major: .trans hands each lane two consecutive keys of one column d).
// Tails: keys past t get x = -inf (weight 0; tile kt always holds key kt N < t, so m stays finite
// for every row); query rows past t read Q as zero and are not stored.
//
// Shared rows are padded by 8 bf16 (16 bytes): 16-byte alignment for cp.async and ldmatrix, and
// the 8 rows one ldmatrix matrix reads fall on distinct banks. Not done here (FlashAttention-2
// does): causal masking, dropout, a backward pass on the tensor cores (the playground's v5 has
// none; see docs/ATTENTION_KERNELS.md).
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/bf16.h"
#include "kernels/kernel_util.cuh"
#include "kernels/mma.cuh"
#include "kernels/reduce_utils.cuh"

namespace forge::FORGE_GPU_NS::flash_mma {
using namespace ::forge::tensor_core;

constexpr int kWarps = 4, kThreads = kWarps * 32;
constexpr int kWarpRows = 16, kBlockRows = kWarps * kWarpRows;  // one m16 tile per warp
constexpr int kPad = 8;    // bf16 beyond each shared row: 16 bytes
constexpr int kChunk = 8;  // bf16 in one 16-byte cp.async
template <int D>
constexpr int kKeys = D == 128 ? 32 : 64;  // keys per K/V tile

template <int D>
struct Stage {
  bf16 k[kKeys<D>][D + kPad];
  bf16 v[kKeys<D>][D + kPad];
};

// Rows [row0, row0 + R) of a [t, D] matrix into tile by cp.async (not yet committed), zero past t.
template <int R, int D>
__device__ void copy_rows_async(bf16 (*tile)[D + kPad], const bf16* matrix, int row0, int t) {
  for (int chunk = threadIdx.x; chunk < R * D / kChunk; chunk += kThreads) {
    const int r = chunk / (D / kChunk), c = chunk % (D / kChunk) * kChunk;
    const bool live = row0 + r < t;
    // With src-size 0 nothing is read; the matrix's base is a valid, aligned address.
    cp_async_cg<16>(&tile[r][c], live ? matrix + int64_t(row0 + r) * D + c : matrix, live ? 16 : 0);
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_mma_forward_kernel(int t, float scale, const bf16* q, const bf16* k, const bf16* v,
                             float* out, float* lse) {
  constexpr int N = kKeys<D>;
  __shared__ __align__(16) Stage<D> stages[2];
  const int64_t base = int64_t(blockIdx.y) * t * D;
  q += base, k += base, v += base, out += base, lse += int64_t(blockIdx.y) * t;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, quad_lane = lane % 4;  // the fragments' groupID, threadID_in_group
  const int row0 = blockIdx.x * kBlockRows + warp * kWarpRows;
  // The row this lane addresses for ldmatrix.x4: matrix j = lane / 8, its row lane % 8.
  const int matrix = lane / 8, matrix_row = lane % 8;

  const int tiles = (t + N - 1) / N;
  const auto copy_stage = [&](int stage, int tile) {
    copy_rows_async<N, D>(stages[stage].k, k, tile * N, t);
    copy_rows_async<N, D>(stages[stage].v, v, tile * N, t);
    cp_async_commit_group();
  };
  copy_stage(0, 0);  // in flight while Q's fragments load

  // Q's A fragments: register r of slice kc holds row group + 8 (r % 2), columns
  // kc 16 + 2 quad_lane + 8 (r / 2) + {0, 1}.
  uint32_t qa[D / 16][4];
  FORGE_UNROLL
  for (int kc = 0; kc < D / 16; ++kc) FORGE_UNROLL
  for (int r = 0; r < 4; ++r) {
    const int row = row0 + group + 8 * (r % 2), col = kc * 16 + 2 * quad_lane + 8 * (r / 2);
    const bf16* x = q + int64_t(row) * D + col;
    qa[kc][r] = row < t ? pack_bf16x2(x[0], x[1]) : 0u;
  }

  const float scale_log2 = scale * 1.4426950408889634f;  // log2(e)
  float acc[D / 8][4] = {};                              // O's C fragments: 16 rows x D columns
  float m[2] = {-INFINITY, -INFINITY};                   // rows group and group + 8, base-2 units
  float l[2] = {0.f, 0.f};                               // this lane's part of the row sums
  for (int kt = 0; kt < tiles; ++kt) {
    if (kt + 1 < tiles) {
      copy_stage((kt + 1) % 2, kt + 1);
      cp_async_wait_group<1>();  // tile kt has landed; kt + 1 may still be in flight
    } else {
      cp_async_wait_group<0>();
    }
    __syncthreads();  // every thread's copies of tile kt are visible to all
    const Stage<D>& s = stages[kt % 2];

    float x[N / 8][4] = {};  // S, then P: C fragments of 16 rows x N keys
    FORGE_UNROLL
    for (int kc = 0; kc < D / 16; ++kc) FORGE_UNROLL
    for (int pair = 0; pair < N / 16; ++pair) {
      // matrices (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15, d 8-15)
      uint32_t f[4];
      ldmatrix_x4(f, &s.k[pair * 16 + (matrix / 2) * 8 + matrix_row][kc * 16 + (matrix % 2) * 8]);
      const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
      mma_m16n8k16_bf16(x[2 * pair], qa[kc], b0, x[2 * pair]);
      mma_m16n8k16_bf16(x[2 * pair + 1], qa[kc], b1, x[2 * pair + 1]);
    }

    // Element e of slice ni: row group + 8 (e / 2), key kt N + ni 8 + 2 quad_lane + e % 2.
    float tile_max[2] = {-INFINITY, -INFINITY};
    FORGE_UNROLL
    for (int ni = 0; ni < N / 8; ++ni) FORGE_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int key = kt * N + ni * 8 + 2 * quad_lane + e % 2;
      x[ni][e] = key < t ? x[ni][e] * scale_log2 : -INFINITY;
      tile_max[e / 2] = fmaxf(tile_max[e / 2], x[ni][e]);
    }
    float rescale[2], row_sum[2] = {0.f, 0.f};
    FORGE_UNROLL
    for (int h = 0; h < 2; ++h) {  // the quad's 4 lanes hold the row's N keys between them
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullWarpMask, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(kFullWarpMask, tile_max[h], 2));
      const float m_new = fmaxf(m[h], tile_max[h]);  // finite: key kt N < t is in the tile
      rescale[h] = exp2f(m[h] - m_new);              // 0 on the first tile
      m[h] = m_new;
    }
    FORGE_UNROLL
    for (int ni = 0; ni < N / 8; ++ni) FORGE_UNROLL
    for (int e = 0; e < 4; ++e) {
      x[ni][e] = exp2f(x[ni][e] - m[e / 2]);  // 0 past t
      row_sum[e / 2] += x[ni][e];
    }
    FORGE_UNROLL
    for (int h = 0; h < 2; ++h) l[h] = l[h] * rescale[h] + row_sum[h];
    FORGE_UNROLL
    for (int di = 0; di < D / 8; ++di) FORGE_UNROLL
    for (int e = 0; e < 4; ++e) acc[di][e] *= rescale[e / 2];

    FORGE_UNROLL
    for (int kc = 0; kc < N / 16; ++kc) {
      // A fragment of P over keys kc 16 .. + 15: registers (row g, keys 0-7), (row g + 8, keys
      // 0-7), (row g, keys 8-15), (row g + 8, keys 8-15) = C elements {0,1}, {2,3} of slices
      // 2 kc and 2 kc + 1.
      const float* lo = x[2 * kc];
      const float* hi = x[2 * kc + 1];
      const uint32_t pa[4] = {pack_bf16x2(float_to_bf16(lo[0]), float_to_bf16(lo[1])),
                              pack_bf16x2(float_to_bf16(lo[2]), float_to_bf16(lo[3])),
                              pack_bf16x2(float_to_bf16(hi[0]), float_to_bf16(hi[1])),
                              pack_bf16x2(float_to_bf16(hi[2]), float_to_bf16(hi[3]))};
      FORGE_UNROLL
      for (int pair = 0; pair < D / 16; ++pair) {
        // matrices (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15)
        uint32_t f[4];
        ldmatrix_x4_trans(
            f, &s.v[kc * 16 + (matrix % 2) * 8 + matrix_row][pair * 16 + (matrix / 2) * 8]);
        const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
        mma_m16n8k16_bf16(acc[2 * pair], pa, b0, acc[2 * pair]);
        mma_m16n8k16_bf16(acc[2 * pair + 1], pa, b1, acc[2 * pair + 1]);
      }
    }
    __syncthreads();  // nobody refills this stage (iteration kt + 1) while others still read it
  }

  FORGE_UNROLL
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(kFullWarpMask, l[h], 1);
    l[h] += __shfl_xor_sync(kFullWarpMask, l[h], 2);
  }
  FORGE_UNROLL
  for (int di = 0; di < D / 8; ++di) FORGE_UNROLL
  for (int e = 0; e < 4; ++e) {
    const int row = row0 + group + 8 * (e / 2), col = di * 8 + 2 * quad_lane + e % 2;
    if (row < t) out[int64_t(row) * D + col] = acc[di][e] / l[e / 2];
  }
  FORGE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + group + 8 * h;
    if (quad_lane == 0 && row < t) lse[row] = (m[h] + log2f(l[h])) * 0.6931471805599453f;  // ln 2
  }
}

inline bool supports_head_dim(int dh) {
  return dh == 32 || dh == 64 || dh == 128;
}

// O [bh, t, dh] and lse [bh, t] from bf16 q, k, v [bh, t, dh]; dh 32, 64 or 128.
inline void forward(int bh, int t, int dh, float scale, const bf16* q, const bf16* k, const bf16* v,
                    float* out, float* lse) {
  const dim3 grid(unsigned(ceil_div(t, kBlockRows)), unsigned(bh));
  switch (dh) {
    case 32:
      FORGE_LAUNCH(flash_mma_forward_kernel<32>, grid, kThreads, 0, kStream, t, scale, q, k, v, out,
                   lse);
      break;
    case 64:
      FORGE_LAUNCH(flash_mma_forward_kernel<64>, grid, kThreads, 0, kStream, t, scale, q, k, v, out,
                   lse);
      break;
    case 128:
      FORGE_LAUNCH(flash_mma_forward_kernel<128>, grid, kThreads, 0, kStream, t, scale, q, k, v,
                   out, lse);
      break;
    default:
      throw std::invalid_argument("v5: head dim " + std::to_string(dh) +
                                  " is not one of 32, 64, 128");
  }
  FORGE_CHECK_LAUNCH(flash_mma_forward_kernel);
}

}  // namespace forge::FORGE_GPU_NS::flash_mma
