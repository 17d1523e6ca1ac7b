// clip.cu: gradient-norm clipping over the whole list of gradients in two launches
// (multi_tensor.cuh):
//   sum_squares:  S = sum over tensors k and elements i of x_ki^2. Up to 1024 blocks each write
//                 block_sum of their grid-stride share of the concatenated tensors to a partials
//                 buffer; the host adds the partials in double (one transfer, which waits).
//                 No atomics: the result does not depend on the order blocks run in.
//   scale_all:    x_ki *= scale for every element.
// Accumulation in a thread is in float: a serial share of m terms is within m * eps * sum x^2 of
// exact, the block tree within log2(256) * eps (the CPU sums each tensor in double).
#include <algorithm>

#include "engine/cuda/gpu_backend.h"
#include "kernels/multi_tensor.cuh"

namespace forge::FORGE_GPU_NS {

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

__global__ void scale_all_kernel(const ClipEntry* table, int count, int64_t total, float scale) {
  int k = -1;
  for (int64_t e = grid_first(); e < total; e += grid_stride()) {
    k = entry_of(table, count, e, k);
    table[k].x[e - table[k].start] *= scale;
  }
}

static std::vector<ClipEntry> list_entries(float* const* xs, const int64_t* ns, int count) {
  std::vector<ClipEntry> entries;
  for (int k = 0; k < count; ++k) entries.push_back({xs[k], ns[k], 0});
  return entries;
}

double GpuBackend::sum_squares(const float* const* xs, const int64_t* ns, int count) {
  if (count == 0) return 0.0;
  std::vector<ClipEntry> entries = list_entries(const_cast<float* const*>(xs), ns, count);
  DeviceTable<ClipEntry> table(*this, entries);
  if (table.total() == 0) return 0.0;
  const unsigned blocks = std::min(grid_blocks(table.total()), 1024u);
  DeviceScratch partials(*this, blocks);
  FORGE_LAUNCH(sum_squares_kernel, dim3(blocks), dim3(kBlockThreads), 0, kStream, table.data(),
               count, table.total(), partials.data());
  FORGE_CHECK_LAUNCH(sum_squares_kernel);
  std::vector<float> host(blocks);
  copy_to_host(host.data(), partials.data(), blocks * sizeof(float));
  double sum = 0.0;
  for (float partial : host) sum += partial;
  return sum;
}

void GpuBackend::scale_all(float* const* xs, const int64_t* ns, int count, float scale) {
  if (count == 0) return;
  std::vector<ClipEntry> entries = list_entries(xs, ns, count);
  DeviceTable<ClipEntry> table(*this, entries);
  if (table.total() == 0) return;
  FORGE_LAUNCH(scale_all_kernel, dim3(grid_blocks(table.total())), dim3(kBlockThreads), 0, kStream,
               table.data(), count, table.total(), scale);
  FORGE_CHECK_LAUNCH(scale_all_kernel);
}

}  // namespace forge::FORGE_GPU_NS
