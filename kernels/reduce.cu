// reduce.cu: reduce_sum (a tensor summed down to a shape with some extents 1: broadcast backward,
// bias gradients, means). Gradient clipping's sum of squares is in clip.cu.
//
//   reduce_sum:  out[o] = sum over r of x[kept(o) + reduced(r)]
// where kept(o) is the input offset of output element o's coordinates and reduced(r) that of the
// r-th combination of the reduced coordinates; both are strided views (launch_utils.cuh) over the
// input's row-major strides. Three launch shapes:
//  - column sums, when the input is [rows, cols] summed over its rows once extents of 1 are
//    dropped and neighbouring dimensions of one kind merged (a bias gradient [rows, n] -> [n], a
//    broadcast [b, t, d] -> [d]): rows cut into slabs over many blocks, each block 32 columns of
//    one slab, and the last block of each column tile adds the slabs' partials in a fixed order
//    (slab_reduce.cuh: about 1,056 blocks, one launch);
//  - one thread per output, a serial loop over r, when each sum is short (<= 32 terms) or when the
//    last dimension is kept and outputs are many (>= 1024): neighbouring threads then read
//    neighbouring addresses;
//  - otherwise one 256-thread block per output (grid-stride over outputs, at most 4096 blocks):
//    the threads stride over r and meet in block_sum (reduce_utils.cuh).
// Accumulation is in float: a serial sum of m terms is within m * eps * sum|x| of exact, a tree
// within log2(m) * eps * sum|x| (the CPU accumulates in double; tests allow for the difference).
// Every order of additions is fixed by the shapes alone: results are the same on every run.
// Nothing is saved for backward.
#include <algorithm>

#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_impl.h"
#include "kernels/kernel_util.cuh"
#include "kernels/slab_reduce.cuh"

namespace forge::FORGE_GPU_NS {

// ---- kernels --------------------------------------------------------------------------------

template <class Word>
__global__ void reduce_sum_serial_kernel(const float* x, ViewIndexer<Word> kept,
                                         ViewIndexer<Word> reduced, int64_t out_n, int64_t red_n,
                                         float* out) {
  for (int64_t o = grid_first(); o < out_n; o += grid_stride()) {
    const float* base = x + kept(Word(o));
    float acc = 0.f;
    for (int64_t r = 0; r < red_n; ++r) acc += base[reduced(Word(r))];
    out[o] = acc;
  }
}

template <class Word>
__global__ void reduce_sum_block_kernel(const float* x, ViewIndexer<Word> kept,
                                        ViewIndexer<Word> reduced, int64_t out_n, int64_t red_n,
                                        float* out) {
  // o depends on the block only, so every thread of a block runs the same iterations and reaches
  // each block_sum together.
  for (int64_t o = blockIdx.x; o < out_n; o += gridDim.x) {
    const float* base = x + kept(Word(o));
    float acc = 0.f;
    for (int64_t r = threadIdx.x; r < red_n; r += blockDim.x) acc += base[reduced(Word(r))];
    acc = block_sum(acc);
    if (threadIdx.x == 0) out[o] = acc;
  }
}

__global__ void reduce_columns_kernel(const float* x, ColumnSlabs s, float* partials,
                                      unsigned* tickets, float* out) {
  float* const outs[1] = {out};
  column_slab_sums<1>(
      s, blockIdx.x, [&](int64_t r, int64_t col, float(&acc)[1]) { acc[0] += x[r * s.cols + col]; },
      partials, tickets, outs);
}

// ---- launchers ------------------------------------------------------------------------------

// Sums `red_n` elements per output with the block kernel or the serial one (see the top).
static void launch_reduce_sum(const float* x, const StridedView& kept, const StridedView& reduced,
                              int64_t out_n, int64_t red_n, bool last_dim_kept, float* out) {
  // Both views index the input, so the input's size picks the index word.
  with_index_word(out_n * red_n, [&](auto word) {
    using Word = decltype(word);
    const ViewIndexer<Word> kept_index(kept), reduced_index(reduced);
    if (red_n <= 32 || (last_dim_kept && out_n >= 1024)) {
      FORGE_LAUNCH(reduce_sum_serial_kernel<Word>, dim3(grid_blocks(out_n)), dim3(kBlockThreads), 0,
                   kStream, x, kept_index, reduced_index, out_n, red_n, out);
    } else {
      const unsigned blocks = unsigned(std::min<int64_t>(out_n, kMaxGridBlocks));
      FORGE_LAUNCH(reduce_sum_block_kernel<Word>, dim3(blocks), dim3(kBlockThreads), 0, kStream, x,
                   kept_index, reduced_index, out_n, red_n, out);
    }
  });
  FORGE_CHECK_LAUNCH("reduce_sum_kernel");
}

void GpuBackend::reduce_sum(const float* x, const int64_t* in_shape, const int64_t* out_shape,
                            int ndim, float* out) {
  // kept: the output's shape over the input's strides; reduced: the reduced extents and strides.
  StridedView kept, reduced;
  kept.ndim = ndim;
  int64_t stride = 1, out_n = 1, red_n = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    kept.shape[d] = out_shape[d];
    kept.strides[d] = stride;
    out_n *= out_shape[d];
    stride *= in_shape[d];
  }
  for (int d = 0; d < ndim; ++d) {
    if (out_shape[d] == in_shape[d]) continue;
    reduced.shape[reduced.ndim] = in_shape[d];
    reduced.strides[reduced.ndim] = kept.strides[d];
    ++reduced.ndim;
    red_n *= in_shape[d];
  }
  if (out_n == 0) return;
  // [rows, cols] summed over rows? Dimensions with extents > 1, runs of one kind merged.
  int64_t runs[2] = {1, 1};  // extents of the leading reduced run and the kept run after it
  int kinds = 0;             // runs seen: 1 = reduced, 2 = reduced then kept, 3 = anything else
  for (int d = 0; d < ndim; ++d) {
    if (in_shape[d] == 1) continue;
    const bool kept_dim = out_shape[d] == in_shape[d];
    if (kinds == 0 && !kept_dim)
      kinds = 1;
    else if (kinds == 1 && kept_dim)
      kinds = 2;
    else if ((kinds == 0 && kept_dim) || (kinds == 2 && !kept_dim))
      kinds = 3;
    if (kinds < 3) runs[kinds - 1] *= in_shape[d];
  }
  if (kinds == 2) {
    const ColumnSlabs s = column_slabs(runs[0], runs[1]);
    DeviceScratch partials(*this, s.slabs > 1 ? int64_t(s.slabs) * s.cols : 0);
    unsigned* tickets = impl_->tickets.get(*this, size_t(s.col_blocks));
    FORGE_LAUNCH(reduce_columns_kernel, dim3(s.blocks()), dim3(kBlockThreads), 0, kStream, x, s,
                 partials.data(), tickets, out);
    FORGE_CHECK_LAUNCH("reduce_columns_kernel");
    return;
  }
  const bool last_dim_kept = ndim > 0 && out_shape[ndim - 1] == in_shape[ndim - 1];
  launch_reduce_sum(x, kept, reduced, out_n, red_n, last_dim_kept, out);
}

}  // namespace forge::FORGE_GPU_NS
