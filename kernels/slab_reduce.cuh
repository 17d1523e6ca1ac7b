// slab_reduce.cuh: long sums spread over many blocks and finished in the same launch, with a
// fixed order of additions (bitwise the same result on every run, in both emulator orders and on
// any number of SMs). Used by reduce_sum's column sums, the layer-norm parameter gradients, the
// batch-norm statistics and backward sums, and the convolution bias gradient.
//
// A sum of R rows (a column of a [R, C] matrix; a channel's N = n hw values) owned by one block,
// or by one thread per column, leaves most of a GPU idle: layer norm's d = 192 columns made 6
// blocks on an H100's 132 SMs. Here the R rows are cut into `slabs` slabs of `slab_rows`
// consecutive rows, and each (group, slab) is one block:
//   pass 1: a block sums its slab (its threads' serial shares, then a fixed tree) and writes the
//           partial sum to scratch, partial[group][slab];
//   pass 2: the group's block that finishes last adds partial[group][0], [1], ... in that fixed
//           order and writes the result.
// "Last" is decided by an integer ticket per group (atomicAdd on a counter that starts at 0;
// the block that draws slabs - 1 is last, and puts the counter back to 0 for the next launch:
// engine/cuda/reduction_tickets.h). Which block is last varies between runs; what it adds, and
// in which order, does not. No float atomics. Memory order, as in the CUDA programming guide's
// threadFenceReduction: partials, __threadfence, ticket; the last block fences again and reads
// the partials through volatile loads (not a stale L1 line). One slab: no ticket, no partials.
//
// How many blocks: kTargetBlocks = 1,056 = 132 SMs (H100 SXM) x 8 blocks of 256 threads (2,048
// threads, the most one SM holds): one full wave over every SM, and 1.4 waves on an A100's 108.
// It is a constant, not the device's SM count, so the partition, and with it every rounding, is
// the same on every GPU and on the sim. Each slab keeps at least a minimum of rows (kMinSlabRows
// for columns, kMinSlabValues for channels) so that a block's own sum outweighs writing and
// rereading its partial.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/fast_divmod.cuh"
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

constexpr int64_t kTargetBlocks = 132 * 8;

// Slabs for `rows` rows in each of `groups` groups: about kTargetBlocks blocks in all, each slab
// at least min_rows rows (one slab when the rows are few), no empty slab.
struct SlabSplit {
  int64_t slab_rows = 1;
  int slabs = 1;
};
inline SlabSplit split_into_slabs(int64_t rows, int64_t groups, int64_t min_rows) {
  const int64_t wanted = ceil_div(kTargetBlocks, std::max<int64_t>(groups, 1));
  const int64_t most = std::max<int64_t>(ceil_div(rows, min_rows), 1);
  SlabSplit s;
  s.slab_rows = std::max<int64_t>(ceil_div(rows, std::clamp<int64_t>(wanted, 1, most)), 1);
  s.slabs = int(std::max<int64_t>(ceil_div(rows, s.slab_rows), 1));
  return s;
}

// Called by every thread of a block once its partials are written: true, in every thread, in
// the last of the group's `blocks` blocks to get here (whose counter is then back at 0).
__device__ __forceinline__ bool last_block_of_group(unsigned* ticket, int blocks) {
  __shared__ bool last;
  __threadfence();  // this block's partials before its ticket
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(ticket, 1u) == unsigned(blocks - 1);
    if (last) atomicExch(ticket, 0u);  // every block of the group has drawn: ready for reuse
  }
  __syncthreads();
  if (last) __threadfence();  // the others' partials after their tickets
  return last;
}

// sum over s of partial[s * stride], s = 0 .. count - 1, by a whole block in a fixed order: thread
// t adds s = t, t + 256, ... serially, then block_sum's fixed tree. Every thread gets the sum.
__device__ __forceinline__ float block_sum_of_partials(const float* partial, int count,
                                                       int64_t stride) {
  const volatile float* p = partial;  // written by other blocks of this launch: no cached copy
  float acc = 0.f;
  for (int s = int(threadIdx.x); s < count; s += int(blockDim.x)) acc += p[s * stride];
  return block_sum(acc);
}

// ---- column sums of a [rows, cols] field ------------------------------------------------------
// A block is 32 columns x 8 row phases: thread (j, p) adds rows p, p + 8, ... of its slab in
// column j, so a warp reads 32 neighbouring floats of one row (128 coalesced bytes); the 8 phases
// are then added in order through shared memory. Groups are the ceil(cols / 32) column tiles.

constexpr int kColumnTile = kWarp;
constexpr int kRowPhases = kBlockThreads / kColumnTile;
constexpr int64_t kMinSlabRows = 8 * kRowPhases;  // 8 rows a thread at least

struct ColumnSlabs {
  int64_t rows = 0, cols = 0, slab_rows = 1;
  int slabs = 1, col_blocks = 1;
  unsigned blocks() const { return unsigned(int64_t(slabs) * col_blocks); }
};
inline ColumnSlabs column_slabs(int64_t rows, int64_t cols) {
  ColumnSlabs s;
  s.rows = rows;
  s.cols = cols;
  s.col_blocks = int(std::max<int64_t>(ceil_div(cols, kColumnTile), 1));
  const SlabSplit split = split_into_slabs(rows, s.col_blocks, kMinSlabRows);
  s.slab_rows = split.slab_rows;
  s.slabs = split.slabs;
  return s;
}

// Adds the 8 row phases' K sums of each column in phase order; phase 0's threads get the totals.
template <int K>
__device__ __forceinline__ void add_row_phases(float (&acc)[K]) {
  __shared__ float phase_sums[K][kRowPhases][kColumnTile + 1];  // +1: no bank conflicts
  const int lane = int(threadIdx.x) % kColumnTile, phase = int(threadIdx.x) / kColumnTile;
  for (int k = 0; k < K; ++k) phase_sums[k][phase][lane] = acc[k];
  __syncthreads();
  if (phase == 0)
    for (int p = 1; p < kRowPhases; ++p)
      for (int k = 0; k < K; ++k) acc[k] += phase_sums[k][p][lane];
  __syncthreads();  // phase_sums is reused by the next call
}

// out[k][col] = sum over rows r of the K terms terms(r, col, acc) adds to acc[0..K). `block` is
// this block's index among s.blocks() (column tile = block % col_blocks, slab = block /
// col_blocks); partials holds K * slabs * cols floats (unused with one slab), tickets col_blocks
// counters. Every thread of the block must call it.
template <int K, class Terms>
__device__ __forceinline__ void column_slab_sums(const ColumnSlabs& s, unsigned block, Terms terms,
                                                 float* partials, unsigned* tickets,
                                                 float* const (&out)[K]) {
  const int lane = int(threadIdx.x) % kColumnTile, phase = int(threadIdx.x) / kColumnTile;
  // 32-bit: the block index fits, and a 64-bit division would cost dozens of instructions
  const int col_block = int(block % unsigned(s.col_blocks)),
            slab = int(block / unsigned(s.col_blocks));
  const int64_t col = int64_t(col_block) * kColumnTile + lane;
  const int64_t first = slab * s.slab_rows;
  const int64_t end = first + s.slab_rows < s.rows ? first + s.slab_rows : s.rows;
  float acc[K] = {};
  if (col < s.cols)  // no early return: every thread reaches the barriers
    for (int64_t r = first + phase; r < end; r += kRowPhases) terms(r, col, acc);
  add_row_phases(acc);
  const bool writes = phase == 0 && col < s.cols;
  if (s.slabs == 1) {
    if (writes)
      for (int k = 0; k < K; ++k) out[k][col] = acc[k];
    return;
  }
  if (writes)
    for (int k = 0; k < K; ++k) partials[(int64_t(k) * s.slabs + slab) * s.cols + col] = acc[k];
  if (!last_block_of_group(tickets + col_block, s.slabs)) return;
  // The column tile's partials, slab p in phase p % 8's serial share, then the phases in order.
  const volatile float* p = partials;
  float total[K] = {};
  if (col < s.cols)
    for (int slab_index = phase; slab_index < s.slabs; slab_index += kRowPhases)
      for (int k = 0; k < K; ++k) total[k] += p[(int64_t(k) * s.slabs + slab_index) * s.cols + col];
  add_row_phases(total);
  if (writes)
    for (int k = 0; k < K; ++k) out[k][col] = total[k];
}

// ---- channel sums of an [n, c, hw] tensor -------------------------------------------------------
// Channel ch's values are x[(q c + ch) hw + r], q < n, r < hw, N = n hw of them, numbered
// i = q hw + r. A group is a channel; its slabs are ranges of i. Thread t of a block walks
// i = first + t, first + t + 256, ...: (q, r) of its first i from a precomputed division
// (fast_divmod.cuh), then each step adds 256 = step_q hw + step_r with one carry: no division in
// the loop. Block b is channel b / slabs, slab b % slabs.

constexpr int64_t kMinSlabValues = 8 * kBlockThreads;  // 8 values a thread at least

struct ChannelSlabs {
  int64_t c = 0, hw = 1, count = 0, slab_len = 1;
  int slabs = 1;
  FastDivmod<uint64_t> hw_div;
  int64_t step_q = 0, step_r = 0;  // kBlockThreads = step_q hw + step_r
  unsigned blocks() const { return unsigned(int64_t(slabs) * c); }
};
inline ChannelSlabs channel_slabs(int64_t n, int64_t c, int64_t hw) {
  ChannelSlabs s;
  s.c = c;
  s.hw = std::max<int64_t>(hw, 1);  // hw = 0 has no values: any divisor walks none of them
  s.count = n * hw;
  const SlabSplit split = split_into_slabs(s.count, c, kMinSlabValues);
  s.slab_len = split.slab_rows;
  s.slabs = split.slabs;
  s.hw_div = FastDivmod<uint64_t>(s.hw);
  s.step_q = kBlockThreads / s.hw;
  s.step_r = kBlockThreads % s.hw;
  return s;
}

// Calls f(offset) for each of this thread's values of channel ch's slab `slab`.
template <class F>
__device__ __forceinline__ void for_each_slab_value(const ChannelSlabs& s, int64_t ch, int slab,
                                                    F f) {
  const int64_t first = slab * s.slab_len;
  const int64_t end = first + s.slab_len < s.count ? first + s.slab_len : s.count;
  uint64_t q, r;
  s.hw_div.divmod(uint64_t(first + threadIdx.x), q, r);
  for (int64_t i = first + threadIdx.x; i < end; i += kBlockThreads) {
    f((int64_t(q) * s.c + ch) * s.hw + int64_t(r));
    q += s.step_q;
    r += s.step_r;
    if (r >= uint64_t(s.hw)) {
      r -= s.hw;
      ++q;
    }
  }
}

// out[k][ch] = sum over channel ch's values at offsets `at` of the K terms terms(at, acc) adds.
// `block` is this block's index among s.blocks(); partials holds K * c * slabs floats (unused with
// one slab), tickets c counters. Every thread of the block must call it.
template <int K, class Terms>
__device__ __forceinline__ void channel_slab_sums(const ChannelSlabs& s, unsigned block,
                                                  Terms terms, float* partials, unsigned* tickets,
                                                  float* const (&out)[K]) {
  const int64_t ch = block / unsigned(s.slabs);
  const int slab = int(block % unsigned(s.slabs));
  float acc[K] = {};
  for_each_slab_value(s, ch, slab, [&](int64_t at) { terms(at, acc); });
  for (int k = 0; k < K; ++k) acc[k] = block_sum(acc[k]);
  if (s.slabs == 1) {
    if (threadIdx.x == 0)
      for (int k = 0; k < K; ++k) out[k][ch] = acc[k];
    return;
  }
  if (threadIdx.x == 0)
    for (int k = 0; k < K; ++k) partials[(k * s.c + ch) * s.slabs + slab] = acc[k];
  if (!last_block_of_group(tickets + ch, s.slabs)) return;
  for (int k = 0; k < K; ++k) {
    const float total = block_sum_of_partials(partials + (k * s.c + ch) * s.slabs, s.slabs, 1);
    if (threadIdx.x == 0) out[k][ch] = total;
  }
}

}  // namespace forge::FORGE_GPU_NS
