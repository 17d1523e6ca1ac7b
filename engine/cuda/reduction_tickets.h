// reduction_tickets.h: zeroed counters in device memory for the reductions that one launch
// finishes (kernels/slab_reduce.cuh): each block of a group takes a ticket when its partial sum is
// written, and the block that takes the last one adds the partials and puts the counter back to
// 0. So the counters are zero between launches and no clearing launch (or memset) is needed.
#pragma once
#include <cstddef>
#include <vector>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/gpu_backend.h"

namespace forge::FORGE_GPU_NS {

class ReductionTickets {
 public:
  explicit ReductionTickets(CachingAllocator& allocator) : allocator_(allocator) {}
  ~ReductionTickets() { allocator_.deallocate(counters_, count_ * sizeof(unsigned)); }
  ReductionTickets(const ReductionTickets&) = delete;
  ReductionTickets& operator=(const ReductionTickets&) = delete;

  // At least `count` zeroed counters. Growing allocates a larger zeroed array (a host-to-device
  // copy, not a launch, so launch counts do not depend on it; it must stay ordered before the
  // kernels on the default stream, as copy_from_host is); the old one goes back to the caching
  // allocator, which hands memory out in stream order, so kernels still queued on it are safe.
  // It grows on the first reductions only: do them before capturing a CUDA graph.
  unsigned* get(GpuBackend& backend, size_t count) {
    if (count > count_) {
      size_t grown = count_ ? count_ : 1024;
      while (grown < count) grown *= 2;
      auto* fresh = static_cast<unsigned*>(allocator_.allocate(grown * sizeof(unsigned)));
      const std::vector<unsigned> zeros(grown, 0u);
      backend.copy_from_host(fresh, zeros.data(), grown * sizeof(unsigned));
      allocator_.deallocate(counters_, count_ * sizeof(unsigned));
      counters_ = fresh;
      count_ = grown;
    }
    return counters_;
  }

 private:
  CachingAllocator& allocator_;
  unsigned* counters_ = nullptr;
  size_t count_ = 0;
};

}  // namespace forge::FORGE_GPU_NS
