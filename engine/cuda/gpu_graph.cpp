// gpu_graph.cpp: GpuBackend's CUDA graph, one at a time: the runtime's capture and replay
// (gpu_runtime.h) with the caching allocator's graph pool (caching_allocator.h) open while it is
// captured, so that the blocks the graph's kernels use stay the graph's until it is destroyed.
#include <stdexcept>

#include "engine/cuda/gpu_impl.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {

void GpuBackend::begin_graph_capture() {
  // Before anything is recorded: the step values' block must exist outside the graph's pool.
  impl_->step_values.device(*this);
  FORGE_GPU_NS::begin_graph_capture();
  impl_->allocator.open_graph_pool();
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
