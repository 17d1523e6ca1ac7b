// sim_test_kernels.h: host launchers of the small kernels that test the emulator itself
// (test_sim.cpp). Each kernel exercises one part of CUDA's execution model; several are wrong on
// purpose, and the tests check that the emulator catches them. Pointers are device memory, which
// on the sim is host memory.
#pragma once
#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS::sim_test {

// c[m x n] = a[m x k] * b[k x n], row-major, 16x16 shared-memory tiles. Without the second
// __syncthreads a fast warp overwrites a tile that slower warps still read.
void tiled_matmul(const float* a, const float* b, float* c, int m, int n, int k,
                  bool second_syncthreads);

// Half of each block returns before a __syncthreads the other half waits at.
void divergent_syncthreads(float* out);

// Threads 0-47 wait at __syncthreads; threads 48-63 wait at a full-mask shuffle that names lanes
// of their warp waiting at the __syncthreads.
void mismatched_barriers(float* out);

// Lane 5 returns; the other lanes shuffle with a full mask that still names it.
void shuffle_with_exited_lane(float* out);

// One warp: lanes 0-15 shuffle with mask 0x0000ffff, and lane 0 reads lane 20, outside the mask.
void shuffle_outside_mask(float* out);

// A block of 48 threads shuffles with a full mask, naming lanes 16-31 of warp 1, which do not
// exist.
void shuffle_in_partial_warp(float* out);

// One block of 64 threads: per warp, the sum by __shfl_down_sync (lane 0 writes it to
// down_sums[warp]), the sum by __shfl_xor_sync (every lane writes it to xor_sums[thread]), and
// __ballot_sync(x > 0) (written to ballots[warp]).
void warp_reductions(const float* x, float* down_sums, float* xor_sums, unsigned* ballots);

// *sum (zeroed first) = sum of x[0..n): per block, shuffles within warps and shared memory across
// them, then one float atomicAdd per block.
void block_reduce_sum(const float* x, int n, float* sum);

// out[i] = dynamic shared memory element i read before anything wrote it; then out[n + i] = the
// value thread i wrote there and read back after a __syncthreads. Block of n threads.
void read_dynamic_smem(float* out, int n);

// Every thread of a 3-D grid of 3-D blocks writes its (blockIdx, threadIdx, blockDim, gridDim)
// into out at its global linear index, 12 ints a thread.
void index_3d(dim3 grid, dim3 block, unsigned* out);

// Integer atomics from every thread of `blocks` blocks of 256 threads, thread t of the grid
// contributing value(t) = (t * 37) % 1001 - 500: out[0] = atomicMax, out[1] = atomicMin (both start
// at 0), out[2] = atomicAdd(unsigned) count, out[3] = the old values atomicExch saw, summed with
// atomicAdd(unsigned long long) into *exchanged, and out[4] = 1 + the thread whose atomicCAS(0 ->
// t + 1) succeeded.
void integer_atomics(int blocks, int* out, unsigned long long* exchanged);

// An empty kernel launched with any configuration.
void launch_empty(dim3 grid, dim3 block, size_t dynamic_smem_bytes);

// Adds 1 to *counter from every thread.
void count_threads(dim3 grid, dim3 block, int* counter);

}  // namespace forge::FORGE_GPU_NS::sim_test
