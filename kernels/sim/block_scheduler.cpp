// block_scheduler.cpp: fibers, barriers, warp collectives and the diagnosis of stuck blocks
// (see block_scheduler.h for the scheduling rule).
#include "kernels/sim/block_scheduler.h"

#include <algorithm>
#include <bit>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cstdio>
#include <stdexcept>

#include "kernels/sim/tsan.h"

namespace forge::sim {

namespace ctx = boost::context;

thread_local constinit uint3 thread_idx{};
thread_local constinit uint3 block_idx{};
thread_local constinit dim3 block_dim{};
thread_local constinit dim3 grid_dim{};
thread_local constinit uint64_t block_serial = 0;

namespace {

thread_local BlockScheduler* current_scheduler = nullptr;

constexpr unsigned kWarpSize = 32;
// TSan's runtime (and its report printer) runs on the fiber's stack too: give it more room.
constexpr size_t kFiberStackBytes = (tsan::enabled ? 512 : 64) * 1024;

// Thrown into a lane's fiber to unwind its kernel body when the block is abandoned (another thread
// threw, or the block is stuck). Never leaves the fiber.
struct BlockAborted {};

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::syncwarp:
      return "__syncwarp";
    case Collective::shfl_idx:
      return "__shfl_sync";
    case Collective::shfl_up:
      return "__shfl_up_sync";
    case Collective::shfl_down:
      return "__shfl_down_sync";
    case Collective::shfl_xor:
      return "__shfl_xor_sync";
    case Collective::ballot:
      return "__ballot_sync";
    case Collective::any:
      return "__any_sync";
    case Collective::all:
      return "__all_sync";
  }
  return "?";
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

std::string coords(uint3 v) {
  char text[48];
  std::snprintf(text, sizeof text, "(%u,%u,%u)", v.x, v.y, v.z);
  return text;
}

// The lane a shuffle reads, or `lane` itself where CUDA returns the caller's own value (source
// outside the caller's segment of `width` lanes).
unsigned shuffle_source(Collective kind, unsigned lane, int arg, unsigned width) {
  const unsigned segment = lane / width * width;
  switch (kind) {
    case Collective::shfl_idx:
      return segment + unsigned(arg) % width;
    case Collective::shfl_up:
      return lane - segment >= unsigned(arg) ? lane - unsigned(arg) : lane;
    case Collective::shfl_down:
      return lane - segment + unsigned(arg) < width ? lane + unsigned(arg) : lane;
    case Collective::shfl_xor: {
      // Lanes may read earlier segments but not later ones (CUDA's rule for width < 32).
      const unsigned source = lane ^ unsigned(arg);
      return source < segment + width ? source : lane;
    }
    default:
      return lane;
  }
}

}  // namespace

BlockScheduler::BlockScheduler() : scheduler_tsan_fiber_(tsan::current_fiber()) {
  // The scheduler itself only does bookkeeping: hidden from race detection for good.
  tsan::ignore_begin();
}

BlockScheduler* BlockScheduler::current() {
  return current_scheduler;
}

void BlockScheduler::add_lane() {
  auto lane = std::make_unique<Lane>();
  Lane* raw = lane.get();
  raw->tsan_fiber = tsan::create_fiber();
  // Boost jumps onto the new stack once while constructing the fiber; TSan must see that as the
  // new fiber running, not as the scheduler.
  tsan::switch_to(raw->tsan_fiber);
  raw->fiber = ctx::fiber(
      std::allocator_arg, ctx::protected_fixedsize_stack(kFiberStackBytes),
      [this, raw](ctx::fiber&& scheduler) { return lane_main(*raw, std::move(scheduler)); });
  tsan::switch_to(scheduler_tsan_fiber_);
  lanes_.push_back(std::move(lane));
}

// The loop every fiber runs for its whole life: run the kernel body as the thread the scheduler
// assigned, then hand control back and wait for the next block. It never returns: the workers,
// and so their fibers, live as long as the program (see launch.cpp).
ctx::fiber BlockScheduler::lane_main(Lane& lane, ctx::fiber&& scheduler) {
  tsan::ignore_begin();  // outside the kernel body a fiber only does bookkeeping
  lane.scheduler = std::move(scheduler);
  for (;;) {
    tsan::acquire(&block_start_sync_);
    lane.in_body = true;
    tsan::ignore_end();  // the kernel body is what TSan is for
    try {
      (*kernel_->thread_body)();
    } catch (const BlockAborted&) {
    } catch (...) {
      tsan::Hidden hidden;
      if (!thread_error_) thread_error_ = std::current_exception();
    }
    tsan::ignore_begin();
    lane.in_body = false;
    lane.state = State::exited;
    tsan::release(&block_end_sync_);
    tsan::switch_to(scheduler_tsan_fiber_);
    lane.scheduler = std::move(lane.scheduler).resume();
  }
}

void BlockScheduler::resume(Lane& lane) {
  running_ = &lane;
  thread_idx = lane.index;
  tsan::switch_to(lane.tsan_fiber);
  lane.fiber = std::move(lane.fiber).resume();
  running_ = nullptr;
}

// From a lane whose state says what it waits for: back to the scheduler until released.
void BlockScheduler::wait(Lane& lane) {
  tsan::switch_to(scheduler_tsan_fiber_);
  lane.scheduler = std::move(lane.scheduler).resume();
  if (aborting_) throw BlockAborted{};
  if (lane.departure_sync) {
    tsan::acquire(lane.departure_sync.get());
    lane.departure_sync.reset();
  }
}

void BlockScheduler::run(const Kernel& kernel, uint3 block) {
  kernel_ = &kernel;
  threads_ = kernel.block.x * kernel.block.y * kernel.block.z;
  aborting_ = false;
  thread_error_ = nullptr;
  block_idx = block;
  ++block_serial;
  block_dim = kernel.block;
  grid_dim = kernel.grid;
  dynamic_smem_.resize(kernel.dynamic_smem_bytes);
  std::fill(dynamic_smem_.begin(), dynamic_smem_.end(), std::byte{0xFF});  // floats read as NaN
  while (lanes_.size() < threads_) add_lane();
  for (unsigned i = 0; i < threads_; ++i) {
    Lane& l = lane(i);
    l.linear = i;
    l.index = {i % kernel.block.x, i / kernel.block.x % kernel.block.y,
               i / (kernel.block.x * kernel.block.y)};
    l.state = State::ready;
  }
  current_scheduler = this;
  tsan::release(&block_start_sync_);

  const unsigned warps = (threads_ + kWarpSize - 1) / kWarpSize;
  const bool reverse = order() == Order::reverse;
  for (;;) {
    for (unsigned w = 0; w < warps; ++w) run_warp(reverse ? warps - 1 - w : w);
    const auto first = lanes_.begin(), last = first + threads_;
    const auto count = [&](State s) {
      return std::count_if(first, last, [s](const auto& l) { return l->state == s; });
    };
    if (count(State::exited) == threads_) break;
    if (count(State::at_syncthreads) == threads_) {
      release_syncthreads();
      continue;
    }
    diagnose_stall();
  }
  tsan::acquire(&block_end_sync_);
  current_scheduler = nullptr;
}

void BlockScheduler::run_warp(unsigned warp) {
  const unsigned begin = warp * kWarpSize, end = std::min(begin + kWarpSize, threads_);
  const bool reverse = order() == Order::reverse;
  do {
    for (unsigned i = 0; i < end - begin; ++i) {
      Lane& l = lane(reverse ? end - 1 - i : begin + i);
      if (l.state != State::ready) continue;
      resume(l);
      if (thread_error_) {
        abort_block();
        std::rethrow_exception(thread_error_);
      }
    }
  } while (complete_collectives(warp));
}

// Completes every warp collective of `warp` whose mask's lanes all wait at it (same collective,
// same mask). Returns whether any lane was released.
bool BlockScheduler::complete_collectives(unsigned warp) {
  const unsigned begin = warp * kWarpSize, end = std::min(begin + kWarpSize, threads_);
  bool released = false;
  for (unsigned i = begin; i < end; ++i) {
    const Lane& first = lane(i);
    if (first.state != State::at_warp) continue;
    bool complete = true;
    for (unsigned bits = first.mask; bits != 0 && complete; bits &= bits - 1) {
      const Lane& other = lane(begin + unsigned(std::countr_zero(bits)));
      complete =
          other.state == State::at_warp && other.kind == first.kind && other.mask == first.mask;
    }
    if (!complete) continue;
    deliver(warp, first);
    released = true;
  }
  return released;
}

// Computes every participant's result first, then releases them all: a lane must read the value
// its source posted, not what the source did after it.
void BlockScheduler::deliver(unsigned warp, const Lane& first) {
  const unsigned begin = warp * kWarpSize, mask = first.mask;
  uint64_t votes = 0;
  for (unsigned bits = mask; bits != 0; bits &= bits - 1) {
    const unsigned i = unsigned(std::countr_zero(bits));
    if (lane(begin + i).value != 0) votes |= 1ull << i;
  }
  for (unsigned bits = mask; bits != 0; bits &= bits - 1) {
    const unsigned i = unsigned(std::countr_zero(bits));
    Lane& l = lane(begin + i);
    switch (first.kind) {
      case Collective::syncwarp:
        l.result = 0;
        break;
      case Collective::ballot:
        l.result = votes;
        break;
      case Collective::any:
        l.result = votes != 0;
        break;
      case Collective::all:
        l.result = votes == mask;
        break;
      default: {
        const unsigned source = shuffle_source(l.kind, i, l.arg, l.width);
        if ((mask >> source & 1u) == 0)
          fail(describe(l) + " reads lane " + std::to_string(source) + " with " +
               collective_name(l.kind) + ", which is not in its mask " + hex(mask));
        l.result = lane(begin + source).value;
      }
    }
  }
  for (unsigned bits = mask; bits != 0; bits &= bits - 1)
    lane(begin + unsigned(std::countr_zero(bits))).state = State::ready;
}

void BlockScheduler::release_syncthreads() {
  for (unsigned i = 0; i < threads_; ++i) lane(i).state = State::ready;
  syncthreads_sync_.reset();  // the next generation gets a fresh TSan sync object
}

void BlockScheduler::sync_threads() {
  Lane& l = *running_;
  tsan::Hidden hidden;
  l.state = State::at_syncthreads;
  if constexpr (tsan::enabled) {
    if (!syncthreads_sync_) syncthreads_sync_ = std::make_shared<std::byte>();
    l.departure_sync = syncthreads_sync_;
    tsan::release(l.departure_sync.get());
  }
  wait(l);
}

uint64_t BlockScheduler::warp_collective(Collective kind, unsigned mask, uint64_t value, int arg,
                                         int width) {
  Lane& l = *running_;
  tsan::Hidden hidden;
  const unsigned lane_in_warp = l.linear % kWarpSize;
  const unsigned lanes_in_warp = std::min(kWarpSize, threads_ - l.linear / kWarpSize * kWarpSize);
  if ((mask >> lane_in_warp & 1u) == 0)
    throw std::runtime_error(where() + describe(l) + " calls " + collective_name(kind) +
                             " with mask " + hex(mask) + ", which does not name itself");
  if (lanes_in_warp < kWarpSize && (mask >> lanes_in_warp) != 0)
    throw std::runtime_error(where() + describe(l) + " calls " + collective_name(kind) +
                             " with mask " + hex(mask) +
                             ", which names lanes absent from its warp" + " (the block has " +
                             std::to_string(threads_) + " threads)");
  if (width < 1 || width > int(kWarpSize) || !std::has_single_bit(unsigned(width)))
    throw std::runtime_error(where() + describe(l) + " calls " + collective_name(kind) +
                             " with width " + std::to_string(width) +
                             ", which is not a power of two up to 32");
  l.state = State::at_warp;
  l.kind = kind;
  l.mask = mask;
  l.value = value;
  l.arg = arg;
  l.width = unsigned(width);
  // Only __syncwarp orders memory between the lanes; shuffles and votes exchange values only.
  if (tsan::enabled && kind == Collective::syncwarp) {
    const unsigned begin = l.linear - lane_in_warp;
    for (unsigned bits = mask; bits != 0 && !l.departure_sync; bits &= bits - 1) {
      const Lane& other = lane(begin + unsigned(std::countr_zero(bits)));
      if (other.state == State::at_warp && other.kind == kind && other.mask == mask)
        l.departure_sync = other.departure_sync;
    }
    if (!l.departure_sync) l.departure_sync = std::make_shared<std::byte>();
    tsan::release(l.departure_sync.get());
  }
  wait(l);
  return l.result;
}

// No lane can move and the block has not finished: name the first mistake found.
void BlockScheduler::diagnose_stall() {
  const auto first = lanes_.begin(), last = first + threads_;
  const auto find = [&](State s) {
    auto it = std::find_if(first, last, [s](const auto& l) { return l->state == s; });
    return it == last ? nullptr : it->get();
  };
  for (auto it = first; it != last; ++it) {
    const Lane& l = **it;
    if (l.state != State::at_warp) continue;
    const unsigned begin = l.linear / kWarpSize * kWarpSize;
    for (unsigned bits = l.mask; bits != 0; bits &= bits - 1) {
      const Lane& other = lane(begin + unsigned(std::countr_zero(bits)));
      if (other.state == State::exited)
        fail(describe(l) + " waits at " + collective_name(l.kind) + " with mask " + hex(l.mask) +
             ", which names lane " + std::to_string(other.linear % kWarpSize) + " " +
             coords(other.index) + ", which has exited");
    }
  }
  const Lane* at_syncthreads = find(State::at_syncthreads);
  const Lane* at_warp = find(State::at_warp);
  const Lane* exited = find(State::exited);
  if (at_syncthreads && at_warp)
    fail("threads wait at different barriers: " + describe(*at_syncthreads) +
         " at __syncthreads, " + describe(*at_warp) + " at " + collective_name(at_warp->kind) +
         " (mask " + hex(at_warp->mask) + ")");
  if (at_syncthreads && exited) {
    const auto missing =
        std::count_if(first, last, [](const auto& l) { return l->state == State::exited; });
    fail("__syncthreads is never reached by " + std::to_string(missing) +
         " threads that exited, e.g. " + describe(*exited) + "; " + describe(*at_syncthreads) +
         " waits there (all threads of a block must reach it, or none)");
  }
  // Only warp collectives are left, and some lane of each mask waits at another one.
  for (auto it = first; it != last; ++it) {
    const Lane& l = **it;
    if (l.state != State::at_warp) continue;
    const unsigned begin = l.linear / kWarpSize * kWarpSize;
    for (unsigned bits = l.mask; bits != 0; bits &= bits - 1) {
      const Lane& other = lane(begin + unsigned(std::countr_zero(bits)));
      if (other.kind != l.kind || other.mask != l.mask)
        fail("lanes of one warp wait at different warp collectives: " + describe(l) + " at " +
             collective_name(l.kind) + " (mask " + hex(l.mask) + "), " + describe(other) + " at " +
             collective_name(other.kind) + " (mask " + hex(other.mask) + ")");
    }
  }
  fail("block is stuck for a reason the emulator cannot name");
}

void BlockScheduler::fail(const std::string& message) {
  abort_block();
  throw std::runtime_error(where() + message);
}

// Unwinds every thread suspended inside the kernel body, so that its fiber is back at the top of
// its loop, ready for the next block, and its stack objects are destroyed.
void BlockScheduler::abort_block() {
  aborting_ = true;
  for (unsigned i = 0; i < threads_; ++i) {
    Lane& l = lane(i);
    if (l.in_body) resume(l);
    l.state = State::exited;
    l.departure_sync.reset();
  }
  syncthreads_sync_.reset();
  tsan::acquire(&block_end_sync_);
  current_scheduler = nullptr;
}

std::string BlockScheduler::where() const {
  return "kernel " + std::string(kernel_->name) + ", block " + coords(block_idx) + ": ";
}

std::string BlockScheduler::describe(const Lane& lane) const {
  return "thread " + coords(lane.index) + " (warp " + std::to_string(lane.linear / kWarpSize) +
         " lane " + std::to_string(lane.linear % kWarpSize) + ")";
}

}  // namespace forge::sim
