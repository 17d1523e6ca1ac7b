// gpu_memory.cpp: GpuBackend's construction, memory and synchronisation: allocations go through
// the caching allocator (caching_allocator.h), copies and syncs through gpu_runtime.h.
#include <bit>
#include <stdexcept>

#include "engine/cuda/gpu_impl.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {

// ---- CachingAllocator -----------------------------------------------------------------------

size_t CachingAllocator::bin_bytes(size_t bytes) {
  constexpr size_t kMinBin = 512;
  if (bytes <= kMinBin) return kMinBin;
  // step = a quarter of the largest power of two <= bytes; round up to a multiple of it.
  const size_t step = std::bit_floor(bytes) / 4;
  return (bytes + step - 1) / step * step;
}

namespace {
// The last block of `bins`' bin `bin`, taken out; null when it has none.
void* take(std::unordered_map<size_t, std::vector<void*>>& bins, size_t bin) {
  auto it = bins.find(bin);
  if (it == bins.end() || it->second.empty()) return nullptr;
  void* p = it->second.back();
  it->second.pop_back();
  return p;
}
}  // namespace

void* CachingAllocator::allocate(size_t bytes) {
  const size_t bin = bin_bytes(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (graph_pool_open_) {
      if (void* p = take(graph_free_blocks_, bin)) return p;
      if (void* p = take(free_blocks_, bin)) {
        graph_blocks_.insert(p);
        return p;
      }
    } else if (void* p = take(free_blocks_, bin)) {
      return p;
    }
  }
  try {
    return device_malloc(bin);
  } catch (const std::runtime_error&) {
    // Out of memory, perhaps only because of what the cache holds: give it back, try once more.
    // (A capture check's std::logic_error is no out-of-memory: it goes to the caller as it is.)
    // The failed cudaMalloc left its error as CUDA's last error; clear it (as PyTorch's caching
    // allocator does), or the next FORGE_CHECK_LAUNCH reports "out of memory" for a kernel that
    // ran fine.
    clear_last_error();
    release_cached();
    return device_malloc(bin);
  }
}

void CachingAllocator::deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (graph_pool_open_) graph_blocks_.insert(ptr);  // the graph may reuse it from now on
  if (graph_blocks_.count(ptr))
    graph_free_blocks_[bin_bytes(bytes)].push_back(ptr);
  else
    free_blocks_[bin_bytes(bytes)].push_back(ptr);
}

void CachingAllocator::open_graph_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  graph_pool_open_ = true;
}

void CachingAllocator::close_graph_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  graph_pool_open_ = false;
}

void CachingAllocator::release_graph_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  graph_pool_open_ = false;
  for (auto& [bin, blocks] : graph_free_blocks_)
    free_blocks_[bin].insert(free_blocks_[bin].end(), blocks.begin(), blocks.end());
  graph_free_blocks_.clear();
  graph_blocks_.clear();
}

size_t CachingAllocator::graph_block_count() {
  std::lock_guard<std::mutex> lock(mutex_);
  return graph_blocks_.size();
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [bin, blocks] : free_blocks_)
    for (void* p : blocks) device_free(p);
  free_blocks_.clear();
}

CachingAllocator::~CachingAllocator() {
  try {
    release_cached();
  } catch (...) {
    // At process exit the CUDA context may already be gone; the memory goes with it.
  }
}

// ---- GpuBackend: memory --------------------------------------------------------------------

GpuBackend::GpuBackend() : impl_(new Impl) {}
GpuBackend::~GpuBackend() {
  delete impl_;
}

Device GpuBackend::device() const {
#if FORGE_SIM_BUILD
  return Device::sim;
#else
  return Device::cuda;
#endif
}

void* GpuBackend::allocate(size_t bytes) {
  return impl_->allocator.allocate(bytes);
}
void GpuBackend::deallocate(void* ptr, size_t bytes) {
  impl_->allocator.deallocate(ptr, bytes);
}
void GpuBackend::copy_from_host(void* dst, const void* src, size_t bytes) {
  copy_h2d_async(dst, src, bytes);
}
void GpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
  copy_d2h(dst, src, bytes);
}
void GpuBackend::copy(void* dst, const void* src, size_t bytes) {
  copy_d2d(dst, src, bytes);
}
void GpuBackend::synchronize() {
  device_synchronize();
}

}  // namespace forge::FORGE_GPU_NS
