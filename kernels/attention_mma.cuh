// attention_mma.cuh: FlashAttention-2 on the tensor cores, forward and backward: the production
// attention at MatmulPrecision::bf16 (GpuBackend::attention_*, kernels/attention.cu) and the
// attention playground's version 5 (dev/attention). bf16 Q, K, V (and dO) in, fp32 O, lse (and
// dQ, dK, dV) out, fp32 statistics; the warp-level instructions are kernels/mma.cuh's (mma.sync
// m16n8k16, ldmatrix, cp.async), whose fragment layouts docs/TENSOR_CORES.md tabulates.
//
// Per problem b (its [t, D] matrices where an AttentionLayout puts them,
// kernels/attention_layout.cuh: [bh, t, D] or the packed projection, in place; lse [bh, t]):
//   S = scale Q K^T,  O = softmax_rows(S) V,  lse_i = log sum_j exp(S_ij)
// computed one tile of N keys at a time with the online softmax, in base 2 (exp2 is the GPU's
// native exponential; scores are scaled by log2(e) once):
//   x_ij = S_ij log2(e),  m_i <- max(m_i, max_j x_ij),  r = 2^(m_old - m_new),
//   l_i <- r l_i + sum_j 2^(x_ij - m_i),  acc_i <- r acc_i + sum_j bf16(2^(x_ij - m_i)) V_j,
//   at the end O_i = acc_i / l_i and lse_i = (m_i + log2 l_i) ln 2.
//
// Work split (FlashAttention-2, Dao 2023, arXiv:2307.08691, sections 3.1 and 3.3): a block of 4
// warps owns 64 query rows, a warp owns 16 of them, so no two warps ever combine partial results.
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
// does): causal masking, dropout. The backward pass is below the forward kernel.
#pragma once
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/attention_layout.cuh"
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
constexpr int kKeys = D == 128 ? 32 : 64;  // keys per K/V tile in forward
// Rows per streamed tile in backward: at D = 128 the dK/dV kernel holds K's and V's A fragments
// and the dK and dV accumulators (32 + 32 + 64 + 64 registers); 16-row tiles keep P and dS at
// 8 + 8 so that it fits in 255 registers without spilling.
template <int D>
constexpr int kBackwardRows = D == 128 ? 16 : 64;

// One stage of the pipeline: N rows of two [t, D] operands (K and V; in backward also Q and dO).
template <int D, int N>
struct Stage {
  bf16 k[N][D + kPad];
  bf16 v[N][D + kPad];
};

// Rows [row0, row0 + R) of a [t, D] matrix (rows ld bf16 apart, ld a multiple of 8 as the
// layouts' are for D a multiple of 16: every row starts 16-byte aligned) into tile by cp.async (not
// yet committed), zero past t. Offsets within one matrix are 32-bit (t ld < 2^31, which
// check_row_offsets enforces): 64-bit ones cost the dK/dV kernel at D = 128, at 255 registers
// already, a 16-byte spill.
template <int R, int D>
__device__ void copy_rows_async(bf16 (*tile)[D + kPad], const bf16* matrix, int ld, int row0,
                                int t) {
  for (int chunk = threadIdx.x; chunk < R * D / kChunk; chunk += kThreads) {
    const int r = chunk / (D / kChunk), c = chunk % (D / kChunk) * kChunk;
    const bool live = row0 + r < t;
    // With src-size 0 nothing is read; the matrix's base is a valid, aligned address.
    cp_async_cg<16>(&tile[r][c], live ? matrix + ((row0 + r) * ld + c) : matrix, live ? 16 : 0);
  }
}

// Rows [row0, row0 + N) of a and of b ([t, D] each, rows lda and ldb apart) into stage.k and
// stage.v, one cp.async group.
template <int D, int N>
__device__ void copy_stage(Stage<D, N>& stage, const bf16* a, int lda, const bf16* b, int ldb,
                           int row0, int t) {
  copy_rows_async<N, D>(stage.k, a, lda, row0, t);
  copy_rows_async<N, D>(stage.v, b, ldb, row0, t);
  cp_async_commit_group();
}

// The A fragments of rows [row0, row0 + 16) of a [t, D] matrix (rows ld apart), straight from
// global memory (zero past t): register r of slice kc holds row group + 8 (r % 2), columns
// kc 16 + 2 quad_lane + 8 (r / 2) + {0, 1}.
template <int D>
__device__ void load_row_fragments(uint32_t (&a)[D / 16][4], const bf16* matrix, int ld, int row0,
                                   int t) {
  const int lane = threadIdx.x % 32, group = lane / 4, quad_lane = lane % 4;
  FORGE_UNROLL
  for (int kc = 0; kc < D / 16; ++kc) FORGE_UNROLL
  for (int r = 0; r < 4; ++r) {
    const int row = row0 + group + 8 * (r % 2), col = kc * 16 + 2 * quad_lane + 8 * (r / 2);
    const bf16* x = matrix + (row * ld + col);
    a[kc][r] = row < t ? pack_bf16x2(x[0], x[1]) : 0u;
  }
}

// x += A tile^T: A [16][D] in A fragments (registers), tile [N][D] in shared memory (its rows are
// the product's columns): S = Q K^T, dP = dO V^T and, with keys as rows, their transposes.
// Per 16 columns of D and 16 rows of the tile, one ldmatrix.x4 of the tile, non-transposed (a B
// fragment holds two consecutive d of one tile row, the "col" layout), feeds two mma.
template <int D, int N>
__device__ void mma_times_tile_transposed(float (&x)[N / 8][4], const uint32_t (&a)[D / 16][4],
                                          const bf16 (*tile)[D + kPad]) {
  const int lane = threadIdx.x % 32, matrix = lane / 8, matrix_row = lane % 8;
  FORGE_UNROLL
  for (int kc = 0; kc < D / 16; ++kc) FORGE_UNROLL
  for (int pair = 0; pair < N / 16; ++pair) {
    // matrices (rows 0-7, d 0-7), (rows 0-7, d 8-15), (rows 8-15, d 0-7), (rows 8-15, d 8-15)
    uint32_t f[4];
    ldmatrix_x4(f, &tile[pair * 16 + (matrix / 2) * 8 + matrix_row][kc * 16 + (matrix % 2) * 8]);
    const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
    mma_m16n8k16_bf16(x[2 * pair], a[kc], b0, x[2 * pair]);
    mma_m16n8k16_bf16(x[2 * pair + 1], a[kc], b1, x[2 * pair + 1]);
  }
}

// acc += bf16(x) tile: x [16][N] in C fragments (fp32 registers), tile [N][D] in shared memory:
// O += P V, dQ += dS K and, with keys as rows, dV += P^T dO, dK += dS^T Q.
// The C fragments of two adjacent 8-column slices, rounded to bf16, are the A fragment of one
// 16-column slice: registers (row g, cols 0-7), (row g + 8, cols 0-7), (row g, cols 8-15),
// (row g + 8, cols 8-15) = C elements {0, 1}, {2, 3} of slices 2 kc and 2 kc + 1. The tile's B
// fragments come from ldmatrix.x4.trans (tile rows are the k dimension: .trans hands each lane
// two consecutive rows of one column d).
template <int D, int N>
__device__ void mma_fragments_times_tile(float (&acc)[D / 8][4], const float (&x)[N / 8][4],
                                         const bf16 (*tile)[D + kPad]) {
  const int lane = threadIdx.x % 32, matrix = lane / 8, matrix_row = lane % 8;
  FORGE_UNROLL
  for (int kc = 0; kc < N / 16; ++kc) {
    const float* lo = x[2 * kc];
    const float* hi = x[2 * kc + 1];
    const uint32_t a[4] = {pack_bf16x2(float_to_bf16(lo[0]), float_to_bf16(lo[1])),
                           pack_bf16x2(float_to_bf16(lo[2]), float_to_bf16(lo[3])),
                           pack_bf16x2(float_to_bf16(hi[0]), float_to_bf16(hi[1])),
                           pack_bf16x2(float_to_bf16(hi[2]), float_to_bf16(hi[3]))};
    FORGE_UNROLL
    for (int pair = 0; pair < D / 16; ++pair) {
      // matrices (rows 0-7, d 0-7), (rows 8-15, d 0-7), (rows 0-7, d 8-15), (rows 8-15, d 8-15)
      uint32_t f[4];
      ldmatrix_x4_trans(
          f, &tile[kc * 16 + (matrix % 2) * 8 + matrix_row][pair * 16 + (matrix / 2) * 8]);
      const uint32_t b0[2] = {f[0], f[1]}, b1[2] = {f[2], f[3]};
      mma_m16n8k16_bf16(acc[2 * pair], a, b0, acc[2 * pair]);
      mma_m16n8k16_bf16(acc[2 * pair + 1], a, b1, acc[2 * pair + 1]);
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads)
    flash_mma_forward_kernel(int t, float scale, AttentionLayout in, const bf16* q, const bf16* k,
                             const bf16* v, AttentionLayout ol, float* out, float* lse) {
  constexpr int N = kKeys<D>;
  __shared__ __align__(16) Stage<D, N> stages[2];
  const int64_t base = in.base(blockIdx.y);
  q += base, k += base, v += base, out += ol.base(blockIdx.y), lse += int64_t(blockIdx.y) * t;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, quad_lane = lane % 4;  // the fragments' groupID, threadID_in_group
  const int row0 = blockIdx.x * kBlockRows + warp * kWarpRows;
  const int tiles = (t + N - 1) / N;
  copy_stage(stages[0], k, in.ld, v, in.ld, 0, t);  // in flight while Q's fragments load

  uint32_t qa[D / 16][4];  // Q's A fragments, for the whole pass
  load_row_fragments<D>(qa, q, in.ld, row0, t);

  const float scale_log2 = scale * 1.4426950408889634f;  // log2(e)
  float acc[D / 8][4] = {};                              // O's C fragments: 16 rows x D columns
  float m[2] = {-INFINITY, -INFINITY};                   // rows group and group + 8, base-2 units
  float l[2] = {0.f, 0.f};                               // this lane's part of the row sums
  for (int kt = 0; kt < tiles; ++kt) {
    if (kt + 1 < tiles) {
      copy_stage(stages[(kt + 1) % 2], k, in.ld, v, in.ld, (kt + 1) * N, t);
      cp_async_wait_group<1>();  // tile kt has landed; kt + 1 may still be in flight
    } else {
      cp_async_wait_group<0>();
    }
    __syncthreads();  // every thread's copies of tile kt are visible to all
    const Stage<D, N>& s = stages[kt % 2];

    float x[N / 8][4] = {};  // S, then P: C fragments of 16 rows x N keys
    mma_times_tile_transposed<D, N>(x, qa, s.k);

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

    mma_fragments_times_tile<D, N>(acc, x, s.v);  // P stays in registers
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
    if (row < t) out[int64_t(row) * ol.ld + col] = acc[di][e] / l[e / 2];
  }
  FORGE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + group + 8 * h;
    if (quad_lane == 0 && row < t) lse[row] = (m[h] + log2f(l[h])) * 0.6931471805599453f;  // ln 2
  }
}

// ---------------------------------------------------------------- backward
// Backward, FlashAttention-2's algorithm (Dao 2023, algorithm 2) in two kernels without atomics,
// P recomputed from lse, D_i = dO_i . O_i given (fp32):
//   P_ij = 2^(S_ij log2(e) - lse_i log2(e)),  dP = dO V^T,  dS = P * (dP - D_i),
//   kKeyRows false, the dQ kernel: a warp owns 16 query rows (Q and dO in A fragments), key tiles
//     (K, V) stream through shared memory:  dQ_i += dS K  (scale applied at the store);
//   kKeyRows true, the dK/dV kernel: a warp owns 16 key rows (K and V in A fragments), query
//     tiles (Q, dO) stream through: it computes the transposes S^T = K Q^T and dP^T = V dO^T, so
//     P^T and dS^T come out as C fragments with keys as rows, which are the A fragments of
//       dV += P^T dO,  dK += dS^T Q.
// The same code serves both: rows x tile^T products, then C-fragment x tile products, exactly as
// in the forward pass; only where lse and D are indexed (by row, or by column = query) and which
// sums accumulate differ. Columns past t get P = 0: their tile rows are zero-filled, so their
// products vanish anyway, but lse and D are not read past t (the next problem's, or past the end,
// maybe inf). Each kernel computes S and dP (the dK/dV kernel also dV and dK, the dQ kernel dQ): 14
// t^2 D FLOPs in all where one fused kernel with atomic dQ would do 10.
template <int D, bool kKeyRows>
__global__ void __launch_bounds__(kThreads)
    flash_mma_backward_kernel(int t, float scale, AttentionLayout in, const bf16* q, const bf16* k,
                              const bf16* v, AttentionLayout ol, const bf16* gout, const float* lse,
                              const float* delta, float* gq, float* gk, float* gv) {
  constexpr int N = kBackwardRows<D>;
  __shared__ __align__(16) Stage<D, N> stages[2];  // .k: the tile of S's columns, .v: of dP's
  const int64_t base = in.base(blockIdx.y);
  q += base, k += base, v += base, gq += base, gk += base, gv += base;
  gout += ol.base(blockIdx.y);
  lse += int64_t(blockIdx.y) * t, delta += int64_t(blockIdx.y) * t;
  // S's operands (Q, K) are in `in`; dP's are V (`in`) and dO (`ol`).
  const bf16 *s_rows = kKeyRows ? k : q, *dp_rows = kKeyRows ? v : gout;
  const bf16 *s_cols = kKeyRows ? q : k, *dp_cols = kKeyRows ? gout : v;
  const int dp_rows_ld = kKeyRows ? in.ld : ol.ld, dp_cols_ld = kKeyRows ? ol.ld : in.ld;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, quad_lane = lane % 4;
  const int row0 = blockIdx.x * kBlockRows + warp * kWarpRows;
  const int tiles = (t + N - 1) / N;
  copy_stage(stages[0], s_cols, in.ld, dp_cols, dp_cols_ld, 0, t);

  uint32_t sa[D / 16][4], dpa[D / 16][4];  // the A fragments of S's and dP's rows
  load_row_fragments<D>(sa, s_rows, in.ld, row0, t);
  load_row_fragments<D>(dpa, dp_rows, dp_rows_ld, row0, t);
  constexpr float kLog2e = 1.4426950408889634f;
  const float scale_log2 = scale * kLog2e;
  float row_lse[2] = {0.f, 0.f}, row_delta[2] = {0.f, 0.f};  // the dQ kernel's, rows g, g + 8
  FORGE_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + group + 8 * h;
    row_lse[h] = row < t ? lse[row] * kLog2e : 0.f;
    row_delta[h] = row < t ? delta[row] : 0.f;
  }

  float acc[D / 8][4] = {};     // dQ, or dK
  float acc_gv[D / 8][4] = {};  // dV (the dK/dV kernel only)
  for (int kt = 0; kt < tiles; ++kt) {
    if (kt + 1 < tiles) {
      copy_stage(stages[(kt + 1) % 2], s_cols, in.ld, dp_cols, dp_cols_ld, (kt + 1) * N, t);
      cp_async_wait_group<1>();
    } else {
      cp_async_wait_group<0>();
    }
    __syncthreads();
    const Stage<D, N>& s = stages[kt % 2];
    float p[N / 8][4] = {}, ds[N / 8][4] = {};  // S then P, dP then dS (or their transposes)
    mma_times_tile_transposed<D, N>(p, sa, s.k);
    mma_times_tile_transposed<D, N>(ds, dpa, s.v);
    FORGE_UNROLL
    for (int ni = 0; ni < N / 8; ++ni) FORGE_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int col = kt * N + ni * 8 + 2 * quad_lane + e % 2;
      float lse_log2, d;
      if constexpr (kKeyRows) {
        lse_log2 = col < t ? lse[col] * kLog2e : 0.f;
        d = col < t ? delta[col] : 0.f;
      } else {
        lse_log2 = row_lse[e / 2];
        d = row_delta[e / 2];
      }
      p[ni][e] = col < t ? exp2f(p[ni][e] * scale_log2 - lse_log2) : 0.f;
      ds[ni][e] = p[ni][e] * (ds[ni][e] - d);
    }
    if constexpr (kKeyRows) {
      mma_fragments_times_tile<D, N>(acc_gv, p, s.v);  // dV += P^T dO
      mma_fragments_times_tile<D, N>(acc, ds, s.k);    // dK += dS^T Q
    } else {
      mma_fragments_times_tile<D, N>(acc, ds, s.k);  // dQ += dS K
    }
    __syncthreads();
  }

  float* out = kKeyRows ? gk : gq;
  FORGE_UNROLL
  for (int di = 0; di < D / 8; ++di) FORGE_UNROLL
  for (int e = 0; e < 4; ++e) {
    const int row = row0 + group + 8 * (e / 2), col = di * 8 + 2 * quad_lane + e % 2;
    if (row >= t) continue;
    out[int64_t(row) * in.ld + col] = scale * acc[di][e];
    if constexpr (kKeyRows) gv[int64_t(row) * in.ld + col] = acc_gv[di][e];
  }
}

inline bool supports_head_dim(int dh) {
  return dh == 16 || dh == 32 || dh == 64 || dh == 128;
}

// Offsets within one problem's matrices fit in 32 bits (copy_rows_async, load_row_fragments).
inline void check_row_offsets(const char* op, int t, AttentionLayout in, AttentionLayout ol) {
  const int64_t largest = int64_t(t) * (in.ld > ol.ld ? in.ld : ol.ld);
  if (largest > INT32_MAX)
    throw std::invalid_argument(std::string(op) + ": t * row stride = " + std::to_string(largest) +
                                " exceeds 2^31 - 1");
}

// O (through ol) and lse [bh, t] from bf16 q, k, v (through in) of bh problems; dh 16 (one k
// slice of the mma: vit-micro's heads), 32, 64 or 128.
inline void forward(int bh, int t, int dh, float scale, AttentionLayout in, const bf16* q,
                    const bf16* k, const bf16* v, AttentionLayout ol, float* out, float* lse) {
  check_row_offsets("flash_mma::forward", t, in, ol);
  const dim3 grid(unsigned(ceil_div(t, kBlockRows)), unsigned(bh));
  switch (dh) {
    case 16:
      FORGE_LAUNCH(flash_mma_forward_kernel<16>, grid, kThreads, 0, kStream, t, scale, in, q, k, v,
                   ol, out, lse);
      break;
    case 32:
      FORGE_LAUNCH(flash_mma_forward_kernel<32>, grid, kThreads, 0, kStream, t, scale, in, q, k, v,
                   ol, out, lse);
      break;
    case 64:
      FORGE_LAUNCH(flash_mma_forward_kernel<64>, grid, kThreads, 0, kStream, t, scale, in, q, k, v,
                   ol, out, lse);
      break;
    case 128:
      FORGE_LAUNCH(flash_mma_forward_kernel<128>, grid, kThreads, 0, kStream, t, scale, in, q, k, v,
                   ol, out, lse);
      break;
    default:
      throw std::invalid_argument("v5: head dim " + std::to_string(dh) +
                                  " is not one of 16, 32, 64, 128");
  }
  FORGE_CHECK_LAUNCH(flash_mma_forward_kernel);
}

// D_i = sum_c dO_ic O_ic for each of rows rows (row = problem t + i; O and dO through ol), from the
// same bf16 dO the backward kernels read (fp32 O): dS = P (dP - D) cancels exactly when both sides
// see one dO. A warp per row, 8 a block.
// A template over the head dim D, as every kernel of this header: the header is compiled into
// more than one program part (backend and playground) without a second definition.
constexpr int kDeltaRowsPerBlock = 8;
template <int D>
__global__ void flash_mma_delta_kernel(int64_t rows, int t, AttentionLayout ol, const float* out,
                                       const bf16* gout, float* delta) {
  const int64_t row = int64_t(blockIdx.x) * kDeltaRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  float sum = 0.f;
  if (row < rows) {
    const int64_t at = ol.base(int(row / t)) + row % t * ol.ld;
    for (int c = lane; c < D; c += 32) sum += bf16_to_float(gout[at + c]) * out[at + c];
  }
  sum = warp_sum(sum);  // every lane takes part, live row or not
  if (row < rows && lane == 0) delta[row] = sum;
}

template <int D>
void backward_kernels(int bh, int t, float scale, AttentionLayout in, const bf16* q, const bf16* k,
                      const bf16* v, AttentionLayout ol, const float* out, const bf16* gout,
                      const float* lse, float* delta, float* gq, float* gk, float* gv) {
  const int64_t rows = int64_t(bh) * t;
  FORGE_LAUNCH(flash_mma_delta_kernel<D>, dim3(unsigned(ceil_div(rows, kDeltaRowsPerBlock))),
               dim3(kDeltaRowsPerBlock * 32), 0, kStream, rows, t, ol, out, gout, delta);
  FORGE_CHECK_LAUNCH(flash_mma_delta_kernel);
  const dim3 grid(unsigned(ceil_div(t, kBlockRows)), unsigned(bh));
  FORGE_LAUNCH((flash_mma_backward_kernel<D, true>), grid, kThreads, 0, kStream, t, scale, in, q, k,
               v, ol, gout, lse, delta, gq, gk, gv);
  FORGE_CHECK_LAUNCH(flash_mma_backward_kernel);
  FORGE_LAUNCH((flash_mma_backward_kernel<D, false>), grid, kThreads, 0, kStream, t, scale, in, q,
               k, v, ol, gout, lse, delta, gq, gk, gv);
  FORGE_CHECK_LAUNCH(flash_mma_backward_kernel);
}

// dQ, dK, dV (fp32, through in) from bf16 q, k, v (through in), bf16 dO and fp32 O (through ol)
// and lse; delta [bh, t] is scratch for D = rowsum(dO * O).
inline void backward(int bh, int t, int dh, float scale, AttentionLayout in, const bf16* q,
                     const bf16* k, const bf16* v, AttentionLayout ol, const float* out,
                     const bf16* gout, const float* lse, float* delta, float* gq, float* gk,
                     float* gv) {
  check_row_offsets("flash_mma::backward", t, in, ol);
  switch (dh) {
    case 16:
      return backward_kernels<16>(bh, t, scale, in, q, k, v, ol, out, gout, lse, delta, gq, gk, gv);
    case 32:
      return backward_kernels<32>(bh, t, scale, in, q, k, v, ol, out, gout, lse, delta, gq, gk, gv);
    case 64:
      return backward_kernels<64>(bh, t, scale, in, q, k, v, ol, out, gout, lse, delta, gq, gk, gv);
    case 128:
      return backward_kernels<128>(bh, t, scale, in, q, k, v, ol, out, gout, lse, delta, gq, gk,
                                   gv);
    default:
      throw std::invalid_argument("v5: head dim " + std::to_string(dh) +
                                  " is not one of 16, 32, 64, 128");
  }
}

}  // namespace forge::FORGE_GPU_NS::flash_mma
