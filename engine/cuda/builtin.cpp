// builtin.cpp: registers whichever GPU backends the build produced (FORGE_SIM, FORGE_CUDA), and
// routes builtin.h's per-device calls to the build that serves the device.
#include "engine/cuda/builtin.h"

#include <stdexcept>
#include <string>

namespace forge {
#if FORGE_HAVE_SIM
namespace gpu_sim {
void register_gpu_backend();
uint64_t launch_count();
GpuSyncCount sync_count();
void set_capture_check(bool on);
void fail_next_allocation();
}  // namespace gpu_sim
#endif
#if FORGE_HAVE_CUDA
namespace gpu_cuda {
void register_gpu_backend();
uint64_t launch_count();
GpuSyncCount sync_count();
void set_capture_check(bool on);
void fail_next_allocation();
}  // namespace gpu_cuda
#endif

void register_builtin_backends() {
#if FORGE_HAVE_SIM
  gpu_sim::register_gpu_backend();
#endif
#if FORGE_HAVE_CUDA
  gpu_cuda::register_gpu_backend();
#endif
}

namespace {
[[noreturn]] void no_gpu_backend(Device device, const char* what) {
  throw std::invalid_argument(std::string(what) + ": device " + device_name(device) +
                              " has no GPU backend in this program");
}
}  // namespace

uint64_t gpu_launch_count(Device device) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::launch_count();
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::launch_count();
#endif
  no_gpu_backend(device, "gpu_launch_count");
}

GpuSyncCount gpu_sync_count(Device device) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::sync_count();
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::sync_count();
#endif
  no_gpu_backend(device, "gpu_sync_count");
}

namespace {
void set_gpu_capture_check(Device device, bool on) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::set_capture_check(on);
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::set_capture_check(on);
#endif
  no_gpu_backend(device, "GpuCaptureCheck");
}
}  // namespace

GpuCaptureCheck::GpuCaptureCheck(Device device) : device_(device) {
  set_gpu_capture_check(device, true);
}
GpuCaptureCheck::~GpuCaptureCheck() {
  set_gpu_capture_check(device_, false);
}

void fail_next_gpu_allocation(Device device) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::fail_next_allocation();
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::fail_next_allocation();
#endif
  no_gpu_backend(device, "fail_next_gpu_allocation");
}

}  // namespace forge
