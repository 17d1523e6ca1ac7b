// warp_mma.h: the tensor-core instructions of kernels/mma.cuh on kernels/sim. mma.sync and
// ldmatrix are warp collectives with the PTX ISA's fragment layouts; cp.async is a per-thread copy
// that becomes visible only at the cp.async.wait_group that covers it. Kernels never include this
// file: they call kernels/mma.cuh, which maps onto it on the sim build. docs/TENSOR_CORES.md
// states the layouts with the ISA sections they come from.
//
// Collectives. Every lane posts its operands to its warp's slot in a per-block exchange area,
// then waits at a full-mask __syncwarp, the emulator's warp barrier (block_scheduler.cpp): it
// releases only once all 32 lanes have arrived, and reports a lane that exited or is absent (a
// partial warp), as for any shuffle. After it the operands of all 32 lanes are there to combine
// by the ISA's tables; a second __syncwarp keeps a fast lane from posting its next operands
// before the slow ones have read theirs.
//
// cp.async. Each thread's copies wait in its own list: cp.async.commit_group closes the open ones
// into a group, cp.async.wait_group N performs all but the newest N groups. A kernel that reads
// the destination before waiting reads what was there before (0xFF bytes in dynamic shared
// memory), as it may on a GPU, so its test fails. Copies a block never waited for die with it,
// like the shared memory they would have written.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/sim/runtime.h"
#include "kernels/sim/tsan.h"

namespace forge::sim::tensor_core {

constexpr int kWarpLanes = 32;

// ---- the PTX ISA's fragment layouts for mma.m16n8k16 with .bf16 / .f16 inputs (section "Matrix
// Fragments for mma.m16n8k16 with floating point type"). groupID = lane >> 2,
// threadID_in_group = lane % 4. Element e of a lane's fragment is bits 16 * (e % 2) of register
// e / 2 (the lower half holds the lower-numbered element).
struct Position {
  int row, col;
};
// A (16 x 16, row-major): elements a0..a7 in registers a[0..3].
//   row = groupID for a0, a1, a4, a5, groupID + 8 otherwise;
//   col = threadID_in_group * 2 + (e & 1), + 8 for e >= 4.
constexpr Position a_position(int lane, int e) {
  return {(lane >> 2) + ((e >> 1) & 1) * 8, (lane % 4) * 2 + (e & 1) + (e >= 4 ? 8 : 0)};
}
// B (16 x 8, "col": each register holds two consecutive k of one column n): elements b0..b3 in
// registers b[0..1].  row (k) = threadID_in_group * 2 + (e & 1), + 8 for e >= 2;  col (n) =
// groupID.
constexpr Position b_position(int lane, int e) {
  return {(lane % 4) * 2 + (e & 1) + (e >= 2 ? 8 : 0), lane >> 2};
}
// C and D (16 x 8, fp32): c0..c3.  row = groupID for c0, c1, groupID + 8 for c2, c3;
// col = threadID_in_group * 2 + (e & 1).
constexpr Position c_position(int lane, int e) {
  return {(lane >> 2) + (e >= 2 ? 8 : 0), (lane % 4) * 2 + (e & 1)};
}

// ---- the per-block exchange area, one slot per warp (static thread_local: per block, as
// __shared__ is on the sim)
struct WarpExchange {
  uint32_t a[kWarpLanes][4];
  uint32_t b[kWarpLanes][2];
  float c[kWarpLanes][4];
  float d[kWarpLanes][4];
  const void* row_address[kWarpLanes];
  bool computed;  // d holds this mma's result (the first lane past the barrier computes it)
};
inline thread_local WarpExchange warp_exchange[1024 / kWarpLanes];

inline unsigned linear_thread() {
  return thread_idx.x + block_dim.x * (thread_idx.y + block_dim.y * thread_idx.z);
}

// Throws unless the calling thread's warp has all 32 lanes: the instructions below are defined
// for full warps only.
inline void require_full_warp(const char* instruction) {
  const unsigned threads = block_dim.x * block_dim.y * block_dim.z;
  const unsigned warp_begin = linear_thread() / kWarpLanes * kWarpLanes;
  if (warp_begin + kWarpLanes > threads)
    throw std::runtime_error(std::string(instruction) + ": warp " +
                             std::to_string(warp_begin / kWarpLanes) + " of a block of " +
                             std::to_string(threads) +
                             " threads is partial; the instruction needs all 32 lanes");
}

inline float bf16_bits_to_float(uint32_t bits16) {
  const uint32_t u = bits16 << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// D = A B + C for one warp. The products of bf16 values are exact in fp32 (8 x 8 significant bits
// fit in 24); they are added to c in k order with fp32 rounding. (A GPU's tensor core adds them in
// an order and with an internal precision NVIDIA does not specify: results agree to fp32
// rounding of sums, not bit for bit.)
inline void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                              const float (&c)[4]) {
  require_full_warp("mma.sync.m16n8k16");
  const unsigned lane = linear_thread() % kWarpLanes;
  WarpExchange& warp = warp_exchange[linear_thread() / kWarpLanes];
  {
    tsan::Hidden hidden;  // the exchange area is the emulator's, not the kernel's memory
    std::memcpy(warp.a[lane], a, sizeof a);
    std::memcpy(warp.b[lane], b, sizeof b);
    std::memcpy(warp.c[lane], c, sizeof c);
    warp.computed = false;
  }
  ::forge::sim::warp_collective(Collective::syncwarp, 0xffffffffu, 0, 0, kWarpLanes);
  {
    tsan::Hidden hidden;
    if (!warp.computed) {
      float tile_a[16][16], tile_b[16][8], tile_c[16][8];
      for (int l = 0; l < kWarpLanes; ++l) {
        for (int e = 0; e < 8; ++e) {
          const Position p = a_position(l, e);
          tile_a[p.row][p.col] = bf16_bits_to_float(warp.a[l][e / 2] >> (16 * (e % 2)) & 0xffffu);
        }
        for (int e = 0; e < 4; ++e) {
          const Position p = b_position(l, e);
          tile_b[p.row][p.col] = bf16_bits_to_float(warp.b[l][e / 2] >> (16 * (e % 2)) & 0xffffu);
          const Position q = c_position(l, e);
          tile_c[q.row][q.col] = warp.c[l][e];
        }
      }
      for (int l = 0; l < kWarpLanes; ++l)
        for (int e = 0; e < 4; ++e) {
          const Position p = c_position(l, e);
          float sum = tile_c[p.row][p.col];
          for (int k = 0; k < 16; ++k) sum += tile_a[p.row][k] * tile_b[k][p.col];
          warp.d[l][e] = sum;
        }
      warp.computed = true;
    }
    std::memcpy(d, warp.d[lane], sizeof d);
  }
  ::forge::sim::warp_collective(Collective::syncwarp, 0xffffffffu, 0, 0, kWarpLanes);
}

// ldmatrix.sync.aligned.m8n8.x{Matrices}{.trans}.shared.b16 (PTX ISA, "Warp-level matrix load
// instruction: ldmatrix"). Lane 8 j + r supplies the address of row r of matrix j (16 bytes,
// 16-byte aligned; lanes past 8 * Matrices supply nothing). Register j of lane i receives two
// consecutive 16-bit elements of matrix j: row i / 4, columns 2 (i % 4) and 2 (i % 4) + 1; with
// .trans, of the transposed matrix: column i / 4 of rows 2 (i % 4) and 2 (i % 4) + 1.
template <int Matrices, bool Transposed>
inline void ldmatrix(uint32_t (&d)[Matrices], const void* row_address) {
  static_assert(Matrices == 1 || Matrices == 2 || Matrices == 4, "ldmatrix loads .x1, .x2 or .x4");
  require_full_warp("ldmatrix");
  const unsigned lane = linear_thread() % kWarpLanes;
  WarpExchange& warp = warp_exchange[linear_thread() / kWarpLanes];
  if (lane < 8u * Matrices && reinterpret_cast<uintptr_t>(row_address) % 16 != 0)
    throw std::runtime_error("ldmatrix: lane " + std::to_string(lane) +
                             " supplies a row address that is not 16-byte aligned");
  {
    tsan::Hidden hidden;
    warp.row_address[lane] = row_address;
  }
  ::forge::sim::warp_collective(Collective::syncwarp, 0xffffffffu, 0, 0, kWarpLanes);
  const uint16_t* rows[8 * Matrices];
  {
    tsan::Hidden hidden;
    for (int r = 0; r < 8 * Matrices; ++r)
      rows[r] = static_cast<const uint16_t*>(warp.row_address[r]);
  }
  const int group = int(lane) / 4, pair = int(lane) % 4 * 2;
  for (int j = 0; j < Matrices; ++j) {
    const uint16_t* const* matrix = rows + 8 * j;
    const uint32_t lo = Transposed ? matrix[pair][group] : matrix[group][pair];
    const uint32_t hi = Transposed ? matrix[pair + 1][group] : matrix[group][pair + 1];
    d[j] = lo | hi << 16;
  }
  ::forge::sim::warp_collective(Collective::syncwarp, 0xffffffffu, 0, 0, kWarpLanes);
}

// ---- cp.async
struct AsyncCopy {
  void* destination;
  const void* source;
  int bytes;         // cp-size: 4, 8 or 16
  int source_bytes;  // src-size: the rest of the destination is zero-filled
};
struct ThreadCopies {
  uint64_t block = 0;  // block_serial when recorded
  std::vector<AsyncCopy> open;
  std::vector<std::vector<AsyncCopy>> groups;  // committed, oldest first
};
inline thread_local std::vector<ThreadCopies> thread_copies;

inline ThreadCopies& copies_of_this_thread() {
  const unsigned t = linear_thread();
  if (thread_copies.size() <= t) thread_copies.resize(t + 1);
  ThreadCopies& mine = thread_copies[t];
  if (mine.block != block_serial) {
    mine.open.clear();
    mine.groups.clear();
    mine.block = block_serial;
  }
  return mine;
}

inline void cp_async(void* shared_destination, const void* global_source, int bytes,
                     int source_bytes) {
  const auto misaligned = [bytes](const void* p) {
    return reinterpret_cast<uintptr_t>(p) % unsigned(bytes) != 0;
  };
  if (misaligned(shared_destination) || misaligned(global_source))
    throw std::runtime_error("cp.async of " + std::to_string(bytes) +
                             " bytes: source and destination must be aligned to " +
                             std::to_string(bytes) + " bytes");
  if (source_bytes < 0 || source_bytes > bytes)
    throw std::runtime_error("cp.async: src-size " + std::to_string(source_bytes) +
                             " outside [0, " + std::to_string(bytes) + "]");
  tsan::Hidden hidden;
  copies_of_this_thread().open.push_back({shared_destination, global_source, bytes, source_bytes});
}

inline void cp_async_commit_group() {
  tsan::Hidden hidden;
  ThreadCopies& mine = copies_of_this_thread();
  mine.groups.push_back(std::move(mine.open));
  mine.open.clear();
}

inline void cp_async_wait_group(int newest_pending) {
  std::vector<AsyncCopy> due;
  {
    tsan::Hidden hidden;
    ThreadCopies& mine = copies_of_this_thread();
    while (int(mine.groups.size()) > newest_pending) {
      due.insert(due.end(), mine.groups.front().begin(), mine.groups.front().end());
      mine.groups.erase(mine.groups.begin());
    }
  }
  // The copies themselves are the kernel's memory accesses, by this thread.
  for (const AsyncCopy& copy : due) {
    std::memcpy(copy.destination, copy.source, size_t(copy.source_bytes));
    std::memset(static_cast<char*>(copy.destination) + copy.source_bytes, 0,
                size_t(copy.bytes - copy.source_bytes));
  }
}

}  // namespace forge::sim::tensor_core
