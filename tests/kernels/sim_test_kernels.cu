// sim_test_kernels.cu: the kernels behind sim_test_kernels.h. Plain CUDA through cuda_compat.h,
// so scripts/nvcc_check.sh compiles them for real GPUs too and the sim stays honest about what
// nvcc accepts.
#include "tests/kernels/sim_test_kernels.h"

namespace forge::FORGE_GPU_NS::sim_test {

namespace {
constexpr int kTile = 16;
constexpr unsigned kFullMask = 0xffffffffu;

template <bool kSecondSyncthreads>
__global__ void tiled_matmul_kernel(const float* a, const float* b, float* c, int m, int n, int k) {
  __shared__ float a_tile[kTile][kTile];
  __shared__ float b_tile[kTile][kTile];
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.0f;
  for (int t = 0; t < k; t += kTile) {
    const int ak = t + threadIdx.x, bk = t + threadIdx.y;
    a_tile[threadIdx.y][threadIdx.x] = row < m && ak < k ? a[row * k + ak] : 0.0f;
    b_tile[threadIdx.y][threadIdx.x] = bk < k && col < n ? b[bk * n + col] : 0.0f;
    __syncthreads();
    for (int i = 0; i < kTile; ++i) acc += a_tile[threadIdx.y][i] * b_tile[i][threadIdx.x];
    if (kSecondSyncthreads) __syncthreads();  // nobody may overwrite a tile still being read
  }
  if (row < m && col < n) c[row * n + col] = acc;
}

__global__ void divergent_syncthreads_kernel(float* out) {
  if (threadIdx.x >= blockDim.x / 2) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void mismatched_barriers_kernel(float* out) {
  if (threadIdx.x < 48) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_sync(kFullMask, 1.0f, 0);
  }
}

__global__ void shuffle_with_exited_lane_kernel(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(kFullMask, float(threadIdx.x), 1);
}

__global__ void shuffle_outside_mask_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, float(threadIdx.x), threadIdx.x == 0 ? 20 : 1);
}

__global__ void shuffle_in_partial_warp_kernel(float* out) {
  out[threadIdx.x] = __shfl_down_sync(kFullMask, float(threadIdx.x), 1);
}

__device__ float warp_sum_down(float v) {
  for (int offset = warpSize / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

__global__ void warp_reductions_kernel(const float* x, float* down_sums, float* xor_sums,
                                       unsigned* ballots) {
  const float v = x[threadIdx.x];
  const float down = warp_sum_down(v);
  float all = v;
  for (int mask = warpSize / 2; mask > 0; mask /= 2) all += __shfl_xor_sync(kFullMask, all, mask);
  const unsigned ballot = __ballot_sync(kFullMask, v > 0.0f);
  const int warp = threadIdx.x / warpSize, lane = threadIdx.x % warpSize;
  xor_sums[threadIdx.x] = all;
  if (lane == 0) {
    down_sums[warp] = down;
    ballots[warp] = ballot;
  }
}

constexpr int kReduceThreads = 128;

__global__ void block_reduce_sum_kernel(const float* x, int n, float* sum) {
  __shared__ float warp_sums[kReduceThreads / 32];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int warp = threadIdx.x / warpSize, lane = threadIdx.x % warpSize;
  // Threads past n add zero rather than return: the shuffles need every lane of the warp.
  const float v = warp_sum_down(i < n ? x[i] : 0.0f);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const float total = warp_sum_down(lane < kReduceThreads / 32 ? warp_sums[lane] : 0.0f);
    if (lane == 0) atomicAdd(sum, total);
  }
}

__global__ void read_dynamic_smem_kernel(float* out, int n) {
  FORGE_DYNAMIC_SMEM(float, buffer);
  out[threadIdx.x] = buffer[threadIdx.x];
  __syncthreads();
  buffer[threadIdx.x] = float(threadIdx.x) * 0.5f;
  __syncthreads();
  out[n + threadIdx.x] = buffer[threadIdx.x];
}

__global__ void index_3d_kernel(unsigned* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned* o = out + 12 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
  const unsigned values[12] = {blockIdx.x,  blockIdx.y,  blockIdx.z, threadIdx.x,
                               threadIdx.y, threadIdx.z, blockDim.x, blockDim.y,
                               blockDim.z,  gridDim.x,   gridDim.y,  gridDim.z};
  for (int j = 0; j < 12; ++j) o[j] = values[j];
}

__global__ void integer_atomics_kernel(int* out, unsigned long long* exchanged) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  const int value = (t * 37) % 1001 - 500;
  atomicMax(&out[0], max(value, -1000));
  atomicMin(&out[1], min(value, 1000));
  atomicAdd(reinterpret_cast<unsigned*>(&out[2]), 1u);
  atomicAdd(exchanged, static_cast<unsigned long long>(atomicExch(&out[3], t)));
  atomicCAS(&out[4], 0, t + 1);
}

__global__ void empty_kernel() {}

__global__ void count_threads_kernel(int* counter) {
  atomicAdd(counter, 1);
}

unsigned ceil_div(int a, int b) {
  return unsigned((a + b - 1) / b);
}

}  // namespace

void tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k,
                  bool second_syncthreads) {
  const dim3 grid(ceil_div(n, kTile), ceil_div(m, kTile)), block(kTile, kTile);
  if (second_syncthreads) {
    FORGE_LAUNCH((tiled_matmul_kernel<true>), grid, block, 0, 0, a, b, c, m, n, k);
  } else {
    FORGE_LAUNCH((tiled_matmul_kernel<false>), grid, block, 0, 0, a, b, c, m, n, k);
  }
  FORGE_CHECK_LAUNCH(tiled_matmul_kernel);
}

void divergent_syncthreads(float* out) {
  FORGE_LAUNCH(divergent_syncthreads_kernel, 1, 64, 0, 0, out);
  FORGE_CHECK_LAUNCH(divergent_syncthreads_kernel);
}

void mismatched_barriers(float* out) {
  FORGE_LAUNCH(mismatched_barriers_kernel, 1, 64, 0, 0, out);
  FORGE_CHECK_LAUNCH(mismatched_barriers_kernel);
}

void shuffle_with_exited_lane(float* out) {
  FORGE_LAUNCH(shuffle_with_exited_lane_kernel, 1, 32, 0, 0, out);
  FORGE_CHECK_LAUNCH(shuffle_with_exited_lane_kernel);
}

void warp_reductions(const float* x, float* down_sums, float* xor_sums, unsigned* ballots) {
  FORGE_LAUNCH(warp_reductions_kernel, 1, 64, 0, 0, x, down_sums, xor_sums, ballots);
  FORGE_CHECK_LAUNCH(warp_reductions_kernel);
}

void block_reduce_sum(const float* x, int n, float* sum) {
  FORGE_LAUNCH(block_reduce_sum_kernel, ceil_div(n, kReduceThreads), kReduceThreads, 0, 0, x, n,
               sum);
  FORGE_CHECK_LAUNCH(block_reduce_sum_kernel);
}

void read_dynamic_smem(float* out, int n) {
  FORGE_LAUNCH(read_dynamic_smem_kernel, 1, n, n * sizeof(float), 0, out, n);
  FORGE_CHECK_LAUNCH(read_dynamic_smem_kernel);
}

void index_3d(dim3 grid, dim3 block, unsigned* out) {
  FORGE_LAUNCH(index_3d_kernel, grid, block, 0, 0, out);
  FORGE_CHECK_LAUNCH(index_3d_kernel);
}

void shuffle_outside_mask(float* out) {
  FORGE_LAUNCH(shuffle_outside_mask_kernel, 1, 32, 0, 0, out);
  FORGE_CHECK_LAUNCH(shuffle_outside_mask_kernel);
}

void shuffle_in_partial_warp(float* out) {
  FORGE_LAUNCH(shuffle_in_partial_warp_kernel, 1, 48, 0, 0, out);
  FORGE_CHECK_LAUNCH(shuffle_in_partial_warp_kernel);
}

void integer_atomics(int blocks, int* out, unsigned long long* exchanged) {
  FORGE_LAUNCH(integer_atomics_kernel, blocks, 256, 0, 0, out, exchanged);
  FORGE_CHECK_LAUNCH(integer_atomics_kernel);
}

void launch_empty(dim3 grid, dim3 block, size_t dynamic_smem_bytes) {
  FORGE_LAUNCH(empty_kernel, grid, block, dynamic_smem_bytes, 0);
  FORGE_CHECK_LAUNCH(empty_kernel);
}

void count_threads(dim3 grid, dim3 block, int* counter) {
  FORGE_LAUNCH(count_threads_kernel, grid, block, 0, 0, counter);
  FORGE_CHECK_LAUNCH(count_threads_kernel);
}

}  // namespace forge::FORGE_GPU_NS::sim_test
