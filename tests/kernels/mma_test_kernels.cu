// mma_test_kernels.cu: the kernels behind mma_test_kernels.h. Plain CUDA through cuda_compat.h
// and kernels/mma.cuh, so scripts/nvcc_check.sh compiles them for sm_80 / sm_90 too.
//
// Fragment formulas (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"),
// with g = lane >> 2 (groupID) and t = lane % 4 (threadID_in_group), each register holding two
// elements, the first in the low half:
//   A: a[0] = A[g][2t, 2t+1]    a[1] = A[g+8][2t, 2t+1]   a[2] = A[g][2t+8, 2t+9]
//      a[3] = A[g+8][2t+8, 2t+9]
//   B: b[0] = B[2t, 2t+1][g]    b[1] = B[2t+8, 2t+9][g]
//   C, D: c[0] = C[g][2t]  c[1] = C[g][2t+1]  c[2] = C[g+8][2t]  c[3] = C[g+8][2t+1]
#include "kernels/mma.cuh"
#include "tests/kernels/mma_test_kernels.h"

namespace forge::FORGE_GPU_NS::mma_test {

namespace {
using namespace ::forge::tensor_core;
constexpr unsigned kFullMask = 0xffffffffu;

__device__ uint32_t pack(const uint16_t* matrix, int index_low, int index_high) {
  return pack_bf16x2(bf16_from_bits(matrix[index_low]), bf16_from_bits(matrix[index_high]));
}

// The lane whose value lane `lane` takes when lanes `x` and `y` trade places.
__device__ int traded(int lane, int x, int y) {
  return lane == x ? y : lane == y ? x : lane;
}

__global__ void mma_tiles_kernel(const uint16_t* a, const uint16_t* b, const float* c, float* d,
                                 Swap swap) {
  const int tile = blockIdx.x, lane = threadIdx.x, g = lane >> 2, t = lane % 4;
  const uint16_t* A = a + tile * 16 * 16;
  const uint16_t* B = b + tile * 16 * 8;
  const float* C = c + tile * 16 * 8;
  float* D = d + tile * 16 * 8;
  uint32_t fa[4] = {pack(A, g * 16 + 2 * t, g * 16 + 2 * t + 1),
                    pack(A, (g + 8) * 16 + 2 * t, (g + 8) * 16 + 2 * t + 1),
                    pack(A, g * 16 + 2 * t + 8, g * 16 + 2 * t + 9),
                    pack(A, (g + 8) * 16 + 2 * t + 8, (g + 8) * 16 + 2 * t + 9)};
  uint32_t fb[2] = {pack(B, (2 * t) * 8 + g, (2 * t + 1) * 8 + g),
                    pack(B, (2 * t + 8) * 8 + g, (2 * t + 9) * 8 + g)};
  const float fc[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t],
                       C[(g + 8) * 8 + 2 * t + 1]};
  const int a_source = swap == Swap::a_lanes_0_1 ? traded(lane, 0, 1) : lane;
  const int b_source = swap == Swap::b_lanes_0_4 ? traded(lane, 0, 4) : lane;
  for (auto& r : fa) r = __shfl_sync(kFullMask, r, a_source);
  for (auto& r : fb) r = __shfl_sync(kFullMask, r, b_source);
  float fd[4];
  mma_m16n8k16_bf16(fd, fa, fb, fc);
  D[g * 8 + 2 * t] = fd[0];
  D[g * 8 + 2 * t + 1] = fd[1];
  D[(g + 8) * 8 + 2 * t] = fd[2];
  D[(g + 8) * 8 + 2 * t + 1] = fd[3];
}

// Rows of the staged matrices lie 48 bytes apart (16-byte aligned, not the 16-byte packing of a
// plain 8x8 matrix), in a scrambled order: row r of matrix j is shared row (8 j + r) * 7 % 32.
constexpr int kPitch = 24;
__device__ int scattered_row(int j, int r) {
  return (8 * j + r) * 7 % 32;
}

template <int M, bool kTransposed>
__global__ void ldmatrix_kernel(const uint16_t* m, uint32_t* out, Swap swap) {
  __shared__ __align__(16) uint16_t rows[32][kPitch];
  const int lane = threadIdx.x;
  for (int e = lane; e < M * 64; e += 32) rows[scattered_row(e / 64, e / 8 % 8)][e % 8] = m[e];
  __syncthreads();
  // Lanes past 8 M supply no row; give them a valid address anyway.
  const void* row = &rows[lane < 8 * M ? scattered_row(lane / 8, lane % 8) : 0][0];
  uint32_t d[M];
  if constexpr (M == 1) {
    kTransposed ? ldmatrix_x1_trans(d, row) : ldmatrix_x1(d, row);
  } else if constexpr (M == 2) {
    kTransposed ? ldmatrix_x2_trans(d, row) : ldmatrix_x2(d, row);
  } else {
    kTransposed ? ldmatrix_x4_trans(d, row) : ldmatrix_x4(d, row);
  }
  const int source = swap == Swap::result_lanes_0_1 ? traded(lane, 0, 1) : lane;
  for (int j = 0; j < M; ++j) out[lane * M + j] = __shfl_sync(kFullMask, d[j], source);
}

__global__ void cp_async_groups_kernel(const float* first, const float* second, float* after_wait_1,
                                       float* before_wait_0, float* after_wait_0) {
  FORGE_DYNAMIC_SMEM(float, staged);  // 256 floats: group 0, then group 1
  const int i = 4 * threadIdx.x;
  cp_async_cg<16>(staged + i, first + i);
  cp_async_commit_group();
  cp_async_cg<16>(staged + 128 + i, second + i);
  cp_async_commit_group();
  cp_async_wait_group<1>();
  for (int e = 0; e < 4; ++e) {
    after_wait_1[i + e] = staged[i + e];
    before_wait_0[i + e] = staged[128 + i + e];
  }
  cp_async_wait_group<0>();
  for (int e = 0; e < 4; ++e) after_wait_0[i + e] = staged[128 + i + e];
}

__global__ void cp_async_sizes_kernel(const uint8_t* src, uint8_t* out) {
  FORGE_DYNAMIC_SMEM(uint8_t, staged);
  const int base = 80 * threadIdx.x;
  cp_async_ca<4>(staged + base, src + base);
  cp_async_ca<8>(staged + base + 16, src + base + 16);
  cp_async_ca<16>(staged + base + 32, src + base + 32);
  cp_async_cg<16>(staged + base + 48, src + base + 48);
  cp_async_cg<16>(staged + base + 64, src + base + 64, 5);
  cp_async_commit_group();
  cp_async_wait_group<0>();
  for (int e = 0; e < 80; ++e) out[base + e] = staged[base + e];
}

__global__ void cp_async_misaligned_kernel(const uint8_t* src) {
  __shared__ __align__(16) uint8_t staged[32];
  cp_async_cg<16>(staged + 4, src);
  cp_async_commit_group();
  cp_async_wait_group<0>();
}

__global__ void mma_partial_warp_kernel(float* out) {
  const uint32_t a[4] = {}, b[2] = {};
  const float c[4] = {};
  float d[4];
  mma_m16n8k16_bf16(d, a, b, c);
  out[threadIdx.x] = d[0];
}

template <int M>
void launch_ldmatrix(const uint16_t* m, bool transposed, uint32_t* out, Swap swap) {
  if (transposed) {
    FORGE_LAUNCH((ldmatrix_kernel<M, true>), 1, 32, 0, 0, m, out, swap);
    FORGE_CHECK_LAUNCH("ldmatrix_kernel");
  } else {
    FORGE_LAUNCH((ldmatrix_kernel<M, false>), 1, 32, 0, 0, m, out, swap);
    FORGE_CHECK_LAUNCH("ldmatrix_kernel");
  }
}
}  // namespace

void mma_tiles(const uint16_t* a, const uint16_t* b, const float* c, float* d, int tiles,
               Swap swap) {
  FORGE_LAUNCH(mma_tiles_kernel, tiles, 32, 0, 0, a, b, c, d, swap);
  FORGE_CHECK_LAUNCH(mma_tiles_kernel);
}

void ldmatrix_fragments(const uint16_t* m, int matrices, bool transposed, uint32_t* out,
                        Swap swap) {
  if (matrices == 1) launch_ldmatrix<1>(m, transposed, out, swap);
  if (matrices == 2) launch_ldmatrix<2>(m, transposed, out, swap);
  if (matrices == 4) launch_ldmatrix<4>(m, transposed, out, swap);
}

void cp_async_groups(const float* first, const float* second, float* after_wait_1,
                     float* before_wait_0, float* after_wait_0) {
  FORGE_LAUNCH(cp_async_groups_kernel, 1, 32, 256 * sizeof(float), 0, first, second, after_wait_1,
               before_wait_0, after_wait_0);
  FORGE_CHECK_LAUNCH(cp_async_groups_kernel);
}

void cp_async_sizes(const uint8_t* src, uint8_t* out) {
  FORGE_LAUNCH(cp_async_sizes_kernel, 1, 32, 32 * 80, 0, src, out);
  FORGE_CHECK_LAUNCH(cp_async_sizes_kernel);
}

void cp_async_misaligned(const uint8_t* src) {
  FORGE_LAUNCH(cp_async_misaligned_kernel, 1, 32, 0, 0, src);
  FORGE_CHECK_LAUNCH(cp_async_misaligned_kernel);
}

void mma_partial_warp(float* out) {
  FORGE_LAUNCH(mma_partial_warp_kernel, 1, 16, 0, 0, out);
  FORGE_CHECK_LAUNCH(mma_partial_warp_kernel);
}

}  // namespace forge::FORGE_GPU_NS::mma_test
