// block_scheduler.h: runs one thread block at a time on the calling OS thread. Each CUDA thread is
// a Boost.Context fiber; the fibers are made once (64 KiB stacks with a guard page) and reused for
// every later block and launch, because making them costs far more than running a small block.
//
// Scheduling: run each warp's lanes, one after another, until each blocks at a barrier or exits;
// complete every warp collective whose lanes have all arrived (all results computed before any
// lane resumes) and run that warp again; when no warp can move, either every thread waits at
// __syncthreads (release them all), every thread has exited (done), or the block is stuck, which
// is a bug in the kernel and is reported naming it.
#pragma once
#include <boost/context/fiber.hpp>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/sim/runtime.h"

namespace forge::sim {

// One launch, as every worker sees it.
struct Kernel {
  const char* name;
  dim3 grid;
  dim3 block;
  size_t dynamic_smem_bytes;
  const std::function<void()>* thread_body;
};

class BlockScheduler {
 public:
  // Never destroyed: it belongs to a worker thread that runs until the program exits, and its
  // fibers wait inside their loops (tearing them down at exit would buy nothing).
  BlockScheduler();
  BlockScheduler(const BlockScheduler&) = delete;
  BlockScheduler& operator=(const BlockScheduler&) = delete;

  // Runs block `block` of `kernel` to completion on this OS thread. Throws std::runtime_error for
  // a barrier error, or rethrows what a thread of the block threw.
  void run(const Kernel& kernel, uint3 block);

  // The scheduler of the block running on this OS thread; null outside kernels.
  static BlockScheduler* current();

  // Called from the running CUDA thread (runtime.h).
  void sync_threads();
  uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int arg, int width);
  void* dynamic_smem() { return dynamic_smem_.data(); }

 private:
  enum class State : uint8_t { ready, at_syncthreads, at_warp, exited };
  struct Lane {
    boost::context::fiber fiber;      // this CUDA thread; suspended whenever the scheduler runs
    boost::context::fiber scheduler;  // where the fiber returns to when it blocks
    void* tsan_fiber = nullptr;
    unsigned linear = 0;  // index in the block: x + y * blockDim.x + z * blockDim.x * blockDim.y
    uint3 index{};
    State state = State::exited;
    bool in_body = false;  // suspended inside the kernel body (must be unwound on abort)
    // The warp collective it waits at, and its result.
    Collective kind = Collective::syncwarp;
    unsigned mask = 0;
    int arg = 0;
    unsigned width = 32;  // warpSize
    uint64_t value = 0;
    uint64_t result = 0;
    std::shared_ptr<std::byte> departure_sync;  // TSan: the barrier generation it waits at
  };

  Lane& lane(unsigned linear) { return *lanes_[linear]; }
  void add_lane();
  boost::context::fiber lane_main(Lane& lane, boost::context::fiber&& scheduler);
  void resume(Lane& lane);
  void wait(Lane& lane);
  void run_warp(unsigned warp);
  bool complete_collectives(unsigned warp);
  void deliver(unsigned warp, const Lane& first);
  void release_syncthreads();
  [[noreturn]] void diagnose_stall();
  [[noreturn]] void fail(const std::string& message);
  void abort_block();
  std::string where() const;
  std::string describe(const Lane& lane) const;

  std::vector<std::unique_ptr<Lane>> lanes_;  // grows to the largest block seen; never shrinks
  std::vector<std::byte> dynamic_smem_;
  const Kernel* kernel_ = nullptr;
  unsigned threads_ = 0;             // threads in the running block
  Lane* running_ = nullptr;          // the lane whose fiber is executing, if any
  bool aborting_ = false;            // resumed lanes unwind instead of continuing
  std::exception_ptr thread_error_;  // the first exception a kernel body threw in this block
  void* scheduler_tsan_fiber_ = nullptr;
  std::shared_ptr<std::byte> syncthreads_sync_;      // TSan: this __syncthreads generation's object
  std::byte block_start_sync_{}, block_end_sync_{};  // TSan: order consecutive blocks
};

}  // namespace forge::sim
