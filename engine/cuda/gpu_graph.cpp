// gpu_graph.cpp: GpuBackend's CUDA graph, one at a time: the runtime's capture and replay
// (gpu_runtime.h) with the caching allocator's graph pool (caching_allocator.h) open while it is
// captured, so that the blocks the graph's kernels use stay the graph's until it is destroyed.
#include <stdexcept>

#include "engine/cuda/gpu_impl.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {

void GpuBackend::begin_graph_capture() {
  // Before anything is recorded: the step values' block must exist outside the graph's pool, and
  // the reductions' counters too (made now if no reduction ran yet).
  impl_->step_values.device(*this);
  void* counters = impl_->tickets.get(*this, 1);
  FORGE_GPU_NS::begin_graph_capture();
  impl_->allocator.open_graph_pool();
  // The reductions' counters (reduction_tickets.h) are replaced by a larger array when a later,
  // uncaptured reduction needs more (an evaluation batch), and the old array goes back to the
  // allocator; the graph's kernels keep using it, so it must become the graph's block: given back
  // and taken again while the pool is open (the same block: the graph's free list is taken
  // first, last in first out), freeing it later puts it on the graph's free list.
  impl_->allocator.deallocate(counters, 1);
  if (impl_->allocator.allocate(1) != counters)
    throw std::logic_error("begin_graph_capture: the reduction counters did not stay in place");
}

void GpuBackend::end_graph_capture() {
  impl_->allocator.close_graph_pool();
  FORGE_GPU_NS::end_graph_capture();
}

void GpuBackend::replay_graph() {
  FORGE_GPU_NS::replay_graph();
}

void GpuBackend::destroy_graph() {
  if (graph_capturing()) {  // a capture that failed half way: stop it, keep nothing of it
    impl_->allocator.close_graph_pool();
    FORGE_GPU_NS::end_graph_capture();
  }
  FORGE_GPU_NS::destroy_graph();
  impl_->allocator.release_graph_pool();
}

size_t GpuBackend::graph_block_count() {
  return impl_->allocator.graph_block_count();
}

}  // namespace forge::FORGE_GPU_NS
