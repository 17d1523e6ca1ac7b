// launch_utils.cuh: launch shapes and indexing shared by the kernel families.
//
// Elementwise kernels use grid-stride loops: a grid of at most kMaxGridBlocks blocks of
// kBlockThreads threads walks any n, so huge tensors need no huge grids (and the sim makes no more
// fibers than a few waves' worth), while small tensors still get one thread per element.
#pragma once
#include <algorithm>
#include <cstdint>

#include "engine/backend.h"
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

// Element offset of the `linear`-th element (row-major over v.shape) of a strided view. The
// outermost dimension needs no division: what is left of `linear` there is below its extent.
// A 64-bit divide and modulo per inner dimension and element: launchers coalesce views first.
__device__ __forceinline__ int64_t view_offset(const StridedView& v, int64_t linear) {
  int64_t off = v.offset;
  for (int d = v.ndim - 1; d > 0; --d) {
    off += (linear % v.shape[d]) * v.strides[d];
    linear /= v.shape[d];
  }
  return v.ndim > 0 ? off + linear * v.strides[0] : off;
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
