// multi_tensor.cuh: one launch over a whole list of tensors (the optimizer step and gradient
// clipping over every parameter, as llm.c and PyTorch's multi_tensor_apply do), instead of one
// launch per tensor.
//
// The list goes to the device as a table of entries, each with its tensor's length n and start,
// the offset of its first element in the concatenation of all tensors (start_k = sum_{j<k} n_j).
// A kernel's grid-stride loop walks that flat index e; the entry holding e is the last k with
// start_k <= e (empty tensors share their successor's start and are passed over). A thread finds
// the entry of its first e by binary search, then only moves forward, since its e only grows.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

// The entry holding flat index e; `hint` is the entry of this thread's previous e, -1 at first.
template <class Entry>
__device__ __forceinline__ int entry_of(const Entry* table, int count, int64_t e, int hint) {
  if (hint < 0) {
    int low = 0, high = count - 1;  // the answer lies in [low, high]
    while (low < high) {
      const int mid = (low + high + 1) / 2;
      if (table[mid].start <= e)
        low = mid;
      else
        high = mid - 1;
    }
    return low;
  }
  while (hint + 1 < count && table[hint + 1].start <= e) ++hint;
  return hint;
}

// A host table copied to device scratch for the life of one launcher call. Fills in each entry's
// start and returns the total length through total().
template <class Entry>
class DeviceTable {
 public:
  DeviceTable(GpuBackend& backend, std::vector<Entry>& entries)
      : scratch_(backend, int64_t((entries.size() * sizeof(Entry) + 3) / 4)) {
    for (Entry& entry : entries) {
      entry.start = total_;
      total_ += entry.n;
    }
    backend.copy_from_host(scratch_.data(), entries.data(), entries.size() * sizeof(Entry));
  }
  const Entry* data() const { return reinterpret_cast<const Entry*>(scratch_.data()); }
  int64_t total() const { return total_; }

 private:
  DeviceScratch scratch_;
  int64_t total_ = 0;
};

}  // namespace forge::FORGE_GPU_NS
