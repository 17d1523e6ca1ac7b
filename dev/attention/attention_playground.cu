// attention_playground.cu: numbered versions of scaled-dot-product attention, forward and
// backward, side by side, in the manner of llm.c's dev/cuda/attention_forward.cu. Each version is
// checked against the CPU backend's attention (the engine's oracle) and timed over a grid of
// shapes. main.cpp parses the flags; docs/ATTENTION_KERNELS.md has how to run it and results.
//
// Why dev/attention/ and not kernels/: this is a program, not part of the backend. It sits at the
// top of docs/ARCHITECTURE.md's layering, beside tools/: it uses the engine (the CPU backend as
// reference, the GPU backend's memory functions and, as v3, its production attention) and nothing
// uses it. Its kernels are teaching versions; kernels/*.cu are globbed into the backend, which must
// not carry them.
//
// The problem, as the engine's attention op lays it out (engine/ops/attention.cpp): bh = batch *
// heads independent problems, each with Q, K, V, O, dO [t, dh] row-major, contiguous one after the
// other ([bh, t, dh]); lse [bh, t].
//   S = scale Q K^T,   P = softmax_rows(S),   O = P V,   lse_i = log sum_j exp(S_ij)
//   dV = P^T dO,   dP = dO V^T,   dS = P * (dP - D) with D_i = rowsum(dO * O)_i,
//   dQ = scale dS K,   dK = scale dS^T Q
// (D_i = sum_j P_ij dP_ij = dO_i . O_i: the softmax Jacobian; engine/cpu/attention.cpp derives it.)
//
// The versions:
//   v1 naive: three phases through global memory. S [bh, t, t] is materialised by a matmul kernel
//      with one thread per output element (each reads a row of Q and a row of K straight from
//      global memory), turned into P in place by a softmax kernel with one thread per row, then
//      O = P V by the same matmul kernel. P stays in global memory for backward, which runs five
//      more phases on it: dV, dP (a second [bh, t, t] buffer), dS in place over dP, dQ, dK.
//   v2 tiled: the same phases; the matmuls stage 32 x 32 tiles of both operands in shared memory
//      (each loaded element is reused 32 times), the row kernels give each row one warp and
//      reduce with warp shuffles (reduce_utils.cuh) instead of one thread walking the row.
//   v3 flash: the production kernels, kernels/attention.cu, called through the GPU backend: online
//      softmax over K/V tiles in shared memory, only lse saved, no t x t buffer in either
//      direction (backward recomputes P from lse).
//   v4 warp: v3's algorithm with one warp per row instead of 4 threads per row: lane j scores key
//      j of a 32-key tile, then lane c owns output columns c + 32 cc. Simpler shuffles, but 8 rows
//      a block share each staged K/V tile where v3 has 32.
//   v5 mma: FlashAttention-2 on the tensor cores (kernels/attention_mma.cuh): bf16 Q, K, V, dO,
//   mma.sync for
//      every product, online softmax on the accumulator fragments, fp32 O, lse, dQ, dK, dV; the
//      backward's dK/dV and dQ kernels recompute P from lse as v3's do. The playground rounds the
//      fp32 inputs to bf16 on the host, once per shape, and checks v5 against the CPU backend
//      (fp32) run on those rounded values, with bounds for the kernels' own roundings of P and dS
//      to bf16 (within_bf16_bound).
//   v6 bf16: v5 in production: the backend's attention_forward / _backward at
//      MatmulPrecision::bf16 (kernels/attention.cu), which rounds the fp32 q, k, v, dO to bf16 on
//      the device and runs v5's kernels; checked as v5 is (the rounding is the same RNE).
//
// Conventions of the printed figures (the same for every version, so that GFLOP/s compare times):
//   FLOPs: forward 4 bh t^2 dh (the two matmuls S = QK^T and PV at 2 t^2 dh each; the softmax's
//   exps are not counted), backward 2.5 x forward = 10 bh t^2 dh (FlashAttention's convention:
//   dV, dP, dQ, dK plus the recomputation of S). v1/v2 do 8 t^2 dh in backward (no recompute), v3
//   and v4 14 t^2 dh (S and dP in both the dK/dV and the dQ kernel: see kernels/attention.cu); the
//   nominal count ignores that.
//   Bytes: global memory traffic the design implies: each kernel reads each tensor it uses once
//   and writes each result once, v5's bf16 tensors at 2 bytes an element (re-reads that caches may
//   or may not catch are not counted, e.g. v1's matmul reading rows of Q and K t times). The
//   [bh, t, t] buffers of v1/v2 count, which is the whole point of v3. Per version below
//   (traffic_*).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "dev/attention/playground.h"
#include "engine/backend.h"
#include "engine/cuda/gpu_runtime.h"
#include "kernels/attention_mma.cuh"
#include "kernels/bf16.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {
namespace {

#if FORGE_SIM_BUILD
constexpr Device kDevice = Device::sim;
#else
constexpr Device kDevice = Device::cuda;
#endif

// One problem on the device, all pointers device memory. probs and gscores are v1/v2's
// [bh, t, t] buffers (P kept from forward to backward; dP, then dS in place), delta v4's D [bh, t].
// q16, k16, v16, gout16: q, k, v, dO rounded to bf16, v5's inputs.
struct Problem {
  int bh, t, dh;
  float scale;
  const float *q, *k, *v, *gout;
  float *out, *lse, *gq, *gk, *gv;
  float *probs, *gscores, *delta;
  const bf16 *q16, *k16, *v16, *gout16;
};

// ---------------------------------------------------------------- v1 and v2: the matmul phases
// A matmul operand op(X) of each problem b: element (r, c) at data[b * batch + r * row + c * col].
// A row-major [rows, cols] matrix has (row, col) = (cols, 1); its transpose (1, rows): one kernel
// does every product of the backward pass without copies.
struct Operand {
  const float* data;
  int64_t batch;
  int row, col;
  __device__ float at(int b, int r, int c) const {
    return data[b * batch + int64_t(r) * row + int64_t(c) * col];
  }
};
Operand matrix(const float* data, int rows, int cols) {
  return {data, int64_t(rows) * cols, cols, 1};
}
Operand transposed(const float* data, int rows, int cols) {  // op(X) = X^T of X [rows, cols]
  return {data, int64_t(rows) * cols, 1, cols};
}

// v1: C_b = alpha op(A)_b op(B)_b, C_b [m, n] row-major, the inner dimension kk.
// One thread per element of C: block 16 x 16, grid (ceil(n / 16), ceil(m / 16), bh). Each thread
// loads kk elements of A and kk of B for kk FMAs: 8 bytes a FMA, no reuse but what caches find.
constexpr int kNaiveBlock = 16;
__global__ void matmul_naive_kernel(int m, int n, int kk, float alpha, Operand a, Operand b,
                                    float* c) {
  const int row = blockIdx.y * kNaiveBlock + threadIdx.y;
  const int col = blockIdx.x * kNaiveBlock + threadIdx.x;
  const int z = blockIdx.z;
  if (row >= m || col >= n) return;
  float sum = 0.f;
  for (int x = 0; x < kk; ++x) sum += a.at(z, row, x) * b.at(z, x, col);
  c[int64_t(z) * m * n + int64_t(row) * n + col] = alpha * sum;
}

// v2: the same product through 32 x 32 tiles of op(A) and op(B) in shared memory.
// Block 32 x 8 threads, grid (ceil(n / 32), ceil(m / 32), bh); thread (tx, ty) owns the 4 outputs
// (ty + 8 r, tx), r < 4, of its block's 32 x 32 tile of C. Per step of 32 along kk the block
// loads 2 x 32 x 32 floats once and does 32^3 FMAs from shared memory: each loaded element is used
// 32 times (1/4 byte a FMA from global memory against v1's 8).
constexpr int kTile = 32, kTileRows = 8, kRowsPerThread = kTile / kTileRows;

// Stages op(X)(r0 + r, c0 + c), r, c < 32, into tile (zero outside [rows, cols]). Consecutive
// lanes take consecutive addresses in memory whether X is stored as op(X) or transposed
// (coalesced); the + 1 column of padding puts a transposed store's 32 rows on 32 banks.
__device__ void stage_tile(float (*tile)[kTile + 1], const Operand& x, int z, int r0, int c0,
                           int rows, int cols) {
  for (int e = threadIdx.y * kTile + threadIdx.x; e < kTile * kTile; e += kTile * kTileRows) {
    const bool along_cols = x.col == 1;
    const int r = along_cols ? e / kTile : e % kTile, c = along_cols ? e % kTile : e / kTile;
    tile[r][c] = r0 + r < rows && c0 + c < cols ? x.at(z, r0 + r, c0 + c) : 0.f;
  }
}

__global__ void matmul_tiled_kernel(int m, int n, int kk, float alpha, Operand a, Operand b,
                                    float* c) {
  __shared__ float a_tile[kTile][kTile + 1], b_tile[kTile][kTile + 1];
  const int z = blockIdx.z, row0 = blockIdx.y * kTile, col0 = blockIdx.x * kTile;
  const int tx = threadIdx.x, ty = threadIdx.y;
  float acc[kRowsPerThread] = {};
  for (int x0 = 0; x0 < kk; x0 += kTile) {
    stage_tile(a_tile, a, z, row0, x0, m, kk);
    stage_tile(b_tile, b, z, x0, col0, kk, n);
    __syncthreads();
    for (int x = 0; x < kTile; ++x) {
      const float bx = b_tile[x][tx];  // a_tile[row][x] is one address for the warp: a broadcast
      FORGE_UNROLL
      for (int r = 0; r < kRowsPerThread; ++r) acc[r] += a_tile[ty + kTileRows * r][x] * bx;
    }
    __syncthreads();  // every warp is done with the tiles before the next step overwrites them
  }
  FORGE_UNROLL
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int row = row0 + ty + kTileRows * r, col = col0 + tx;
    if (row < m && col < n) c[int64_t(z) * m * n + int64_t(row) * n + col] = alpha * acc[r];
  }
}

// C = alpha op(A) op(B) for every problem, by v1's or v2's kernel.
void matmul(bool tiled, int bh, int m, int n, int kk, float alpha, Operand a, Operand b, float* c) {
  if (tiled) {
    const dim3 grid(unsigned(ceil_div(n, kTile)), unsigned(ceil_div(m, kTile)), unsigned(bh));
    FORGE_LAUNCH(matmul_tiled_kernel, grid, dim3(kTile, kTileRows), 0, kStream, m, n, kk, alpha, a,
                 b, c);
    FORGE_CHECK_LAUNCH(matmul_tiled_kernel);
  } else {
    const dim3 grid(unsigned(ceil_div(n, kNaiveBlock)), unsigned(ceil_div(m, kNaiveBlock)),
                    unsigned(bh));
    FORGE_LAUNCH(matmul_naive_kernel, grid, dim3(kNaiveBlock, kNaiveBlock), 0, kStream, m, n, kk,
                 alpha, a, b, c);
    FORGE_CHECK_LAUNCH(matmul_naive_kernel);
  }
}

// ---------------------------------------------------------------- v1 and v2: the row phases
// Softmax of each row of S [rows, t], in place (S becomes P), and lse_i = m_i + log l_i with
// m_i = max_j S_ij, l_i = sum_j exp(S_ij - m_i), P_ij = exp(S_ij - m_i) / l_i.
// v1: one thread per row walks it three times: 256 threads a block, grid ceil(rows / 256).
// Neighbouring threads read addresses t floats apart (uncoalesced).
__global__ void softmax_rows_naive_kernel(int64_t rows, int t, float* s, float* lse) {
  const int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  float* x = s + row * t;
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < t; ++j) m = fmaxf(m, x[j]);
  for (int j = 0; j < t; ++j) l += expf(x[j] - m);
  for (int j = 0; j < t; ++j) x[j] = expf(x[j] - m) / l;
  lse[row] = m + logf(l);
}

// v2: one warp per row, lanes strided over j (coalesced), max and sum by warp shuffles; 8 rows a
// 256-thread block (launch_utils.cuh's row layout), grid ceil(rows / 8).
__global__ void softmax_rows_warp_kernel(int64_t rows, int t, float* s, float* lse) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = lane_id();
  const bool live = row < rows;  // dead rows still take part in the shuffles
  float* x = s + (live ? row : 0) * t;
  float m = -INFINITY, l = 0.f;
  if (live)
    for (int j = lane; j < t; j += kWarp) m = fmaxf(m, x[j]);
  m = warp_max(m);
  if (live)
    for (int j = lane; j < t; j += kWarp) l += expf(x[j] - m);
  l = warp_sum(l);
  if (!live) return;
  for (int j = lane; j < t; j += kWarp) x[j] = expf(x[j] - m) / l;
  if (lane == 0) lse[row] = m + logf(l);
}

// dS_ij = P_ij (dP_ij - D_i), D_i = dO_i . O_i, in place over dP [rows, t]; O, dO [rows, dh].
// v1: one thread per row (256 a block).
__global__ void softmax_backward_naive_kernel(int64_t rows, int t, int dh, const float* p,
                                              const float* out, const float* gout, float* gs) {
  const int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  float d = 0.f;
  for (int c = 0; c < dh; ++c) d += gout[row * dh + c] * out[row * dh + c];
  for (int j = 0; j < t; ++j) gs[row * t + j] = p[row * t + j] * (gs[row * t + j] - d);
}

// v2: one warp per row: D by a warp sum over dh, then lanes strided over j.
__global__ void softmax_backward_warp_kernel(int64_t rows, int t, int dh, const float* p,
                                             const float* out, const float* gout, float* gs) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = lane_id();
  const bool live = row < rows;
  float d = 0.f;
  if (live)
    for (int c = lane; c < dh; c += kWarp) d += gout[row * dh + c] * out[row * dh + c];
  d = warp_sum(d);
  if (!live) return;
  for (int j = lane; j < t; j += kWarp) gs[row * t + j] = p[row * t + j] * (gs[row * t + j] - d);
}

// ---------------------------------------------------------------- v1 and v2: the phases
void three_phase_forward(const Problem& p, bool tiled) {
  const int t = p.t, dh = p.dh;
  const int64_t rows = int64_t(p.bh) * t;
  matmul(tiled, p.bh, t, t, dh, p.scale, matrix(p.q, t, dh), transposed(p.k, t, dh), p.probs);
  if (tiled) {
    FORGE_LAUNCH(softmax_rows_warp_kernel, dim3(unsigned(ceil_div(rows, kRowsPerBlock))),
                 dim3(kBlockThreads), 0, kStream, rows, t, p.probs, p.lse);
    FORGE_CHECK_LAUNCH(softmax_rows_warp_kernel);
  } else {
    FORGE_LAUNCH(softmax_rows_naive_kernel, dim3(unsigned(ceil_div(rows, kBlockThreads))),
                 dim3(kBlockThreads), 0, kStream, rows, t, p.probs, p.lse);
    FORGE_CHECK_LAUNCH(softmax_rows_naive_kernel);
  }
  matmul(tiled, p.bh, t, dh, t, 1.f, matrix(p.probs, t, t), matrix(p.v, t, dh), p.out);
}

void three_phase_backward(const Problem& p, bool tiled) {
  const int t = p.t, dh = p.dh;
  const int64_t rows = int64_t(p.bh) * t;
  matmul(tiled, p.bh, t, dh, t, 1.f, transposed(p.probs, t, t), matrix(p.gout, t, dh), p.gv);
  matmul(tiled, p.bh, t, t, dh, 1.f, matrix(p.gout, t, dh), transposed(p.v, t, dh), p.gscores);
  if (tiled) {
    FORGE_LAUNCH(softmax_backward_warp_kernel, dim3(unsigned(ceil_div(rows, kRowsPerBlock))),
                 dim3(kBlockThreads), 0, kStream, rows, t, dh, p.probs, p.out, p.gout, p.gscores);
    FORGE_CHECK_LAUNCH(softmax_backward_warp_kernel);
  } else {
    FORGE_LAUNCH(softmax_backward_naive_kernel, dim3(unsigned(ceil_div(rows, kBlockThreads))),
                 dim3(kBlockThreads), 0, kStream, rows, t, dh, p.probs, p.out, p.gout, p.gscores);
    FORGE_CHECK_LAUNCH(softmax_backward_naive_kernel);
  }
  matmul(tiled, p.bh, t, dh, t, p.scale, matrix(p.gscores, t, t), matrix(p.k, t, dh), p.gq);
  matmul(tiled, p.bh, t, dh, t, p.scale, transposed(p.gscores, t, t), matrix(p.q, t, dh), p.gk);
}

// ---------------------------------------------------------------- v4: flash, a warp per row
// v3's algorithm (online softmax forward, P recomputed from lse in backward, no t x t buffer) with
// another split of the work: one warp owns one row, and lanes change role within a key tile.
//   scores: lane j computes S_ij for key j of the 32-key tile, a dot product over dh read from
//           shared memory (row j of the tile: stride dh + 1, so the 32 lanes hit 32 banks);
//   row max and sum: warp_max / warp_sum over the 32 scores (v3: 4 lanes a row, 2 shuffles);
//   output: lane c accumulates columns c + 32 cc (cc < 4: dh <= 128), receiving each p_j from
//           lane j by __shfl_sync.
// Block: 8 warps = 8 rows, 256 threads; grid (ceil(t / 8), bh). The 32-row K and V tiles are
// staged once per block for its 8 rows (v3: once per 32 rows), so K and V are read t / 8 times
// from global memory or L2 against v3's t / 32: the price of the simpler mapping. Dynamic shared
// memory: two [32][dh + 1] tiles plus the block's rows ([8][dh + 1] each), 41 KiB at dh = 128.
constexpr int kWarpRows = kRowsPerBlock;  // rows (warps) per block
constexpr int kKeys = kWarp;              // keys (or queries) per staged tile: one per lane
constexpr int kMaxColsPerLane = 4;        // dh <= 4 * 32

// Rows [row0, row0 + rows) of a [t, dh] matrix into tile [rows][dh + 1], zero past t.
__device__ void stage_rows(float* tile, const float* matrix, int row0, int rows, int t, int dh) {
  for (int e = threadIdx.x; e < rows * dh; e += blockDim.x) {
    const int r = e / dh, c = e % dh;
    tile[r * (dh + 1) + c] = row0 + r < t ? matrix[int64_t(row0 + r) * dh + c] : 0.f;
  }
}

__device__ float dot_row(const float* a, const float* b, int dh) {
  float sum = 0.f;
  for (int c = 0; c < dh; ++c) sum += a[c] * b[c];
  return sum;
}

// Forward: m, l, acc as in kernels/attention.cu's header, one key tile at a time.
__global__ void flash_warp_forward_kernel(int t, int dh, float scale, const float* q,
                                          const float* k, const float* v, float* out, float* lse) {
  FORGE_DYNAMIC_SMEM(float, smem);
  const int ld = dh + 1;
  float *k_tile = smem, *v_tile = k_tile + kKeys * ld, *q_rows = v_tile + kKeys * ld;
  const int64_t base = int64_t(blockIdx.y) * t * dh;
  const int warp = threadIdx.x / kWarp, lane = lane_id();
  const int i0 = blockIdx.x * kWarpRows, i = i0 + warp;
  stage_rows(q_rows, q + base, i0, kWarpRows, t, dh);  // rows past t are zero: harmless scores

  float m = -INFINITY, l = 0.f, acc[kMaxColsPerLane] = {};
  for (int k0 = 0; k0 < t; k0 += kKeys) {
    __syncthreads();  // the previous tiles are consumed before they are overwritten
    stage_rows(k_tile, k + base, k0, kKeys, t, dh);
    stage_rows(v_tile, v + base, k0, kKeys, t, dh);
    __syncthreads();
    const float s =
        k0 + lane < t ? scale * dot_row(q_rows + warp * ld, k_tile + lane * ld, dh) : -INFINITY;
    const float m_new = fmaxf(m, warp_max(s));  // finite: key k0 < t is in the tile
    const float p = expf(s - m_new), rescale = expf(m - m_new);  // p = 0 past t
    l = l * rescale + warp_sum(p);
    m = m_new;
    FORGE_UNROLL
    for (int cc = 0; cc < kMaxColsPerLane; ++cc) acc[cc] *= rescale;
    for (int j = 0; j < kKeys; ++j) {  // all 32, every lane: the shuffle needs the whole warp
      const float pj = __shfl_sync(kFullWarpMask, p, j);
      FORGE_UNROLL
      for (int cc = 0; cc < kMaxColsPerLane; ++cc) {
        const int c = lane + kWarp * cc;
        if (c < dh) acc[cc] += pj * v_tile[j * ld + c];
      }
    }
  }
  if (i >= t) return;  // after the last barrier and shuffle
  FORGE_UNROLL
  for (int cc = 0; cc < kMaxColsPerLane; ++cc) {
    const int c = lane + kWarp * cc;
    if (c < dh) out[base + int64_t(i) * dh + c] = acc[cc] / l;
  }
  if (lane == 0) lse[int64_t(blockIdx.y) * t + i] = m + logf(l);
}

// D_i = dO_i . O_i, one warp per row (8 rows a 256-thread block).
__global__ void row_dot_kernel(int64_t rows, int dh, const float* out, const float* gout,
                               float* delta) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  float d = 0.f;
  if (row < rows)
    for (int c = lane_id(); c < dh; c += kWarp) d += gout[row * dh + c] * out[row * dh + c];
  d = warp_sum(d);  // every lane takes part, also past the last row
  if (row < rows && lane_id() == 0) delta[row] = d;
}

// dQ_i = scale sum_j dS_ij K_j: a warp per query row i, lane j of a key tile computes
// P_ij = exp(S_ij - lse_i) and dS_ij = P_ij (dO_i . V_j - D_i). Shared memory: K, V tiles and the
// block's Q and dO rows.
__global__ void flash_warp_backward_q_kernel(int t, int dh, float scale, const float* q,
                                             const float* k, const float* v, const float* gout,
                                             const float* lse, const float* delta, float* gq) {
  FORGE_DYNAMIC_SMEM(float, smem);
  const int ld = dh + 1;
  float *k_tile = smem, *v_tile = k_tile + kKeys * ld;
  float *q_rows = v_tile + kKeys * ld, *go_rows = q_rows + kWarpRows * ld;
  const int64_t base = int64_t(blockIdx.y) * t * dh;
  const int warp = threadIdx.x / kWarp, lane = lane_id();
  const int i0 = blockIdx.x * kWarpRows, i = i0 + warp;
  stage_rows(q_rows, q + base, i0, kWarpRows, t, dh);
  stage_rows(go_rows, gout + base, i0, kWarpRows, t, dh);
  const float lse_i = i < t ? lse[int64_t(blockIdx.y) * t + i] : 0.f;
  const float delta_i = i < t ? delta[int64_t(blockIdx.y) * t + i] : 0.f;

  float acc[kMaxColsPerLane] = {};
  for (int k0 = 0; k0 < t; k0 += kKeys) {
    __syncthreads();
    stage_rows(k_tile, k + base, k0, kKeys, t, dh);
    stage_rows(v_tile, v + base, k0, kKeys, t, dh);
    __syncthreads();
    float ds = 0.f;  // keys past t contribute nothing
    if (k0 + lane < t) {
      const float p = expf(scale * dot_row(q_rows + warp * ld, k_tile + lane * ld, dh) - lse_i);
      ds = p * (dot_row(go_rows + warp * ld, v_tile + lane * ld, dh) - delta_i);
    }
    for (int j = 0; j < kKeys; ++j) {
      const float dsj = __shfl_sync(kFullWarpMask, ds, j);
      FORGE_UNROLL
      for (int cc = 0; cc < kMaxColsPerLane; ++cc) {
        const int c = lane + kWarp * cc;
        if (c < dh) acc[cc] += dsj * k_tile[j * ld + c];
      }
    }
  }
  if (i >= t) return;
  FORGE_UNROLL
  for (int cc = 0; cc < kMaxColsPerLane; ++cc) {
    const int c = lane + kWarp * cc;
    if (c < dh) gq[base + int64_t(i) * dh + c] = scale * acc[cc];
  }
}

// dV_j = sum_i P_ij dO_i, dK_j = scale sum_i dS_ij Q_i: a warp per KEY row j, lane i of a query
// tile computes P_ij and dS_ij (each row of dK, dV has one writer: no atomics). Shared memory:
// Q, dO tiles and the block's K and V rows.
__global__ void flash_warp_backward_kv_kernel(int t, int dh, float scale, const float* q,
                                              const float* k, const float* v, const float* gout,
                                              const float* lse, const float* delta, float* gk,
                                              float* gv) {
  FORGE_DYNAMIC_SMEM(float, smem);
  const int ld = dh + 1;
  float *q_tile = smem, *go_tile = q_tile + kKeys * ld;
  float *k_rows = go_tile + kKeys * ld, *v_rows = k_rows + kWarpRows * ld;
  const int64_t base = int64_t(blockIdx.y) * t * dh;
  const float *lse_b = lse + int64_t(blockIdx.y) * t, *delta_b = delta + int64_t(blockIdx.y) * t;
  const int warp = threadIdx.x / kWarp, lane = lane_id();
  const int j0 = blockIdx.x * kWarpRows, j = j0 + warp;
  stage_rows(k_rows, k + base, j0, kWarpRows, t, dh);
  stage_rows(v_rows, v + base, j0, kWarpRows, t, dh);

  float gk_acc[kMaxColsPerLane] = {}, gv_acc[kMaxColsPerLane] = {};
  for (int q0 = 0; q0 < t; q0 += kKeys) {
    __syncthreads();
    stage_rows(q_tile, q + base, q0, kKeys, t, dh);
    stage_rows(go_tile, gout + base, q0, kKeys, t, dh);
    __syncthreads();
    float p = 0.f, ds = 0.f;  // query rows past t contribute nothing
    if (q0 + lane < t) {
      p = expf(scale * dot_row(q_tile + lane * ld, k_rows + warp * ld, dh) - lse_b[q0 + lane]);
      ds = p * (dot_row(go_tile + lane * ld, v_rows + warp * ld, dh) - delta_b[q0 + lane]);
    }
    for (int ii = 0; ii < kKeys; ++ii) {
      const float pi = __shfl_sync(kFullWarpMask, p, ii), dsi = __shfl_sync(kFullWarpMask, ds, ii);
      FORGE_UNROLL
      for (int cc = 0; cc < kMaxColsPerLane; ++cc) {
        const int c = lane + kWarp * cc;
        if (c >= dh) continue;
        gv_acc[cc] += pi * go_tile[ii * ld + c];
        gk_acc[cc] += dsi * q_tile[ii * ld + c];
      }
    }
  }
  if (j >= t) return;
  FORGE_UNROLL
  for (int cc = 0; cc < kMaxColsPerLane; ++cc) {
    const int c = lane + kWarp * cc;
    if (c >= dh) continue;
    gk[base + int64_t(j) * dh + c] = scale * gk_acc[cc];
    gv[base + int64_t(j) * dh + c] = gv_acc[cc];
  }
}

// Bytes of dynamic shared memory: two 32-row tiles and two blocks' worth of rows (the forward
// kernel uses one of the latter).
size_t flash_warp_smem(int dh) {
  return size_t(2 * kKeys + 2 * kWarpRows) * (dh + 1) * sizeof(float);
}

void flash_warp_forward(const Problem& p) {
  if (p.dh > kMaxColsPerLane * kWarp)
    throw std::invalid_argument("v4: head dim " + std::to_string(p.dh) + " is above 128");
  const dim3 grid(unsigned(ceil_div(p.t, kWarpRows)), unsigned(p.bh));
  FORGE_LAUNCH(flash_warp_forward_kernel, grid, dim3(kBlockThreads), flash_warp_smem(p.dh), kStream,
               p.t, p.dh, p.scale, p.q, p.k, p.v, p.out, p.lse);
  FORGE_CHECK_LAUNCH(flash_warp_forward_kernel);
}

void flash_warp_backward(const Problem& p) {
  if (p.dh > kMaxColsPerLane * kWarp)
    throw std::invalid_argument("v4: head dim " + std::to_string(p.dh) + " is above 128");
  const int64_t rows = int64_t(p.bh) * p.t;
  FORGE_LAUNCH(row_dot_kernel, dim3(unsigned(ceil_div(rows, kRowsPerBlock))), dim3(kBlockThreads),
               0, kStream, rows, p.dh, p.out, p.gout, p.delta);
  FORGE_CHECK_LAUNCH(row_dot_kernel);
  const dim3 grid(unsigned(ceil_div(p.t, kWarpRows)), unsigned(p.bh));
  FORGE_LAUNCH(flash_warp_backward_kv_kernel, grid, dim3(kBlockThreads), flash_warp_smem(p.dh),
               kStream, p.t, p.dh, p.scale, p.q, p.k, p.v, p.gout, p.lse, p.delta, p.gk, p.gv);
  FORGE_CHECK_LAUNCH(flash_warp_backward_kv_kernel);
  FORGE_LAUNCH(flash_warp_backward_q_kernel, grid, dim3(kBlockThreads), flash_warp_smem(p.dh),
               kStream, p.t, p.dh, p.scale, p.q, p.k, p.v, p.gout, p.lse, p.delta, p.gq);
  FORGE_CHECK_LAUNCH(flash_warp_backward_q_kernel);
}

// ---------------------------------------------------------------- the versions
// Global memory traffic of each design in floats (see the top of the file): n = one [bh, t, dh]
// tensor, s = one [bh, t, t] buffer, r = one [bh, t] vector.
struct Sizes {
  double n, s, r;
};
// v1/v2 forward: QK^T reads Q, K, writes S; softmax reads S, writes P and lse; PV reads P, V,
//   writes O. Backward: dV (P, dO -> dV), dP (dO, V -> dP), dS (O, dO, P, dP -> dS),
//   dQ (dS, K -> dQ), dK (dS, Q -> dK).
double traffic_three_phase_forward(Sizes z) {
  return 4 * z.n + 4 * z.s + z.r;
}
double traffic_three_phase_backward(Sizes z) {
  return 10 * z.n + 7 * z.s;
}
// v3 and v4 forward: Q, K, V in, O and lse out. Backward: D (O, dO -> D),
//   dK/dV kernel (Q, K, V, dO, lse, D -> dK, dV), dQ kernel (Q, K, V, dO, lse, D -> dQ).
double traffic_flash_forward(Sizes z) {
  return 4 * z.n + z.r;
}
double traffic_flash_backward(Sizes z) {
  return 13 * z.n + 5 * z.r;
}
// v5, bf16 tensors at half a float each. Forward: Q, K, V in, fp32 O and lse out. Backward: D
//   (fp32 O, bf16 dO -> D), dK/dV kernel (Q, K, V, dO, lse, D -> fp32 dK, dV), dQ kernel (the
//   same inputs -> fp32 dQ).
double traffic_mma_forward(Sizes z) {
  return 1.5 * z.n + z.n + z.r;
}
double traffic_mma_backward(Sizes z) {
  return (1.5 * z.n + z.r) + (2 * z.n + 2 * z.r + 2 * z.n) + (2 * z.n + 2 * z.r + z.n);
}

void flash_forward(const Problem& p) {
  backend(kDevice).attention_forward(p.bh, p.t, p.dh, p.scale, p.q, p.k, p.v, p.out, p.lse);
}
void flash_backward(const Problem& p) {
  backend(kDevice).attention_backward(p.bh, p.t, p.dh, p.scale, p.q, p.k, p.v, p.out, p.gout, p.lse,
                                      p.gq, p.gk, p.gv);
}

// The backend at bf16 for one call, restored after it (v6).
template <typename F>
void at_bf16(F&& f) {
  Backend& gpu = backend(kDevice);
  const MatmulPrecision previous = gpu.matmul_precision();
  gpu.set_matmul_precision(MatmulPrecision::bf16);
  f();
  gpu.set_matmul_precision(previous);
}

void mma_forward(const Problem& p) {
  const AttentionLayout plain = contiguous_attention_layout(p.t, p.dh);
  flash_mma::forward(p.bh, p.t, p.dh, p.scale, plain, p.q16, p.k16, p.v16, plain, p.out, p.lse);
}
void mma_backward(const Problem& p) {
  const AttentionLayout plain = contiguous_attention_layout(p.t, p.dh);
  flash_mma::backward(p.bh, p.t, p.dh, p.scale, plain, p.q16, p.k16, p.v16, plain, p.out, p.gout16,
                      p.lse, p.delta, p.gq, p.gk, p.gv);
}

struct Version {
  int number;
  const char* name;
  bool needs_scores;  // allocates the [bh, t, t] buffers
  void (*forward)(const Problem&);
  void (*backward)(const Problem&);
  double (*forward_traffic)(Sizes);
  double (*backward_traffic)(Sizes);
  bool bf16_inputs = false;  // reads q16, k16, v16, gout16; checked by within_bf16_bound
  bool (*supports_head_dim)(int) = nullptr;  // null: every head dim up to 128
};

const Version kVersions[] = {
    {1, "naive", true, [](const Problem& p) { three_phase_forward(p, false); },
     [](const Problem& p) { three_phase_backward(p, false); }, traffic_three_phase_forward,
     traffic_three_phase_backward},
    {2, "tiled", true, [](const Problem& p) { three_phase_forward(p, true); },
     [](const Problem& p) { three_phase_backward(p, true); }, traffic_three_phase_forward,
     traffic_three_phase_backward},
    {3, "flash", false, flash_forward, flash_backward, traffic_flash_forward,
     traffic_flash_backward},
    {4, "warp", false, flash_warp_forward, flash_warp_backward, traffic_flash_forward,
     traffic_flash_backward},
    {5, "mma", false, mma_forward, mma_backward, traffic_mma_forward, traffic_mma_backward, true,
     flash_mma::supports_head_dim},
    {6, "bf16", false, [](const Problem& p) { at_bf16([&] { flash_forward(p); }); },
     [](const Problem& p) { at_bf16([&] { flash_backward(p); }); }, traffic_mma_forward,
     traffic_mma_backward, true, flash_mma::supports_head_dim},
};

// ---------------------------------------------------------------- the driver (host)
// Device memory for the life of one shape.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t floats)
      : floats_(floats), data_(static_cast<float*>(device_malloc(floats * sizeof(float)))) {}
  ~DeviceBuffer() { device_free(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* data() const { return data_; }
  void upload(const std::vector<float>& host) { copy_h2d(data_, host.data(), bytes()); }
  std::vector<float> download() const {
    std::vector<float> host(floats_);
    copy_d2h(host.data(), data_, bytes());
    return host;
  }
  void poison() { device_memset(data_, 0xFF, bytes()); }  // NaN: an unwritten element shows

 private:
  size_t bytes() const { return floats_ * sizeof(float); }
  size_t floats_;
  float* data_;
};

// A bf16 copy of host floats in device memory (v5's inputs), rounded to nearest even.
class DeviceBf16 {
 public:
  explicit DeviceBf16(size_t elements)
      : elements_(elements), data_(static_cast<bf16*>(device_malloc(elements * sizeof(bf16)))) {}
  ~DeviceBf16() { device_free(data_); }
  DeviceBf16(const DeviceBf16&) = delete;
  DeviceBf16& operator=(const DeviceBf16&) = delete;
  const bf16* data() const { return data_; }
  void upload(const std::vector<float>& host) {
    std::vector<bf16> rounded(elements_);
    std::transform(host.begin(), host.end(), rounded.begin(), float_to_bf16);
    copy_h2d(data_, rounded.data(), elements_ * sizeof(bf16));
  }

 private:
  size_t elements_;
  bf16* data_;
};

std::vector<float> rounded_to_bf16(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  std::transform(x.begin(), x.end(), y.begin(),
                 [](float e) { return bf16_to_float(float_to_bf16(e)); });
  return y;
}

// Milliseconds of one call of f: CUDA events on the GPU; on the sim, whose launches return when
// the kernel has finished, the host clock.
template <typename F>
double time_ms(F&& f) {
#if FORGE_SIM_BUILD
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
#else
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, kStream);
  f();
  cudaEventRecord(stop, kStream);
  cudaEventSynchronize(stop);
  float ms = 0.f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms;
#endif
}

template <typename F>
double median_ms(int reps, F&& f) {
  f();  // warm-up: first-touch of memory, the backend's scratch allocation, instruction caches
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) ms.push_back(time_ms(f));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Tolerance of every check: |x - ref| <= kTolerance (1 + |ref|). The CPU reference sums the same
// fp32 products in another order (oneDNN GEMMs). Each result is a chain of at most two sums of at
// most max(t, dh) = 197 terms here; rounding grows like sqrt(n) eps per sum in practice (worst
// case n eps = 197 x 6e-8 = 1.2e-5 of the sum of |terms|, a few units with these inputs): 1e-4
// sits well above both, and far below what a lost term or tile costs (one of t ~ 1/t of a row).
constexpr double kTolerance = 1e-4;

double max_error(const std::vector<float>& got, const std::vector<float>& ref) {
  double worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::fabs(double(got[i]) - ref[i]) / (1.0 + std::fabs(double(ref[i])));
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);  // NaN: an element never written
  }
  return worst;
}

// v5's check of O, dQ, dK, dV. Its CPU reference runs on the same bf16-rounded q, k, v, dO, so the
// roundings it does not share are the kernels' own: P to bf16 before O = P V (l sums the unrounded
// p) and before dV = P^T dO, dS to bf16 before dK = scale dS^T Q and dQ = scale dS K. Rounding to
// nearest with 8 significant bits moves a value by at most half its spacing, 2^-8 of its leading
// power of two: the unit roundoff u = 2^-8 (fp32's is 2^-24), |p~ - p| <= u p, so e.g.
//   |O_ic - ref_ic| = |sum_j P_ij (p~_ij / p_ij - 1) V_jc| <= u sum_j P_ij |V_jc| = u abs_ic,
// with abs the sum of magnitudes of the product (Workload's abs16_*), and likewise for the
// gradients. On top, the fp32 allowance of the other versions (sums in another order, exp2
// against exp, D = rowsum(dO * O) in fp32).
constexpr double kBf16Unit = 1.0 / 256;

bool within_bf16_bound(const std::vector<float>& got, const std::vector<float>& ref,
                       const std::vector<float>& abs) {
  for (size_t i = 0; i < ref.size(); ++i) {
    const double allowed = kBf16Unit * abs[i] + kTolerance * (1.0 + std::fabs(double(ref[i])));
    if (!(std::fabs(double(got[i]) - ref[i]) <= allowed)) return false;  // NaN fails too
  }
  return true;
}

struct Shape {
  int batch, heads, t, dh;
};

// Everything one shape needs, on host and device; the CPU reference is computed once.
struct Workload {
  Shape shape;
  int bh;
  float scale;
  std::vector<float> q, k, v, gout;                             // inputs
  std::vector<float> ref_out, ref_lse, ref_gq, ref_gk, ref_gv;  // the CPU backend's answers
  DeviceBuffer dq, dk, dv, dgout, out, lse, gq, gk, gv;
  DeviceBuffer probs, gscores;  // [bh, t, t] when some version needs them, else 1 float
  DeviceBuffer delta;
  // With a bf16 version (else 1 element, empty): q, k, v, dO rounded to bf16 on the device, the
  // CPU backend's answers for those rounded values, and the sums of magnitudes the bounds scale
  // (within_bf16_bound): out with |v| as values; for dV, dK, dQ bf16_backward_magnitudes.
  DeviceBf16 dq16, dk16, dv16, dgout16;
  std::vector<float> ref16_out, ref16_lse, ref16_gq, ref16_gk, ref16_gv;
  std::vector<float> abs16_out, abs16_gq, abs16_gk, abs16_gv;

  Workload(Shape s, unsigned seed, bool with_scores, bool with_bf16)
      : shape(s),
        bh(s.batch * s.heads),
        scale(1.f / std::sqrt(float(s.dh))),
        dq(tensor()),
        dk(tensor()),
        dv(tensor()),
        dgout(tensor()),
        out(tensor()),
        lse(rows()),
        gq(tensor()),
        gk(tensor()),
        gv(tensor()),
        probs(with_scores ? rows() * s.t : 1),
        gscores(with_scores ? rows() * s.t : 1),
        delta(rows()),
        dq16(with_bf16 ? tensor() : 1),
        dk16(with_bf16 ? tensor() : 1),
        dv16(with_bf16 ? tensor() : 1),
        dgout16(with_bf16 ? tensor() : 1) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> normal;
    for (auto* x : {&q, &k, &v, &gout}) {
      x->resize(tensor());
      for (float& e : *x) e = normal(gen);
    }
    dq.upload(q);
    dk.upload(k);
    dv.upload(v);
    dgout.upload(gout);
    for (auto* x : {&ref_out, &ref_gq, &ref_gk, &ref_gv}) x->resize(tensor());
    ref_lse.resize(rows());
    Backend& cpu = backend(Device::cpu);
    cpu.attention_forward(bh, s.t, s.dh, scale, q.data(), k.data(), v.data(), ref_out.data(),
                          ref_lse.data());
    cpu.attention_backward(bh, s.t, s.dh, scale, q.data(), k.data(), v.data(), ref_out.data(),
                           gout.data(), ref_lse.data(), ref_gq.data(), ref_gk.data(),
                           ref_gv.data());
    if (with_bf16) {
      const std::vector<float> q16 = rounded_to_bf16(q), k16 = rounded_to_bf16(k),
                               v16 = rounded_to_bf16(v), gout16 = rounded_to_bf16(gout);
      std::vector<float> v16_abs(v16.size()), abs_lse(rows());
      std::transform(v16.begin(), v16.end(), v16_abs.begin(), [](float e) { return std::fabs(e); });
      dq16.upload(q16);
      dk16.upload(k16);
      dv16.upload(v16);
      dgout16.upload(gout16);
      for (auto* x : {&ref16_out, &ref16_gq, &ref16_gk, &ref16_gv, &abs16_out}) x->resize(tensor());
      ref16_lse.resize(rows());
      cpu.attention_forward(bh, s.t, s.dh, scale, q16.data(), k16.data(), v16.data(),
                            ref16_out.data(), ref16_lse.data());
      cpu.attention_forward(bh, s.t, s.dh, scale, q16.data(), k16.data(), v16_abs.data(),
                            abs16_out.data(), abs_lse.data());
      cpu.attention_backward(bh, s.t, s.dh, scale, q16.data(), k16.data(), v16.data(),
                             ref16_out.data(), gout16.data(), ref16_lse.data(), ref16_gq.data(),
                             ref16_gk.data(), ref16_gv.data());
      bf16_backward_magnitudes(q16, k16, v16, gout16);
    }
  }
  size_t rows() const { return size_t(bh) * shape.t; }
  size_t tensor() const { return rows() * shape.dh; }

  // The sums of magnitudes that bound the effect of v5's bf16 roundings in backward, P to bf16
  // before dV = P^T dO and dS before dK = scale dS^T Q and dQ = scale dS K (within_bf16_bound):
  //   abs16_gv_jc = sum_i P_ij |dO_ic|,  abs16_gk_jc = scale sum_i |dS_ij| |Q_ic|,
  //   abs16_gq_ic = scale sum_j |dS_ij| |K_jc|,
  // with P and dS = P (dP - D) from the rounded inputs and the reference's O and lse (in double).
  void bf16_backward_magnitudes(const std::vector<float>& q16, const std::vector<float>& k16,
                                const std::vector<float>& v16, const std::vector<float>& gout16) {
    const int t = shape.t, dh = shape.dh;
    for (auto* x : {&abs16_gq, &abs16_gk, &abs16_gv}) x->assign(tensor(), 0.f);
    const auto row = [dh](const std::vector<float>& x, int64_t r) { return x.data() + r * dh; };
    const auto dot = [dh](const float* a, const float* b) {
      double sum = 0;
      for (int c = 0; c < dh; ++c) sum += double(a[c]) * b[c];
      return sum;
    };
    for (int b = 0; b < bh; ++b)
      for (int i = 0; i < t; ++i) {
        const int64_t ri = int64_t(b) * t + i;
        const double d = dot(row(gout16, ri), row(ref16_out, ri));
        for (int j = 0; j < t; ++j) {
          const int64_t rj = int64_t(b) * t + j;
          const double p = std::exp(scale * dot(row(q16, ri), row(k16, rj)) - ref16_lse[ri]);
          const double ds = std::fabs(p * (dot(row(gout16, ri), row(v16, rj)) - d));
          for (int c = 0; c < dh; ++c) {
            abs16_gv[rj * dh + c] += float(p * std::fabs(gout16[ri * dh + c]));
            abs16_gk[rj * dh + c] += float(scale * ds * std::fabs(q16[ri * dh + c]));
            abs16_gq[ri * dh + c] += float(scale * ds * std::fabs(k16[rj * dh + c]));
          }
        }
      }
  }
  Problem problem() const {
    return {.bh = bh,
            .t = shape.t,
            .dh = shape.dh,
            .scale = scale,
            .q = dq.data(),
            .k = dk.data(),
            .v = dv.data(),
            .gout = dgout.data(),
            .out = out.data(),
            .lse = lse.data(),
            .gq = gq.data(),
            .gk = gk.data(),
            .gv = gv.data(),
            .probs = probs.data(),
            .gscores = gscores.data(),
            .delta = delta.data(),
            .q16 = dq16.data(),
            .k16 = dk16.data(),
            .v16 = dv16.data(),
            .gout16 = dgout16.data()};
  }
  Sizes sizes() const { return {double(tensor()), double(rows()) * shape.t, double(rows())}; }
};

struct Result {
  double err_out, err_lse, err_gq, err_gk, err_gv;
  bool ok;
  double worst() const { return std::max({err_out, err_lse, err_gq, err_gk, err_gv}); }
};

// Runs one version's forward then backward on poisoned outputs and compares with the reference:
// every element within kTolerance (1 + |ref|), or for a bf16 version lse so and the rest
// within_bf16_bound.
Result check(const Version& version, Workload& w) {
  for (DeviceBuffer* b : {&w.out, &w.lse, &w.gq, &w.gk, &w.gv}) b->poison();
  const Problem p = w.problem();
  version.forward(p);
  Result r{};
  const std::vector<float> out = w.out.download();
  r.err_out = max_error(out, version.bf16_inputs ? w.ref16_out : w.ref_out);
  r.err_lse = max_error(w.lse.download(), version.bf16_inputs ? w.ref16_lse : w.ref_lse);
  if (!version.bf16_inputs) {
    version.backward(p);
    r.err_gq = max_error(w.gq.download(), w.ref_gq);
    r.err_gk = max_error(w.gk.download(), w.ref_gk);
    r.err_gv = max_error(w.gv.download(), w.ref_gv);
    r.ok = r.worst() <= kTolerance;
    return r;
  }
  // bf16: backward starts from the reference's O and lse, so that its check is of backward alone
  // (forward's bf16 error in O would otherwise reach dS through D = rowsum(dO * O)).
  w.out.upload(w.ref16_out);
  w.lse.upload(w.ref16_lse);
  version.backward(p);
  const std::vector<float> gq = w.gq.download(), gk = w.gk.download(), gv = w.gv.download();
  r.err_gq = max_error(gq, w.ref16_gq);
  r.err_gk = max_error(gk, w.ref16_gk);
  r.err_gv = max_error(gv, w.ref16_gv);
  r.ok = r.err_lse <= kTolerance && within_bf16_bound(out, w.ref16_out, w.abs16_out) &&
         within_bf16_bound(gq, w.ref16_gq, w.abs16_gq) &&
         within_bf16_bound(gk, w.ref16_gk, w.abs16_gk) &&
         within_bf16_bound(gv, w.ref16_gv, w.abs16_gv);
  return r;
}

// One line: a version on a shape, checked and (unless check_only) timed. Returns whether it passed.
bool run_version(const Version& version, Workload& w,
                 const attention_playground::Options& options) {
  const Shape& s = w.shape;
  if (version.supports_head_dim && !version.supports_head_dim(s.dh)) {
    std::printf("v%d %-6s %3d %3d %4d %4d  skipped: no kernel for this head dim\n", version.number,
                version.name, s.batch, s.heads, s.t, s.dh);
    return true;
  }
  const Result r = check(version, w);
  const bool ok = r.ok;
  std::printf("v%d %-6s %3d %3d %4d %4d %9.2e %5s", version.number, version.name, s.batch, s.heads,
              s.t, s.dh, r.worst(), ok ? "ok" : "FAIL");
  if (!options.check_only) {
    const Problem p = w.problem();
    const double flops = 4.0 * w.bh * s.t * s.t * s.dh;  // forward; backward 2.5x
    const double fwd = median_ms(options.reps, [&] { version.forward(p); });
    const double fwd_bytes = sizeof(float) * version.forward_traffic(w.sizes());
    // GFLOP/s = flops / (ms 1e-3) / 1e9 = flops / ms 1e-6; GB/s likewise.
    const double bwd = median_ms(options.reps, [&] { version.backward(p); });
    const double bwd_bytes = sizeof(float) * version.backward_traffic(w.sizes());
    std::printf(" | %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f", fwd, flops / fwd * 1e-6,
                fwd_bytes / fwd * 1e-6, bwd, 2.5 * flops / bwd * 1e-6, bwd_bytes / bwd * 1e-6);
  }
  if (!ok)
    std::printf("  (out %.1e lse %.1e dQ %.1e dK %.1e dV %.1e)", r.err_out, r.err_lse, r.err_gq,
                r.err_gk, r.err_gv);
  std::printf("\n");
  std::fflush(stdout);
  return ok;
}

void print_header(const attention_playground::Options& options) {
  std::printf(
      "attention playground on %s: q, k, v [batch, heads, tokens, head dim], scale "
      "1/sqrt(head dim), random normal inputs (seed %u)\n",
      device_name(kDevice), options.seed);
  std::printf(
      "check: out, lse, dQ, dK, dV against the CPU backend, |x - ref| <= %g (1 + |ref|); "
      "err = the largest |x - ref| / (1 + |ref|) of the five\n",
      kTolerance);
  std::printf(
      "bf16 versions (v5, v6): inputs rounded to bf16, the reference run on the rounded values; "
      "out, "
      "dQ, dK, dV within 2^-8 x the sum of magnitudes of their product (e.g. sum_j P_ij |v_jc|: "
      "P's and dS's rounding to bf16) + %g (1 + |ref|), lse as above\n",
      kTolerance);
  if (!options.check_only) {
    std::printf(
        "FLOPs: forward 4 B H T^2 D, backward 2.5x forward, for every version; bytes: the "
        "global traffic each design implies (the T x T buffers of v1/v2 included)\n");
    std::printf("times: median of %d runs after one warm-up, ", options.reps);
    if (kDevice == Device::sim)
      std::printf(
          "in ms of CPU time EMULATING the kernels (kernels/sim): not GPU timings. The "
          "emulator's cost model is not a GPU's; compare versions with each other only "
          "loosely, and GFLOP/s and GB/s not at all with hardware\n");
    else
      std::printf("CUDA events on the default stream\n");
  }
  std::printf("\n%-9s %3s %3s %4s %4s %9s %5s", "version", "B", "H", "T", "D", "err", "check");
  if (!options.check_only)
    std::printf(" | %9s %9s %9s | %9s %9s %9s", "fwd ms", "GFLOP/s", "GB/s", "bwd ms", "GFLOP/s",
                "GB/s");
  std::printf("\n");
}

}  // namespace

int run_attention_playground(const attention_playground::Options& options) {
  backend(kDevice);  // on cuda: a clear error now when there is no usable GPU
  std::vector<const Version*> versions;
  for (int n : options.versions) {
    const auto* it = std::find_if(std::begin(kVersions), std::end(kVersions),
                                  [n](const Version& v) { return v.number == n; });
    if (it == std::end(kVersions))
      throw std::invalid_argument("--kernel " + std::to_string(n) + ": there are versions 1 to " +
                                  std::to_string(std::size(kVersions)));
    versions.push_back(it);
  }
  const bool with_scores = std::any_of(versions.begin(), versions.end(),
                                       [](const Version* v) { return v->needs_scores; });
  const bool with_bf16 = std::any_of(versions.begin(), versions.end(),
                                     [](const Version* v) { return v->bf16_inputs; });
  std::vector<Shape> shapes;
  for (int batch : options.batches)
    for (int heads : options.heads)
      for (int t : options.tokens)
        for (int dh : options.head_dims) shapes.push_back({batch, heads, t, dh});

  print_header(options);
  int failures = 0;
  for (const Shape& shape : shapes) {
    Workload w(shape, options.seed, with_scores, with_bf16);
    for (const Version* v : versions) failures += !run_version(*v, w, options);
  }
  std::printf("\n%s\n", failures ? "FAILED: some version does not match the CPU reference"
                                 : "every version matches the CPU reference");
  return failures ? 1 : 0;
}

}  // namespace forge::FORGE_GPU_NS
