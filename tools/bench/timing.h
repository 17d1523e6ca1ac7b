// timing.h: wall-clock timing of work queued on a device, and the summary of repeated timings.
//
// cpu and sim: std::chrono::steady_clock around the work, after waiting for the device (sim
// launches are synchronous; the wait keeps the rule the same for every backend).
// cuda: CUDA events recorded on the default stream, where the backend queues all its work
// (docs/GPU_BACKEND.md), so the figure is GPU time between the two events; compiled in only
// when the build has the CUDA backend (FORGE_CUDA, which defines FORGE_BENCH_CUDA_EVENTS).
#pragma once
#include <vector>

#include "engine/device.h"

namespace forge::bench {

class DeviceTimer {
 public:
  explicit DeviceTimer(Device device);
  ~DeviceTimer();
  DeviceTimer(const DeviceTimer&) = delete;
  DeviceTimer& operator=(const DeviceTimer&) = delete;

  void start();
  // Milliseconds since start(), once the device has finished the work queued in between.
  double stop_ms();

 private:
  Device device_;
  double start_seconds_ = 0;
  void* start_event_ = nullptr;  // cudaEvent_t on cuda
  void* stop_event_ = nullptr;
};

// Median and range of repeated timings (milliseconds).
struct Spread {
  double median = 0, min = 0, max = 0;
};
// Throws std::invalid_argument on an empty list.
Spread summarize(std::vector<double> ms);

}  // namespace forge::bench
