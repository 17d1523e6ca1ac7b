// builtin.cpp: registers whichever GPU backends the build produced (FORGE_SIM, FORGE_CUDA), and
// routes builtin.h's per-device calls to the build that serves the device.
#include "engine/cuda/builtin.h"

#include <stdexcept>
#include <string>

#include "engine/cuda/upload_slots.h"

namespace forge {
#if FORGE_HAVE_SIM
namespace gpu_sim {
void register_gpu_backend();
uint64_t launch_count();
GpuSyncCount sync_count();
void set_capture_check(bool on);
void fail_next_allocation();
enum class GraphCall { begin_capture, end_capture, replay, destroy };
void graph_call(GraphCall call);
size_t graph_block_count();
void* compute_stream_handle();
std::unique_ptr<GpuUploadSlots> make_upload_slots(size_t slot_bytes, int slots);
}  // namespace gpu_sim
#endif
#if FORGE_HAVE_CUDA
namespace gpu_cuda {
void register_gpu_backend();
uint64_t launch_count();
GpuSyncCount sync_count();
void set_capture_check(bool on);
void fail_next_allocation();
enum class GraphCall { begin_capture, end_capture, replay, destroy };
void graph_call(GraphCall call);
size_t graph_block_count();
void* compute_stream_handle();
std::unique_ptr<GpuUploadSlots> make_upload_slots(size_t slot_bytes, int slots);
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

namespace {
// GraphCall's values are the same in both builds' namespaces.
void gpu_graph_call(Device device, int call) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::graph_call(gpu_sim::GraphCall(call));
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::graph_call(gpu_cuda::GraphCall(call));
#endif
  no_gpu_backend(device, "GpuGraph");
}
enum { call_begin_capture, call_end_capture, call_replay, call_destroy };
}  // namespace

GpuGraph::GpuGraph(Device device) : device_(device) {
  if (device != Device::sim && device != Device::cuda) no_gpu_backend(device, "GpuGraph");
}
GpuGraph::~GpuGraph() {
  if (!capturing_ && !captured_) return;
  try {
    gpu_graph_call(device_, call_destroy);
  } catch (...) {
    // At process exit the CUDA context may be gone; the graph goes with it.
  }
}
void GpuGraph::begin_capture() {
  if (capturing_ || captured_) throw std::logic_error("GpuGraph: captured once only");
  gpu_graph_call(device_, call_begin_capture);
  capturing_ = true;
}
void GpuGraph::end_capture() {
  if (!capturing_) throw std::logic_error("GpuGraph: end_capture without begin_capture");
  capturing_ = false;
  gpu_graph_call(device_, call_end_capture);
  captured_ = true;
}
void GpuGraph::replay() {
  if (!captured_) throw std::logic_error("GpuGraph: replay before a capture");
  gpu_graph_call(device_, call_replay);
}
size_t GpuGraph::pool_blocks() const {
#if FORGE_HAVE_SIM
  if (device_ == Device::sim) return gpu_sim::graph_block_count();
#endif
#if FORGE_HAVE_CUDA
  if (device_ == Device::cuda) return gpu_cuda::graph_block_count();
#endif
  no_gpu_backend(device_, "GpuGraph");
}

void* gpu_compute_stream(Device device) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::compute_stream_handle();
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::compute_stream_handle();
#endif
  no_gpu_backend(device, "gpu_compute_stream");
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

std::unique_ptr<GpuUploadSlots> make_gpu_upload_slots(Device device, size_t slot_bytes, int slots) {
#if FORGE_HAVE_SIM
  if (device == Device::sim) return gpu_sim::make_upload_slots(slot_bytes, slots);
#endif
#if FORGE_HAVE_CUDA
  if (device == Device::cuda) return gpu_cuda::make_upload_slots(slot_bytes, slots);
#endif
  no_gpu_backend(device, "make_gpu_upload_slots");
}

}  // namespace forge
