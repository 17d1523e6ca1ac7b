// attention.cu: fused scaled-dot-product attention in the FlashAttention style. No t x t matrix
// exists in either direction: scores live in registers one (query row, key tile) pair at a time.
//
// Problem b < bh has Q, K, V, O [t, dh]; S = scale Q K^T, P = softmax_rows(S), O = P V.
// Every kernel reads and writes a problem's matrices through an AttentionLayout
// (kernels/attention_layout.cuh: a row stride and a base per (batch, head)), so the same kernels
// serve q, k, v, out [bh, t, dh] and, in place, the packed projection qkv [b, t, 3, heads, dh] with
// out [b, t, heads, dh] (GpuBackend::attention_*_packed); lse and D are [bh, t] in both.
//
// Forward, online softmax. Per query row i the block keeps a running max m_i, a running sum l_i
// and an unnormalised output acc_i, and walks the keys one tile J (staged in shared memory) at a
// time:
//   m_i'   = max(m_i, max_{j in J} S_ij)
//   l_i'   = exp(m_i - m_i') l_i   + sum_{j in J} exp(S_ij - m_i')
//   acc_i' = exp(m_i - m_i') acc_i + sum_{j in J} exp(S_ij - m_i') V_j
// starting from m = -inf, l = 0, acc = 0 (exp(-inf) = 0 makes the first rescale vanish). After
// each tile l_i = sum_j exp(S_ij - m_i) and acc_i = sum_j exp(S_ij - m_i) V_j over the keys seen,
// so at the end O_i = acc_i / l_i and lse_i = m_i + log l_i, the only thing saved for backward.
//
// Backward, with dO = dL/dO and P_ij = exp(S_ij - lse_i) recomputed from the saved lse:
//   D_i   = dO_i . O_i   (= sum_j P_ij dP_ij)                       attention_delta_kernel
//   dP_ij = dO_i . V_j,   dS_ij = P_ij (dP_ij - D_i)      (softmax Jacobian)
//   dV_j  = sum_i P_ij dO_i,   dK_j = scale sum_i dS_ij Q_i          attention_backward_kv_kernel
//   dQ_i  = scale sum_j dS_ij K_j                                    attention_backward_q_kernel
// dK/dV take one block per KEY tile looping over all query tiles, dQ one block per QUERY tile
// looping over all key tiles. Every output row then has exactly one writer: no atomics, sums in a
// fixed order (bitwise reproducible, identical in both sim orders). The price is computing S and dP
// twice (4 t^2 dh extra flops per problem) where FlashAttention-2 accumulates dQ with atomics.
//
// Launch shape of the three tile kernels: a block owns TILE rows with kRowThreads = 4 threads per
// row, TILE * 4 threads in all; grid = (ceil(t / TILE), bh). The 4 threads of a row are adjacent
// lanes of one warp, so the row's max, sum and score exchange are warp shuffles. Each thread
// computes the scores of TILE / 4 partner rows of the other tile and owns DHP / 4 output columns
// (c = sub + 4 cc) in registers. DHP is the head dim rounded up to 32, 64 or 128: the staged tiles
// are zero beyond dh, which leaves every dot product unchanged. TILE is 32, or 16 for DHP = 128 to
// keep four [TILE][DHP + 1] tiles within the 48 KiB of static shared memory (the + 1 pads rows onto
// different banks: the lanes of a warp read 4 or 8 different rows at the same column).
//
// At MatmulPrecision::bf16 with head dim 16, 32, 64 or 128, the kernels are FlashAttention-2's on
// the tensor cores instead (kernels/attention_mma.cuh): Q, K, V and dO rounded to bf16 into
// scratch, the products by mma.sync with fp32 accumulation, the softmax statistics (m, l, lse, D)
// and the outputs in fp32. Other head dims keep the fp32 kernels below (docs/MIXED_PRECISION.md).
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/attention_layout.cuh"
#include "kernels/attention_mma.cuh"
#include "kernels/bf16_convert.h"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {
namespace {

constexpr int kRowThreads = 4;  // threads sharing one row of a tile

// Copies rows [row0, row0 + TILE) of a [t, dh] matrix (rows ld floats apart) into
// tile[TILE][DHP + 1], zero past t and dh. Consecutive threads take consecutive columns: coalesced
// global reads when dh = DHP.
template <int DHP, int TILE>
__device__ void stage_rows(float (*tile)[DHP + 1], const float* matrix, int ld, int row0, int t,
                           int dh) {
  for (int e = threadIdx.x; e < TILE * DHP; e += blockDim.x) {
    const int r = e / DHP, c = e % DHP;
    tile[r][c] = row0 + r < t && c < dh ? matrix[int64_t(row0 + r) * ld + c] : 0.f;
  }
}

template <int DHP>
__device__ __forceinline__ float dot(const float* a, const float* b) {
  float sum = 0.f;
  FORGE_UNROLL
  for (int d = 0; d < DHP; ++d) sum += a[d] * b[d];
  return sum;
}

// Max and sum over the 4 lanes of a row. Butterfly order: every lane ends with the same value.
__device__ __forceinline__ float row_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullWarpMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullWarpMask, v, 2));
}
__device__ __forceinline__ float row_sum(float v) {
  v += __shfl_xor_sync(kFullWarpMask, v, 1);
  return v + __shfl_xor_sync(kFullWarpMask, v, 2);
}

// Where a thread sits: `row` of its block's tile, `sub` among the row's 4 threads, `group` the
// warp lane of the row's first thread (shuffle source of the row's other values).
struct RowThread {
  int row, sub, group;
  __device__ RowThread()
      : row(threadIdx.x / kRowThreads),
        sub(threadIdx.x % kRowThreads),
        group((threadIdx.x % warpSize) & ~(kRowThreads - 1)) {}
};

// Value `partner` of the row's TILE values, held as v[partner / 4] by thread partner % 4 (v: the
// calling thread's register array; with partner a compile-time constant after unrolling, the
// index is too).
__device__ __forceinline__ float row_value(const float* v, int partner, int group) {
  return __shfl_sync(kFullWarpMask, v[partner / kRowThreads], group + partner % kRowThreads);
}

template <int DHP, int TILE>
__global__ void attention_forward_kernel(int t, int dh, float scale, AttentionLayout in,
                                         const float* q, const float* k, const float* v,
                                         AttentionLayout ol, float* out, float* lse) {
  constexpr int kPartners = TILE / kRowThreads, kCols = DHP / kRowThreads;
  __shared__ float q_tile[TILE][DHP + 1], k_tile[TILE][DHP + 1], v_tile[TILE][DHP + 1];
  const int64_t base = in.base(blockIdx.y);
  const RowThread me;
  const int q0 = blockIdx.x * TILE;
  stage_rows<DHP, TILE>(q_tile, q + base, in.ld, q0, t, dh);

  float m = -INFINITY, l = 0.f, acc[kCols] = {};
  for (int k0 = 0; k0 < t; k0 += TILE) {
    __syncthreads();  // the previous key tile is consumed before it is overwritten
    stage_rows<DHP, TILE>(k_tile, k + base, in.ld, k0, t, dh);
    stage_rows<DHP, TILE>(v_tile, v + base, in.ld, k0, t, dh);
    __syncthreads();
    float p[kPartners], tile_max = -INFINITY;  // scores, then exp(score - new max)
    FORGE_UNROLL
    for (int jj = 0; jj < kPartners; ++jj) {
      const int j = me.sub + kRowThreads * jj;
      p[jj] = k0 + j < t ? scale * dot<DHP>(q_tile[me.row], k_tile[j]) : -INFINITY;
      tile_max = fmaxf(tile_max, p[jj]);
    }
    const float m_new = fmaxf(m, row_max(tile_max));  // finite: key k0 < t is in the tile
    const float rescale = expf(m - m_new);
    float p_sum = 0.f;
    FORGE_UNROLL
    for (int jj = 0; jj < kPartners; ++jj) p_sum += p[jj] = expf(p[jj] - m_new);
    l = l * rescale + row_sum(p_sum);
    m = m_new;
    FORGE_UNROLL
    for (int cc = 0; cc < kCols; ++cc) acc[cc] *= rescale;
    FORGE_UNROLL
    for (int j = 0; j < TILE; ++j) {
      const float pj = row_value(p, j, me.group);
      FORGE_UNROLL
      for (int cc = 0; cc < kCols; ++cc) acc[cc] += pj * v_tile[j][me.sub + kRowThreads * cc];
    }
  }
  const int i = q0 + me.row;
  if (i >= t) return;  // after the last shuffle and barrier: padding rows only leave here
  for (int cc = 0; cc < kCols; ++cc) {
    const int c = me.sub + kRowThreads * cc;
    if (c < dh) out[ol.base(blockIdx.y) + int64_t(i) * ol.ld + c] = acc[cc] / l;
  }
  if (me.sub == 0) lse[int64_t(blockIdx.y) * t + i] = m + logf(l);
}

// D_i = dO_i . O_i over all bh * t rows (row = problem t + i, as lse), one warp per row
// (coalesced reads along dh).
__global__ void attention_delta_kernel(int64_t rows, int t, int dh, AttentionLayout ol,
                                       const float* out, const float* gout, float* delta) {
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / warpSize;
  const int lane = threadIdx.x % warpSize;
  float sum = 0.f;
  if (row < rows) {
    const int64_t at = ol.base(int(row / t)) + row % t * ol.ld;
    for (int d = lane; d < dh; d += warpSize) sum += out[at + d] * gout[at + d];
  }
  sum = warp_sum(sum);  // every lane takes part, also past the last row
  if (row < rows && lane == 0) delta[row] = sum;
}

// dK and dV of the block's TILE keys; the 4 threads of key row j take query rows i = sub + 4 ii.
template <int DHP, int TILE>
__global__ void attention_backward_kv_kernel(int t, int dh, float scale, AttentionLayout in,
                                             const float* q, const float* k, const float* v,
                                             AttentionLayout ol, const float* gout,
                                             const float* lse, const float* delta, float* gk,
                                             float* gv) {
  constexpr int kPartners = TILE / kRowThreads, kCols = DHP / kRowThreads;
  __shared__ float k_tile[TILE][DHP + 1], v_tile[TILE][DHP + 1];
  __shared__ float q_tile[TILE][DHP + 1], go_tile[TILE][DHP + 1];
  __shared__ float lse_tile[TILE], delta_tile[TILE];
  const int64_t base = in.base(blockIdx.y), out_base = ol.base(blockIdx.y);
  const float* lse_b = lse + int64_t(blockIdx.y) * t;
  const float* delta_b = delta + int64_t(blockIdx.y) * t;
  const RowThread me;
  const int k0 = blockIdx.x * TILE;
  stage_rows<DHP, TILE>(k_tile, k + base, in.ld, k0, t, dh);
  stage_rows<DHP, TILE>(v_tile, v + base, in.ld, k0, t, dh);

  float gk_acc[kCols] = {}, gv_acc[kCols] = {};
  for (int q0 = 0; q0 < t; q0 += TILE) {
    __syncthreads();
    stage_rows<DHP, TILE>(q_tile, q + base, in.ld, q0, t, dh);
    stage_rows<DHP, TILE>(go_tile, gout + out_base, ol.ld, q0, t, dh);
    for (int r = threadIdx.x; r < TILE; r += blockDim.x) {
      lse_tile[r] = q0 + r < t ? lse_b[q0 + r] : 0.f;
      delta_tile[r] = q0 + r < t ? delta_b[q0 + r] : 0.f;
    }
    __syncthreads();
    float p[kPartners], ds[kPartners];  // P_ij and dS_ij of this key row, query i = sub + 4 ii
    FORGE_UNROLL
    for (int ii = 0; ii < kPartners; ++ii) {
      const int i = me.sub + kRowThreads * ii;
      p[ii] = ds[ii] = 0.f;  // query rows past t contribute nothing
      if (q0 + i < t) {
        p[ii] = expf(scale * dot<DHP>(q_tile[i], k_tile[me.row]) - lse_tile[i]);
        ds[ii] = p[ii] * (dot<DHP>(go_tile[i], v_tile[me.row]) - delta_tile[i]);
      }
    }
    FORGE_UNROLL
    for (int i = 0; i < TILE; ++i) {
      const float pi = row_value(p, i, me.group), dsi = row_value(ds, i, me.group);
      FORGE_UNROLL
      for (int cc = 0; cc < kCols; ++cc) {
        const int c = me.sub + kRowThreads * cc;
        gv_acc[cc] += pi * go_tile[i][c];
        gk_acc[cc] += dsi * q_tile[i][c];
      }
    }
  }
  const int j = k0 + me.row;
  if (j >= t) return;
  for (int cc = 0; cc < kCols; ++cc) {
    const int c = me.sub + kRowThreads * cc;
    if (c >= dh) continue;
    gk[base + int64_t(j) * in.ld + c] = scale * gk_acc[cc];
    gv[base + int64_t(j) * in.ld + c] = gv_acc[cc];
  }
}

// dQ of the block's TILE query rows; the 4 threads of query row i take keys j = sub + 4 jj.
template <int DHP, int TILE>
__global__ void attention_backward_q_kernel(int t, int dh, float scale, AttentionLayout in,
                                            const float* q, const float* k, const float* v,
                                            AttentionLayout ol, const float* gout, const float* lse,
                                            const float* delta, float* gq) {
  constexpr int kPartners = TILE / kRowThreads, kCols = DHP / kRowThreads;
  __shared__ float q_tile[TILE][DHP + 1], go_tile[TILE][DHP + 1];
  __shared__ float k_tile[TILE][DHP + 1], v_tile[TILE][DHP + 1];
  const int64_t base = in.base(blockIdx.y);
  const RowThread me;
  const int q0 = blockIdx.x * TILE, i = q0 + me.row;
  stage_rows<DHP, TILE>(q_tile, q + base, in.ld, q0, t, dh);
  stage_rows<DHP, TILE>(go_tile, gout + ol.base(blockIdx.y), ol.ld, q0, t, dh);
  const float lse_i = i < t ? lse[int64_t(blockIdx.y) * t + i] : 0.f;
  const float delta_i = i < t ? delta[int64_t(blockIdx.y) * t + i] : 0.f;

  float gq_acc[kCols] = {};
  for (int k0 = 0; k0 < t; k0 += TILE) {
    __syncthreads();
    stage_rows<DHP, TILE>(k_tile, k + base, in.ld, k0, t, dh);
    stage_rows<DHP, TILE>(v_tile, v + base, in.ld, k0, t, dh);
    __syncthreads();
    float ds[kPartners];
    FORGE_UNROLL
    for (int jj = 0; jj < kPartners; ++jj) {
      const int j = me.sub + kRowThreads * jj;
      ds[jj] = 0.f;  // keys past t contribute nothing
      if (k0 + j < t) {
        const float p = expf(scale * dot<DHP>(q_tile[me.row], k_tile[j]) - lse_i);
        ds[jj] = p * (dot<DHP>(go_tile[me.row], v_tile[j]) - delta_i);
      }
    }
    FORGE_UNROLL
    for (int j = 0; j < TILE; ++j) {
      const float dsj = row_value(ds, j, me.group);
      FORGE_UNROLL
      for (int cc = 0; cc < kCols; ++cc) gq_acc[cc] += dsj * k_tile[j][me.sub + kRowThreads * cc];
    }
  }
  if (i >= t) return;
  for (int cc = 0; cc < kCols; ++cc) {
    const int c = me.sub + kRowThreads * cc;
    if (c < dh) gq[base + int64_t(i) * in.ld + c] = scale * gq_acc[cc];
  }
}

// The (padded head dim, tile) instance a head dim runs on.
template <int DHP, int TILE>
struct TileConfig {
  static constexpr int head_dim = DHP, tile = TILE;
};

// Calls f(TileConfig<...>{}) for dh; dh beyond 128 has no instance.
template <typename F>
void with_tile_config(const char* op, int dh, F&& f) {
  if (dh <= 32) return f(TileConfig<32, 32>{});
  if (dh <= 64) return f(TileConfig<64, 32>{});
  if (dh <= 128) return f(TileConfig<128, 16>{});
  throw std::invalid_argument(std::string(op) + ": head dim " + std::to_string(dh) +
                              " is above the largest supported, 128");
}

// One call: `problems` = batch * heads attention problems of t rows and head dim dh, q, k, v (and
// gq, gk, gv) read through layout `in`, out (and gout) through `ol`.
struct AttentionCall {
  const char* op;
  int problems, t, dh;
  float scale;
  AttentionLayout in, ol;
};

// Whether this call runs the bf16 tensor-core kernels (after checking the grid's limit).
bool use_mma_attention(const GpuBackend& backend, const AttentionCall& call) {
  if (call.problems > 65535)  // grid.y limit
    throw std::invalid_argument(std::string(call.op) + ": batch * heads = " +
                                std::to_string(call.problems) + " exceeds 65535");
  return backend.matmul_precision() == MatmulPrecision::bf16 &&
         flash_mma::supports_head_dim(call.dh) && call.problems > 0 && call.t > 0;
}

void forward_fp32(const AttentionCall& call, const float* q, const float* k, const float* v,
                  float* out, float* lse) {
  with_tile_config(call.op, call.dh, [&](auto config) {
    using Config = decltype(config);
    const dim3 grid(unsigned(ceil_div(call.t, Config::tile)), unsigned(call.problems));
    FORGE_LAUNCH((attention_forward_kernel<Config::head_dim, Config::tile>), grid,
                 dim3(Config::tile * kRowThreads), 0, kStream, call.t, call.dh, call.scale, call.in,
                 q, k, v, call.ol, out, lse);
    FORGE_CHECK_LAUNCH(attention_forward_kernel);
  });
}

void backward_fp32(GpuBackend& backend, const AttentionCall& call, const float* q, const float* k,
                   const float* v, const float* out, const float* gout, const float* lse, float* gq,
                   float* gk, float* gv) {
  with_tile_config(call.op, call.dh, [&](auto config) {
    using Config = decltype(config);
    const int64_t rows = int64_t(call.problems) * call.t;
    DeviceScratch delta(backend, rows);

    FORGE_LAUNCH(attention_delta_kernel, dim3(unsigned(ceil_div(rows, kRowsPerBlock))),
                 dim3(kBlockThreads), 0, kStream, rows, call.t, call.dh, call.ol, out, gout,
                 delta.data());
    FORGE_CHECK_LAUNCH(attention_delta_kernel);

    const dim3 tiles(unsigned(ceil_div(call.t, Config::tile)), unsigned(call.problems));
    const dim3 block(Config::tile * kRowThreads);
    FORGE_LAUNCH((attention_backward_kv_kernel<Config::head_dim, Config::tile>), tiles, block, 0,
                 kStream, call.t, call.dh, call.scale, call.in, q, k, v, call.ol, gout, lse,
                 delta.data(), gk, gv);
    FORGE_CHECK_LAUNCH(attention_backward_kv_kernel);
    FORGE_LAUNCH((attention_backward_q_kernel<Config::head_dim, Config::tile>), tiles, block, 0,
                 kStream, call.t, call.dh, call.scale, call.in, q, k, v, call.ol, gout, lse,
                 delta.data(), gq);
    FORGE_CHECK_LAUNCH(attention_backward_q_kernel);
  });
}

AttentionCall contiguous_call(const char* op, int bh, int t, int dh, float scale) {
  const AttentionLayout plain = contiguous_attention_layout(t, dh);
  return {op, bh, t, dh, scale, plain, plain};
}

AttentionCall packed_call(const char* op, int b, int heads, int t, int dh, float scale) {
  return {op,
          b * heads,
          t,
          dh,
          scale,
          packed_qkv_layout(heads, t, dh),
          packed_out_layout(heads, t, dh)};
}

}  // namespace

void GpuBackend::attention_forward(int bh, int t, int dh, float scale, const float* q,
                                   const float* k, const float* v, float* out, float* lse) {
  const AttentionCall call = contiguous_call("gpu attention_forward", bh, t, dh, scale);
  if (!use_mma_attention(*this, call)) return forward_fp32(call, q, k, v, out, lse);
  const int64_t n = int64_t(bh) * t * dh;
  Bf16Scratch q16(*this, n), k16(*this, n), v16(*this, n);
  convert_to_bf16(q, n, q16.data());
  convert_to_bf16(k, n, k16.data());
  convert_to_bf16(v, n, v16.data());
  flash_mma::forward(call.problems, t, dh, scale, call.in, q16.data(), k16.data(), v16.data(),
                     call.ol, out, lse);
}

void GpuBackend::attention_backward(int bh, int t, int dh, float scale, const float* q,
                                    const float* k, const float* v, const float* out,
                                    const float* gout, const float* lse, float* gq, float* gk,
                                    float* gv) {
  const AttentionCall call = contiguous_call("gpu attention_backward", bh, t, dh, scale);
  if (!use_mma_attention(*this, call))
    return backward_fp32(*this, call, q, k, v, out, gout, lse, gq, gk, gv);
  const int64_t n = int64_t(bh) * t * dh;
  Bf16Scratch q16(*this, n), k16(*this, n), v16(*this, n), gout16(*this, n);
  DeviceScratch delta(*this, int64_t(bh) * t);
  convert_to_bf16(q, n, q16.data());
  convert_to_bf16(k, n, k16.data());
  convert_to_bf16(v, n, v16.data());
  convert_to_bf16(gout, n, gout16.data());
  flash_mma::backward(call.problems, t, dh, scale, call.in, q16.data(), k16.data(), v16.data(),
                      call.ol, out, gout16.data(), lse, delta.data(), gq, gk, gv);
}

// The packed projection: q, k, v at offsets 0, w, 2 w of qkv (w = heads dh), gq, gk, gv of gqkv
// likewise. At bf16 the whole projection is rounded in one pass into a copy of the same layout.
void GpuBackend::attention_forward_packed(int b, int heads, int t, int dh, float scale,
                                          const float* qkv, float* out, float* lse) {
  const AttentionCall call = packed_call("gpu attention_forward_packed", b, heads, t, dh, scale);
  const int64_t w = int64_t(heads) * dh;
  if (!use_mma_attention(*this, call))
    return forward_fp32(call, qkv, qkv + w, qkv + 2 * w, out, lse);
  const int64_t n = 3 * int64_t(b) * t * w;
  Bf16Scratch qkv16(*this, n);
  convert_to_bf16(qkv, n, qkv16.data());
  const bf16* p = qkv16.data();
  flash_mma::forward(call.problems, t, dh, scale, call.in, p, p + w, p + 2 * w, call.ol, out, lse);
}

void GpuBackend::attention_backward_packed(int b, int heads, int t, int dh, float scale,
                                           const float* qkv, const float* out, const float* gout,
                                           const float* lse, float* gqkv) {
  const AttentionCall call = packed_call("gpu attention_backward_packed", b, heads, t, dh, scale);
  const int64_t w = int64_t(heads) * dh;
  if (!use_mma_attention(*this, call))
    return backward_fp32(*this, call, qkv, qkv + w, qkv + 2 * w, out, gout, lse, gqkv, gqkv + w,
                         gqkv + 2 * w);
  const int64_t n_out = int64_t(b) * t * w, n = 3 * n_out;
  Bf16Scratch qkv16(*this, n), gout16(*this, n_out);
  DeviceScratch delta(*this, int64_t(call.problems) * t);
  convert_to_bf16(qkv, n, qkv16.data());
  convert_to_bf16(gout, n_out, gout16.data());
  const bf16* p = qkv16.data();
  flash_mma::backward(call.problems, t, dh, scale, call.in, p, p + w, p + 2 * w, call.ol, out,
                      gout16.data(), lse, delta.data(), gqkv, gqkv + w, gqkv + 2 * w);
}

}  // namespace forge::FORGE_GPU_NS
