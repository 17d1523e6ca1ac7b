// gpu_copy_stream.cpp: the copy stream, its events and pinned memory (see copy_stream.h). Two
// implementations, one per build: the CUDA runtime under nvcc, kernels/sim/copy_stream.h on sim.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/cuda/copy_stream.h"
#include "engine/cuda/gpu_runtime.h"

#if FORGE_SIM_BUILD
#include "kernels/sim/copy_stream.h"
#else
#include <cuda_runtime.h>

#include "engine/cuda/cuda_check.h"
#endif

namespace forge::FORGE_GPU_NS {

namespace {
// Uploads on the copy stream are per-step data: a graph would replay the captured bytes.
void refuse_during_graph_capture(const char* what) {
  if (graph_capturing())
    throw std::logic_error(std::string(what) +
                           " during a graph capture: the copy stream works outside the captured "
                           "step (engine/cuda/copy_stream.h)");
}
}  // namespace

#if FORGE_SIM_BUILD

namespace {
// An event is the copy stream's position when it was recorded there: complete once the
// operations up to it have run. Recorded on the compute stream (whose work has all run) or
// never recorded: position 0, complete.
struct SimEvent {
  uint64_t position = 0;
};
SimEvent& as_event(void* event) {
  return *static_cast<SimEvent*>(event);
}
}  // namespace

void* pinned_malloc(size_t bytes) {
  void* p = std::aligned_alloc(256, std::max<size_t>(256, (bytes + 255) / 256 * 256));
  if (!p) throw std::runtime_error("sim: pinned allocation of " + std::to_string(bytes) + " bytes");
  return p;
}
void pinned_free(void* ptr) {
  std::free(ptr);
}
void* event_create() {
  return new SimEvent;
}
void event_destroy(void* event) {
  delete static_cast<SimEvent*>(event);
}
void record_on_compute_stream(void* event) {
  refuse_during_graph_capture("cudaEventRecord");
  as_event(event).position = 0;
}
void record_on_copy_stream(void* event) {
  refuse_during_graph_capture("cudaEventRecord");
  as_event(event).position = sim::copy_stream_position();
}
void compute_stream_waits(void* event) {
  refuse_during_graph_capture("cudaStreamWaitEvent");
  sim::copy_stream_run_through(as_event(event).position);
}
void copy_stream_waits(void* event) {
  // Compute-stream events are complete when recorded; a copy-stream one orders nothing more
  // than the copy stream's own issue order does.
  refuse_during_graph_capture("cudaStreamWaitEvent");
  (void)event;
}
void host_waits_for(void* event) {
  refuse_during_graph_capture("cudaEventSynchronize");
  const uint64_t position = as_event(event).position;
  if (sim::copy_stream_done(position)) return;
  count_host_wait();
  sim::copy_stream_run_through(position);
}
void copy_h2d_on_copy_stream(void* dst, const void* pinned_src, size_t bytes) {
  refuse_during_graph_capture("cudaMemcpyAsync on the copy stream");
  sim::copy_stream_issue([=] { std::memcpy(dst, pinned_src, bytes); });
}

#else

namespace {
cudaStream_t compute_stream() {
  return static_cast<cudaStream_t>(compute_stream_handle());
}
cudaStream_t copy_stream() {
  static const cudaStream_t copy = [] {
    cudaStream_t s = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate (copy)");
    return s;
  }();
  return copy;
}
cudaEvent_t as_event(void* event) {
  return static_cast<cudaEvent_t>(event);
}
}  // namespace

void* pinned_malloc(size_t bytes) {
  void* p = nullptr;
  check_cuda(cudaHostAlloc(&p, bytes, cudaHostAllocDefault),
             "cudaHostAlloc of " + std::to_string(bytes) + " bytes");
  return p;
}
void pinned_free(void* ptr) {
  cudaFreeHost(ptr);  // at exit the context may be gone: errors are moot
}
void* event_create() {
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreate");
  return event;
}
void event_destroy(void* event) {
  cudaEventDestroy(as_event(event));
}
void record_on_compute_stream(void* event) {
  refuse_during_graph_capture("cudaEventRecord");
  check_cuda(cudaEventRecord(as_event(event), compute_stream()),
             "cudaEventRecord (compute stream)");
}
void record_on_copy_stream(void* event) {
  refuse_during_graph_capture("cudaEventRecord");
  check_cuda(cudaEventRecord(as_event(event), copy_stream()), "cudaEventRecord (copy stream)");
}
void compute_stream_waits(void* event) {
  refuse_during_graph_capture("cudaStreamWaitEvent");
  check_cuda(cudaStreamWaitEvent(compute_stream(), as_event(event), 0),
             "cudaStreamWaitEvent (compute stream)");
}
void copy_stream_waits(void* event) {
  refuse_during_graph_capture("cudaStreamWaitEvent");
  check_cuda(cudaStreamWaitEvent(copy_stream(), as_event(event), 0),
             "cudaStreamWaitEvent (copy stream)");
}
void host_waits_for(void* event) {
  refuse_during_graph_capture("cudaEventSynchronize");
  const cudaError_t status = cudaEventQuery(as_event(event));
  if (status == cudaSuccess) return;
  if (status != cudaErrorNotReady) check_cuda(status, "cudaEventQuery");
  cudaGetLastError();  // not ready is no error: leave no trace for FORGE_CHECK_LAUNCH
  count_host_wait();
  check_cuda(cudaEventSynchronize(as_event(event)), "cudaEventSynchronize");
}
void copy_h2d_on_copy_stream(void* dst, const void* pinned_src, size_t bytes) {
  refuse_during_graph_capture("cudaMemcpyAsync on the copy stream");
  check_cuda(cudaMemcpyAsync(dst, pinned_src, bytes, cudaMemcpyHostToDevice, copy_stream()),
             "copy of " + std::to_string(bytes) + " bytes host to device (copy stream)");
}

#endif

}  // namespace forge::FORGE_GPU_NS
