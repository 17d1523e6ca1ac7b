// device_all_reduce.h: the sum over ranks of buffers in GPU memory, by the GPU's own collective
// library (NCCL on cuda), for the gradient buckets of data-parallel training (docs/DISTRIBUTED.md).
//
// MPI (communicator.h) carries everything else a rank shares (start-up, weights, metrics, sync
// batch norm's statistics) on host memory; on cpu and sim the gradient buckets too, since those
// devices' memory is the host's. A cuda rank's buckets stay in device memory and are summed by
// NCCL (engine/dist/nccl_all_reduce.cpp, built with FORGE_NCCL): no host staging.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "engine/device.h"
#include "engine/dist/communicator.h"

namespace forge::dist {

class DeviceAllReduce {
 public:
  virtual ~DeviceAllReduce() = default;
  virtual std::string name() const = 0;  // "NCCL 2.28.3"
  // In place, over every rank, data[i] = sum of the ranks' data[i], on `data` in device memory,
  // in stream order after the work issued so far on the backend's compute stream. The pending
  // collective's wait() orders the compute stream's later work after the sum (the host does not
  // wait); `data` must stay untouched by other work until then.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count) = 0;
};

// Whether this build sums cuda ranks' gradients with NCCL (FORGE_NCCL).
bool nccl_built_in();

// For a rank on `device` of several: on cuda, first makes the GPU of the rank's local rank this
// process's current device (cudaSetDevice, before anything else touches the GPU), then joins the
// ranks' NCCL communicator (its unique id broadcast from rank 0 over `comm`). Null for cpu and sim
// (MPI sums their host memory). Throws naming the fix for cuda in a build without NCCL, and when
// the machine shows fewer GPUs than its ranks.
std::unique_ptr<DeviceAllReduce> make_device_all_reduce(Device device, Communicator& comm);

}  // namespace forge::dist
