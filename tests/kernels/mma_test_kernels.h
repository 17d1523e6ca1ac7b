// mma_test_kernels.h: host launchers of the kernels that test the tensor-core wrappers of
// kernels/mma.cuh (test_mma.cpp). The kernels build their fragments with the PTX ISA's layout
// formulas written out independently of the emulator, so a mismatch between the emulator's tables
// and the ISA's shows up as wrong numbers. Pointers are device memory, which on the sim is host
// memory.
#pragma once
#include <cstdint>

#include "kernels/sim/cuda_compat.h"

namespace forge::FORGE_GPU_NS::mma_test {

// Which operand a test kernel deliberately scrambles, to check that the checks can fail: the
// fragments of lanes 0 and 1 (A: same group, neighbouring columns) or of lanes 0 and 4 (B: two
// columns n) are exchanged before the instruction, or the ldmatrix results of lanes 0 and 1 after.
enum class Swap { none, a_lanes_0_1, b_lanes_0_4, result_lanes_0_1 };

// For each of `tiles` problems (one warp each): d[16x8] = a[16x16] b[16x8] + c[16x8], all
// row-major, a and b as bf16 bits, through one mma_m16n8k16_bf16.
void mma_tiles(const uint16_t* a, const uint16_t* b, const float* c, float* d, int tiles,
               Swap swap);

// `matrices` (1, 2 or 4) 8x8 b16 matrices m (row-major, matrix after matrix) staged in shared
// memory at scattered 16-byte-aligned rows, then loaded by one warp with ldmatrix_x{matrices}
// (_trans if `transposed`): out[lane * matrices + j] = register j of lane `lane`.
void ldmatrix_fragments(const uint16_t* m, int matrices, bool transposed, uint32_t* out, Swap swap);

// One block of 32 threads, each copying 16 bytes of `first` (group 0) and of `second` (group 1)
// with cp.async.cg into dynamic shared memory, committing each as its own group. Then:
// after_wait_1 = group 0 read after cp_async_wait_group<1>, before_wait_0 = group 1 read at that
// point (still pending), after_wait_0 = group 1 read after cp_async_wait_group<0>. 128 floats each.
void cp_async_groups(const float* first, const float* second, float* after_wait_1,
                     float* before_wait_0, float* after_wait_0);

// One block of 32 threads; thread t copies from src + 80 t into its 80 bytes of shared memory:
// cp.async.ca of 4 bytes at 0, 8 bytes at 16, 16 bytes at 32, cp.async.cg of 16 bytes at 48, and
// cp.async.cg of 16 bytes at 64 with src-size 5 (bytes 69-79 zero-filled); waits, then writes the
// 80 bytes (bytes no copy wrote still hold 0xFF) to out + 80 t.
void cp_async_sizes(const uint8_t* src, uint8_t* out);

// cp.async.cg of 16 bytes to a shared address 4 bytes past a 16-byte boundary (must throw).
void cp_async_misaligned(const uint8_t* src);

// mma_m16n8k16_bf16 from a block of 16 threads, half a warp (must throw).
void mma_partial_warp(float* out);

}  // namespace forge::FORGE_GPU_NS::mma_test
