// gpu_register.cpp: makes this build of the GPU backend known to forge::backend(): Device::sim for
// the sim build, Device::cuda for the nvcc build. The factory runs on first use of the device, so
// a program that never asks for cuda never touches the driver. Also what engine/cuda/builtin.h
// offers per device beyond the Backend interface: the launch count (kernels, cuBLAS and cuDNN
// calls; a graph replay is one), the sync counts, the graph and the allocation test hook.
#include "engine/cuda/blas.h"
#include "engine/cuda/builtin.h"
#if FORGE_CUDNN
#include "engine/cuda/cudnn_conv.h"
#endif
#include "engine/cuda/gpu_backend.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {

#if FORGE_SIM_BUILD
constexpr Device kDevice = Device::sim;
#else
constexpr Device kDevice = Device::cuda;
#endif

static Backend* make_gpu_backend() {
  // On cuda: without a GPU or a driver, a clear error now instead of a failure in the first kernel.
  require_usable_device(device_name(kDevice));
  return new GpuBackend();  // lives as long as the program (the registry keeps it)
}

void register_gpu_backend() {
  register_backend(kDevice, &make_gpu_backend);
}

uint64_t launch_count() {
#if FORGE_CUDNN
  return kernel_launch_total() + blas_call_count() + cudnn_call_count() + graph_replay_count();
#else
  return kernel_launch_total() + blas_call_count() + graph_replay_count();
#endif
}

GpuSyncCount sync_count() {
  return {.host_waits = host_wait_count(), .blocking_uploads = blocking_upload_count()};
}

void set_capture_check(bool on) {
  if (on)
    begin_capture_check();
  else
    end_capture_check();
}

namespace {
GpuBackend& gpu_backend() {
  return static_cast<GpuBackend&>(backend(kDevice));
}
}  // namespace

void graph_call(GraphCall call) {
  GpuBackend& b = gpu_backend();
  switch (call) {
    case GraphCall::begin_capture:
      return b.begin_graph_capture();
    case GraphCall::end_capture:
      return b.end_graph_capture();
    case GraphCall::replay:
      return b.replay_graph();
    case GraphCall::destroy:
      return b.destroy_graph();
  }
}

size_t graph_block_count() {
  return gpu_backend().graph_block_count();
}

void fail_next_allocation() {
  fail_next_device_malloc();
}

}  // namespace forge::FORGE_GPU_NS
