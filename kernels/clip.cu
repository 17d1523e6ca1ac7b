// clip.cu: gradient-norm clipping over the whole list of gradients in two launches
// (multi_tensor.cuh), with nothing read back to the host:
//   sum_squares_kernel:  up to 1024 blocks each write block_sum of x^2 over their grid-stride
//                        share of the concatenated tensors to a partials buffer.
//   clip_scale_kernel:   every block first adds the partials itself, in double and in one fixed
//                        order (a shared-memory tree), so all blocks get the same S; then
//                        norm = sqrt(S) (block 0 writes it out), and when norm is finite and
//                        > max_norm, x *= max_norm / (norm + 1e-6) over the grid-stride loop.
// No atomics: the result does not depend on the order blocks run in. The partials are read by
// every block (4 KiB each), which costs far less than the transfer and host wait it replaces.
// Accumulation in a thread is in float: a serial share of m terms is within m * eps * sum x^2 of
// exact, the block tree within log2(256) * eps (the CPU sums each tensor in double).
#include <algorithm>

#include "engine/cuda/gpu_backend.h"
#include "kernels/multi_tensor.cuh"

namespace forge::FORGE_GPU_NS {

constexpr unsigned kMaxPartials = 1024;

// One tensor of the list, as the kernels read it.
struct ClipEntry {
  float* x;
  int64_t n, start;
};

__global__ void sum_squares_kernel(const ClipEntry* table, int count, int64_t total,
                                   float* partials) {
  float acc = 0.f;
  int k = -1;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    k = entry_of(table, count, e, k);
    const float x = table[k].x[e - table[k].start];
    acc += x * x;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void clip_scale_kernel(const ClipEntry* table, int count, int64_t total,
                                  const float* partials, int partial_count, float max_norm,
                                  float* norm_out) {
  __shared__ double sums[kBlockThreads];
  double acc = 0.0;
  for (int i = threadIdx.x; i < partial_count; i += blockDim.x) acc += partials[i];
  sums[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  const double norm = sqrt(sums[0]);
  if (blockIdx.x == 0 && threadIdx.x == 0) *norm_out = float(norm);
  const float normf = float(norm);
  if (!isfinite(normf) || normf <= max_norm) return;
  const float scale = float(max_norm / (double(normf) + 1e-6));
  int k = -1;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    k = entry_of(table, count, e, k);
    table[k].x[e - table[k].start] *= scale;
  }
}

void GpuBackend::clip_by_global_norm(float* const* xs, const int64_t* ns, int count, float max_norm,
                                     float* norm_out) {
  std::vector<ClipEntry> entries;
  for (int k = 0; k < count; ++k) entries.push_back({xs[k], ns[k], 0});
  if (entries.empty() || std::all_of(ns, ns + count, [](int64_t n) { return n == 0; })) {
    fill(norm_out, 1, 0.f);
    return;
  }
  DeviceTable<ClipEntry> table(*this, entries);
  const unsigned blocks = std::min(grid_blocks(table.total()), kMaxPartials);
  DeviceScratch partials(*this, blocks);
  FORGE_LAUNCH(sum_squares_kernel, dim3(blocks), dim3(kBlockThreads), 0, kStream, table.data(),
               count, table.total(), partials.data());
  FORGE_CHECK_LAUNCH(sum_squares_kernel);
  FORGE_LAUNCH(clip_scale_kernel, dim3(grid_blocks(table.total())), dim3(kBlockThreads), 0, kStream,
               table.data(), count, table.total(), partials.data(), int(blocks), max_norm,
               norm_out);
  FORGE_CHECK_LAUNCH(clip_scale_kernel);
}

}  // namespace forge::FORGE_GPU_NS
