// reduce_utils.cuh: warp and block reductions shared by the reduction, loss and normalisation
// kernels.
//
// warp_sum / warp_max: a butterfly over the 32 lanes with __shfl_xor_sync; after log2(32) = 5
// steps every lane holds the result. The tree's shape is fixed by lane numbers, not by which lane
// runs first, so the result is the same in every execution order.
// block_sum: each warp reduces itself, lane 0 of each warp writes its partial to shared memory,
// then every warp reduces the partials, so every thread gets the block's total. Needs blockDim.x a
// multiple of 32 (full warps for the full shuffle mask) and every thread of the block to call it.
#pragma once
#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS {

constexpr unsigned kFullWarpMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullWarpMask, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(kFullWarpMask, v, offset));
  return v;
}

__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_partials[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // a previous block_sum in this kernel may still be reading warp_partials
  if (lane == 0) warp_partials[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? warp_partials[lane] : 0.f);
}

}  // namespace forge::FORGE_GPU_NS
