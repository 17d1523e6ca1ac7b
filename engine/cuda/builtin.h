// builtin.h: makes the GPU backends built into this program (sim, cuda) known to backend().
// Programs call it once at start; Device::cpu needs nothing. Also what the GPU backends offer
// beyond engine/backend.h, for tools and tests.
#pragma once
#include <cstdint>

#include "engine/device.h"

namespace forge {

void register_builtin_backends();

// Kernel launches the GPU backend of `device` (sim or cuda) has issued in this program: every
// kernel, and each cuBLAS call as one. Throws std::invalid_argument for cpu or a device not built.
uint64_t gpu_launch_count(Device device);

// How often the GPU backend of `device` made the host wait (engine/cuda/gpu_runtime.h): host_waits
// counts transfers to the host and synchronize calls, blocking_uploads synchronous transfers to
// the device (on cuda those wait for the stream too). Counted alike on sim, where nothing waits.
struct GpuSyncCount {
  uint64_t host_waits = 0;
  uint64_t blocking_uploads = 0;
};
GpuSyncCount gpu_sync_count(Device device);

// While one lives, the GPU backend of `device` refuses what CUDA stream capture forbids (a device
// allocation or free, a transfer to the host, a blocking upload, a synchronize) with a
// std::logic_error naming the call and "during capture" (engine/cuda/gpu_runtime.h
// begin_capture_check): how a step is checked for being capturable as a CUDA graph, on sim too.
class GpuCaptureCheck {
 public:
  explicit GpuCaptureCheck(Device device);
  ~GpuCaptureCheck();
  GpuCaptureCheck(const GpuCaptureCheck&) = delete;
  GpuCaptureCheck& operator=(const GpuCaptureCheck&) = delete;

 private:
  Device device_;
};

// A CUDA graph on the GPU backend of `device` (sim or cuda; one at a time): what is issued between
// begin_capture and end_capture does not run then but is recorded, kernels with their arguments
// as they were at capture; replay() runs the record, all of it, as one launch. On cuda stream
// capture and cudaGraphLaunch on the compute stream; on sim an emulation that keeps each kernel's
// arguments by value, so a kernel given a per-step value as an argument replays the captured one
// there as it would on a GPU (engine/backend.h set_step_values is how a step avoids that).
// While capturing, the capture check's rules hold (GpuCaptureCheck). Every device block allocated
// or freed during the capture is the graph's until it is destroyed (its memory pool,
// engine/cuda/caching_allocator.h): the same addresses at every replay, nobody else's meanwhile.
// Uploads during the capture are replayed with the bytes they had then. The destructor waits for
// the last replay and destroys the graph (also after a capture that failed half way).
class GpuGraph {
 public:
  explicit GpuGraph(Device device);
  ~GpuGraph();
  GpuGraph(const GpuGraph&) = delete;
  GpuGraph& operator=(const GpuGraph&) = delete;

  void begin_capture();
  void end_capture();
  void replay();
  bool captured() const { return captured_; }
  size_t pool_blocks() const;  // device blocks the graph's pool holds

 private:
  Device device_;
  bool capturing_ = false, captured_ = false;
};

// The GPU backend's compute stream, where all its work is issued (a cudaStream_t on cuda; null
// on sim): events that time its work must be recorded there (tools/bench/timing.cpp).
void* gpu_compute_stream(Device device);

// Test hook: the next allocation the GPU backend of `device` makes on the device (one the caching
// allocator cannot serve from its cache) fails as an out-of-memory does.
void fail_next_gpu_allocation(Device device);

}  // namespace forge
