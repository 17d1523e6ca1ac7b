// launch_utils.cuh: launch shapes and indexing shared by the kernel families.
//
// Elementwise kernels use grid-stride loops: a grid of at most kMaxGridBlocks blocks of
// kBlockThreads threads walks any n, so huge tensors need no huge grids (and the sim makes no more
// fibers than a few waves' worth), while small tensors still get one thread per element.
#pragma once
#include <algorithm>
#include <cstdint>

#include "engine/backend.h"
#include "kernels/fast_divmod.cuh"
#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS {

constexpr int kBlockThreads = 256;    // 8 warps: enough to hide latency, small enough to schedule
constexpr int kMaxGridBlocks = 4096;  // ~ 30 blocks per SM on a 132-SM H100: several waves
constexpr int kWarp = 32;

// Blocks of `block` threads covering n items, capped for grid-stride loops.
inline unsigned grid_blocks(int64_t n, int block = kBlockThreads) {
  return unsigned(std::clamp<int64_t>((n + block - 1) / block, 1, kMaxGridBlocks));
}

// This thread's first item and the stride between its items in a grid-stride loop.
__device__ __forceinline__ int64_t grid_first() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return int64_t(gridDim.x) * blockDim.x;
}

// Row kernels (softmax, layer norm, cross-entropy) give each row one warp: its lanes stride over
// the row, so neighbouring lanes read neighbouring addresses, and combine with warp shuffles.
// A 256-thread block holds kRowsPerBlock rows.
constexpr int kRowsPerBlock = kBlockThreads / kWarp;
inline unsigned row_blocks(int rows) {
  return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}
__device__ __forceinline__ int warp_row() {
  return int(blockIdx.x) * kRowsPerBlock + int(threadIdx.x) / kWarp;
}
__device__ __forceinline__ int lane_id() {
  return int(threadIdx.x) % kWarp;
}

// A strided view as kernels walk it: element `linear` (row-major over the view's shape) lies at
//   offset + sum_d coordinate_d strides[d],
// the coordinates being the digits of `linear` in the mixed radix of the extents, peeled off from
// the innermost dimension by a division and a remainder each (fast_divmod.cuh: precomputed on the
// host, a multiply-high and a shift here). The outermost dimension needs none: what is left of
// `linear` there is below its extent. Word is uint32_t where the view has fewer than 2^31
// elements (every numerator and extent then fits 31 bits: one 32-bit mul.hi per dimension) and
// uint64_t otherwise (a 64-bit mul.hi); launchers pick with with_index_word. A contiguous view,
// coalesced to one dimension (coalesce_views below), is offset + linear: no division at all.
template <class Word>
struct ViewIndexer {
  int ndim = 0;
  int64_t offset = 0;
  int64_t strides[kMaxDims] = {};
  FastDivmod<Word> extents[kMaxDims];  // extents[0] is never used

  ViewIndexer() = default;
  explicit ViewIndexer(const StridedView& v) : ndim(v.ndim), offset(v.offset) {
    for (int d = 0; d < v.ndim; ++d) {
      strides[d] = v.strides[d];
      // An extent 0 makes an empty view, which is never indexed: divide by 1 instead.
      if (d > 0) extents[d] = FastDivmod<Word>(v.shape[d] > 0 ? v.shape[d] : 1);
    }
  }

  __device__ __forceinline__ int64_t operator()(Word linear) const {
    int64_t off = offset;
    for (int d = ndim - 1; d > 0; --d) {
      Word quotient, coordinate;
      extents[d].divmod(linear, quotient, coordinate);
      off += int64_t(coordinate) * strides[d];
      linear = quotient;
    }
    return ndim > 0 ? off + int64_t(linear) * strides[0] : off;
  }
};

// Calls launch(Word{}) with the index word n elements need: uint32_t below 2^31 (then every
// numerator and extent fits 31 bits), uint64_t otherwise. The kernel is instantiated for both.
template <class Launch>
void with_index_word(int64_t n, Launch&& launch) {
  if (n < (int64_t(1) << 31))
    launch(uint32_t{});
  else
    launch(uint64_t{});
}

// Rewrites views of one shape, walked by one linear index, with as few dimensions as walk the
// same elements in the same order: extents of 1 are dropped, and neighbouring dimensions d, d + 1
// merge where every view has strides[d] = strides[d + 1] * shape[d + 1]. A contiguous view becomes
// 1-D (offset + i, no division at all); a broadcast or permuted one keeps only the dimensions its
// zero or permuted strides need.
inline void coalesce_views(StridedView* const* views, int count) {
  const int ndim = views[0]->ndim;
  int kept = -1;  // the last dimension written back
  for (int d = 0; d < ndim; ++d) {
    const int64_t extent = views[0]->shape[d];
    if (extent == 1) continue;
    bool merges = kept >= 0;
    for (int k = 0; k < count && merges; ++k)
      merges = views[k]->strides[kept] == views[k]->strides[d] * extent;
    if (!merges) ++kept;
    for (int k = 0; k < count; ++k) {
      StridedView& v = *views[k];
      v.shape[kept] = merges ? v.shape[kept] * extent : extent;
      v.strides[kept] = v.strides[d];
    }
  }
  for (int k = 0; k < count; ++k) views[k]->ndim = kept + 1;
}

inline int64_t view_numel(const StridedView& v) {
  int64_t n = 1;
  for (int d = 0; d < v.ndim; ++d) n *= v.shape[d];
  return n;
}

}  // namespace forge::FORGE_GPU_NS
