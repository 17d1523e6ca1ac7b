// mma.cuh: the warp-level tensor-core instructions the bf16 kernels use, one wrapper each. Under
// nvcc each is its inline PTX; on kernels/sim each is the emulation in kernels/sim/warp_mma.h,
// with the PTX ISA's fragment layouts, so a kernel that puts an element in the wrong lane or
// register computes the wrong numbers on the sim exactly as on a GPU. docs/TENSOR_CORES.md has the
// layouts and the ISA sections they come from. sm_80 or newer.
//
//   mma_m16n8k16_bf16(d, a, b, c)   D[16x8] = A[16x16] B[16x8] + C, bf16 in, fp32 accumulate
//                                   (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32)
//   ldmatrix_x{1,2,4}[_trans](d, p) 1, 2 or 4 8x8 b16 matrices from shared memory into fragments;
//                                   lane 8 j + r passes the address of row r of matrix j
//   cp_async_{ca,cg}<Bytes>(dst, src[, src_bytes])   global -> shared copy of 4, 8 or 16 bytes
//                                   (.cg: 16 only), zero-filling past src_bytes
//   cp_async_commit_group(), cp_async_wait_group<N>()   the copies are visible only after the
//                                   wait that covers their group
// All lanes of the warp must execute mma and ldmatrix together (the .sync.aligned forms).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/sim/cuda_compat.h"

#if !defined(__CUDACC__)
#include "kernels/sim/warp_mma.h"
#endif

namespace forge::tensor_core {

// Two bf16 in one 32-bit register, as fragments hold them: `low` is the lower-numbered element.
__host__ __device__ __forceinline__ uint32_t pack_bf16x2(bf16 low, bf16 high) {
  return uint32_t(bf16_bits(low)) | uint32_t(bf16_bits(high)) << 16;
}

#if defined(__CUDACC__)
// ---------------------------------------------------------------- nvcc: inline PTX
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4],
                                                  const uint32_t (&b)[2], const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%10, %11, %12, %13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
}

__device__ __forceinline__ unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x1(uint32_t (&d)[1], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
               : "=r"(d[0])
               : "r"(shared_address(row))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&d)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(d[0]), "=r"(d[1])
               : "r"(shared_address(row))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&d)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
               : "r"(shared_address(row))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t (&d)[1], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(d[0])
               : "r"(shared_address(row))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&d)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(d[0]), "=r"(d[1])
               : "r"(shared_address(row))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&d)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
               : "r"(shared_address(row))
               : "memory");
}

// .ca caches in L1 as well as L2; .cg in L2 only (and copies 16 bytes only).
template <int Bytes>
__device__ __forceinline__ void cp_async_ca(void* shared_destination, const void* global_source,
                                            int source_bytes = Bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
  asm volatile(
      "cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(shared_address(shared_destination)),
      "l"(global_source), "n"(Bytes), "r"(source_bytes)
      : "memory");
}
template <int Bytes>
__device__ __forceinline__ void cp_async_cg(void* shared_destination, const void* global_source,
                                            int source_bytes = Bytes) {
  static_assert(Bytes == 16, "cp.async.cg copies 16 bytes");
  asm volatile(
      "cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared_destination)),
      "l"(global_source), "r"(source_bytes)
      : "memory");
}
__device__ __forceinline__ void cp_async_commit_group() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#else
// ---------------------------------------------------------------- kernels/sim
inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                              const float (&c)[4]) {
  sim::tensor_core::mma_m16n8k16_bf16(d, a, b, c);
}
inline void ldmatrix_x1(uint32_t (&d)[1], const void* row) {
  sim::tensor_core::ldmatrix<1, false>(d, row);
}
inline void ldmatrix_x2(uint32_t (&d)[2], const void* row) {
  sim::tensor_core::ldmatrix<2, false>(d, row);
}
inline void ldmatrix_x4(uint32_t (&d)[4], const void* row) {
  sim::tensor_core::ldmatrix<4, false>(d, row);
}
inline void ldmatrix_x1_trans(uint32_t (&d)[1], const void* row) {
  sim::tensor_core::ldmatrix<1, true>(d, row);
}
inline void ldmatrix_x2_trans(uint32_t (&d)[2], const void* row) {
  sim::tensor_core::ldmatrix<2, true>(d, row);
}
inline void ldmatrix_x4_trans(uint32_t (&d)[4], const void* row) {
  sim::tensor_core::ldmatrix<4, true>(d, row);
}
template <int Bytes>
inline void cp_async_ca(void* shared_destination, const void* global_source,
                        int source_bytes = Bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
  sim::tensor_core::cp_async(shared_destination, global_source, Bytes, source_bytes);
}
template <int Bytes>
inline void cp_async_cg(void* shared_destination, const void* global_source,
                        int source_bytes = Bytes) {
  static_assert(Bytes == 16, "cp.async.cg copies 16 bytes");
  sim::tensor_core::cp_async(shared_destination, global_source, Bytes, source_bytes);
}
inline void cp_async_commit_group() {
  sim::tensor_core::cp_async_commit_group();
}
template <int N>
inline void cp_async_wait_group() {
  sim::tensor_core::cp_async_wait_group(N);
}
#endif

}  // namespace forge::tensor_core
