// caching_allocator.h: device memory for the GPU backend without a cudaMalloc per tensor.
//
// cudaMalloc and cudaFree are slow (they synchronise the device and can take milliseconds), and a
// training step frees and re-allocates the same tensor sizes every iteration. So freed blocks are
// kept in bins keyed by their rounded size and handed to the next request of that bin.
//
// Rounding: a request of b bytes gets a block of bin_bytes(b): at least 512 bytes, and above that
// the next size of the form 2^k * {1, 1.25, 1.5, 1.75}. Four bins per doubling bound the waste to
// 25% of a block while letting nearby sizes (the last, smaller batch of an epoch) share blocks.
//
// Safe to reuse at once: all work runs in issue order on one stream (gpu_runtime.cpp), so a block's
// last kernel finishes before any kernel of its next owner starts. When a device allocation
// fails, the cached blocks are released and the allocation tried once more.
//
// The graph pool (CUDA graphs, gpu_runtime.h): a captured graph's kernels read and write the
// addresses they had at capture, on every replay. So every block handed out or given back while a
// graph is captured becomes the graph's: it goes back to the graph's own free list when freed,
// never to the cache, and no later allocation outside the graph gets it, until release_graph_pool
// (the graph is destroyed) returns the graph's free blocks to the cache and makes the blocks
// still in use ordinary ones. Within the capture the graph reuses its own blocks, which is safe
// because its nodes run in capture order.
#pragma once
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

class CachingAllocator {
 public:
  CachingAllocator() = default;
  ~CachingAllocator();  // releases every cached block
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  static size_t bin_bytes(size_t bytes);
  void* allocate(size_t bytes);
  // `bytes` is what was asked of allocate(); the block goes back to that bin.
  void deallocate(void* ptr, size_t bytes);
  // Frees every cached (not in use) block back to the device; the graph pool's stay.
  void release_cached();

  // The graph pool: open while a graph is captured (see the file comment).
  void open_graph_pool();
  void close_graph_pool();
  void release_graph_pool();
  size_t graph_block_count();  // blocks the graph holds, in use or not

 private:
  using Bins = std::unordered_map<size_t, std::vector<void*>>;  // bin size -> blocks
  std::mutex mutex_;
  Bins free_blocks_;  // the cache
  bool graph_pool_open_ = false;
  std::unordered_set<void*> graph_blocks_;
  Bins graph_free_blocks_;
};

}  // namespace forge::FORGE_GPU_NS
