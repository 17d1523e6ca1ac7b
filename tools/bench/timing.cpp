// timing.cpp: DeviceTimer (steady_clock, or CUDA events on cuda) and summarize().
#include "tools/bench/timing.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"

#if FORGE_BENCH_CUDA_EVENTS
#include <cuda_runtime.h>
#endif

namespace forge::bench {

static double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#if FORGE_BENCH_CUDA_EVENTS
// Where the backend issues its work (not the legacy default stream, which does not wait for it).
static cudaStream_t compute_stream() {
  return static_cast<cudaStream_t>(gpu_compute_stream(Device::cuda));
}

static void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("bench timer: ") + what + ": " +
                             cudaGetErrorString(status));
}
#endif

DeviceTimer::DeviceTimer(Device device) : device_(device) {
  if (device_ != Device::cuda) return;
#if FORGE_BENCH_CUDA_EVENTS
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  start_event_ = start;
  stop_event_ = stop;
#else
  throw std::runtime_error(
      "bench: this build has no CUDA backend (configure with -DFORGE_CUDA=ON)");
#endif
}

DeviceTimer::~DeviceTimer() {
#if FORGE_BENCH_CUDA_EVENTS
  if (start_event_) cudaEventDestroy(static_cast<cudaEvent_t>(start_event_));
  if (stop_event_) cudaEventDestroy(static_cast<cudaEvent_t>(stop_event_));
#endif
}

void DeviceTimer::start() {
#if FORGE_BENCH_CUDA_EVENTS
  if (device_ == Device::cuda) {
    check_cuda(cudaEventRecord(static_cast<cudaEvent_t>(start_event_), compute_stream()),
               "cudaEventRecord");
    return;
  }
#endif
  backend(device_).synchronize();  // work queued before start() is not ours
  start_seconds_ = now_seconds();
}

double DeviceTimer::stop_ms() {
#if FORGE_BENCH_CUDA_EVENTS
  if (device_ == Device::cuda) {
    auto stop = static_cast<cudaEvent_t>(stop_event_);
    check_cuda(cudaEventRecord(stop, compute_stream()), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_event_), stop),
               "cudaEventElapsedTime");
    return ms;
  }
#endif
  backend(device_).synchronize();
  return (now_seconds() - start_seconds_) * 1e3;
}

Spread summarize(std::vector<double> ms) {
  if (ms.empty()) throw std::invalid_argument("summarize: no timings");
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  const double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  return {median, ms.front(), ms.back()};
}

}  // namespace forge::bench
