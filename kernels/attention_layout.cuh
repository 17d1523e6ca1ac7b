// attention_layout.cuh: where the attention kernels (kernels/attention.cu, attention_mma.cuh) find
// one problem's [t, dh] matrix of an operand. Problem p = batch * heads + head (the kernels' grid.y
// and the index of lse and D [p, t]) has element (i, c) of its matrix at
//   base(p) + i ld + c,   base(p) = (p / heads) batch_stride + (p % heads) head_stride
// in elements (floats, or bf16 for a rounded copy laid out like its fp32 source). Two layouts:
//   [bh, t, dh] contiguous:              heads 1, batch_stride t dh, ld dh;
//   the packed projection qkv [b, t, 3, heads, dh] (w = heads dh): q at qkv, k at qkv + w, v at
//     qkv + 2 w, each with batch_stride 3 t w, head_stride dh, ld 3 w; its output and the output's
//     gradient [b, t, heads, dh]: batch_stride t w, head_stride dh, ld w.
// q, k, v (and gq, gk, gv) share one layout, out and gout another.
#pragma once
#include <cstdint>

#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS {

struct AttentionLayout {
  int heads;
  int64_t batch_stride, head_stride;
  int ld;
  __host__ __device__ int64_t base(int problem) const {
    return int64_t(problem / heads) * batch_stride + int64_t(problem % heads) * head_stride;
  }
};

inline AttentionLayout contiguous_attention_layout(int t, int dh) {
  return {1, int64_t(t) * dh, 0, dh};
}

// q, k or v inside the packed qkv [b, t, 3, heads, dh].
inline AttentionLayout packed_qkv_layout(int heads, int t, int dh) {
  const int w = heads * dh;
  return {heads, 3 * int64_t(t) * w, dh, 3 * w};
}

// out (and gout) [b, t, heads, dh].
inline AttentionLayout packed_out_layout(int heads, int t, int dh) {
  const int w = heads * dh;
  return {heads, int64_t(t) * w, dh, w};
}

}  // namespace forge::FORGE_GPU_NS
