// gpu_runtime.cpp: device memory and synchronisation (see gpu_runtime.h). Two implementations, one
// per build: the CUDA runtime under nvcc, host memory under the sim.
//
// All work goes to one compute stream (a non-blocking stream on cuda, as graph capture needs):
// kernels, copies and cuBLAS calls run in the order they were issued, which is what lets the
// caching allocator hand a freed block to the next allocation without waiting (its last user was
// issued earlier, so it finishes earlier). Transfers to the host wait for that stream.
#include "engine/cuda/gpu_runtime.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if FORGE_SIM_BUILD
#include "kernels/sim/copy_stream.h"
#include "kernels/sim/runtime.h"
#else
#include <cuda_runtime.h>

#include "engine/cuda/cuda_check.h"
#endif

namespace forge::FORGE_GPU_NS {

namespace {
std::atomic<bool> fail_next_malloc{false};
// The size device_malloc asks for: `bytes`, or, once after fail_next_device_malloc, 2^60.
size_t size_to_request(size_t bytes) {
  return fail_next_malloc.exchange(false) ? size_t(1) << 60 : bytes;
}
}  // namespace

void fail_next_device_malloc() {
  fail_next_malloc = true;
}

namespace {
std::atomic<uint64_t> host_waits{0}, blocking_uploads{0}, graph_replays{0};
std::atomic<bool> capture_checked{false};  // begin_capture_check
std::atomic<bool> graph_capture{false};    // begin_graph_capture
bool graph_made = false;                   // end_graph_capture until destroy_graph
// Throws when a capture check is on: `what` is a call stream capture forbids.
void refuse_during_capture(const char* what) {
  if (capture_checked || graph_capture)
    throw std::logic_error(std::string(what) +
                           " during capture: a captured step must not allocate, free, read back, "
                           "upload blocking or synchronize (gpu_runtime.h begin_capture_check)");
}
// An upload too large for the staging ring: a blocking one.
bool blocking_size(size_t bytes) {
  return bytes > kStagingBytes / 2;
}
}  // namespace
void begin_capture_check() {
  capture_checked = true;
}
void end_capture_check() {
  capture_checked = false;
}
bool graph_capturing() {
  return graph_capture;
}
bool graph_exists() {
  return graph_made || graph_capture;
}
uint64_t graph_replay_count() {
  return graph_replays;
}
namespace {
void require_no_graph(const char* what) {
  if (graph_exists())
    throw std::logic_error(std::string(what) + ": a graph exists already (one at a time)");
}
void require_graph(const char* what) {
  if (!graph_made) throw std::logic_error(std::string(what) + ": no graph has been captured");
}
}  // namespace
uint64_t host_wait_count() {
  return host_waits;
}
uint64_t blocking_upload_count() {
  return blocking_uploads;
}
void count_host_wait() {
  ++host_waits;
}

#if FORGE_SIM_BUILD

void require_usable_device(const char*) {}  // the sim runs wherever the program does

void* compute_stream_handle() {
  return nullptr;
}

namespace {
// Runs a copy now, or, while a graph is captured, appends it to the record.
void run_or_record(sim::Operation operation) {
  if (graph_capture)
    sim::record(std::move(operation));
  else
    operation();
}
std::vector<sim::Operation> graph_record;
}  // namespace

void begin_graph_capture() {
  require_no_graph("begin_graph_capture");
  sim::begin_recording();
  graph_capture = true;
}
void end_graph_capture() {
  if (!graph_capture) throw std::logic_error("end_graph_capture without begin_graph_capture");
  graph_record = sim::end_recording();
  graph_capture = false;
  graph_made = true;
}
void replay_graph() {
  require_graph("replay_graph");
  ++graph_replays;
  sim::replay_record(graph_record);
}
void destroy_graph() {
  graph_record.clear();
  graph_made = false;
}

void* device_malloc(size_t bytes) {
  refuse_during_capture("cudaMalloc");
  void* p = nullptr;
  const size_t request = size_to_request(bytes);
  if (sim::device_malloc(&p, request) != cudaSuccess)
    throw std::runtime_error("sim: cudaMalloc of " + std::to_string(request) +
                             " bytes failed (out of memory)");
  return p;
}
void device_free(void* ptr) {
  refuse_during_capture("cudaFree");
  sim::device_free(ptr);
}
void clear_last_error() {
  sim::take_last_error();
}
void copy_h2d(void* dst, const void* src, size_t bytes) {
  refuse_during_capture("a blocking upload (cudaMemcpy host to device)");
  ++blocking_uploads;
  std::memcpy(dst, src, bytes);
}
void copy_h2d_async(void* dst, const void* src, size_t bytes) {
  if (blocking_size(bytes)) return copy_h2d(dst, src, bytes);
  if (!graph_capture) {
    std::memcpy(dst, src, bytes);
    return;
  }
  // As on cuda: the graph keeps a copy of the source and uploads it at every replay.
  auto kept = std::make_shared<std::vector<char>>(static_cast<const char*>(src),
                                                  static_cast<const char*>(src) + bytes);
  sim::record([dst, kept] { std::memcpy(dst, kept->data(), kept->size()); });
}
void copy_d2h(void* dst, const void* src, size_t bytes) {
  refuse_during_capture("a transfer to the host (cudaMemcpy device to host)");
  ++host_waits;
  std::memcpy(dst, src, bytes);
}
void copy_d2d(void* dst, const void* src, size_t bytes) {
  run_or_record([=] { std::memmove(dst, src, bytes); });
}
void device_memset(void* dst, int byte, size_t bytes) {
  run_or_record([=] { std::memset(dst, byte, bytes); });
}
void device_synchronize() {  // sim launches are synchronous: only the copy stream may be behind
  refuse_during_capture("cudaDeviceSynchronize");
  ++host_waits;
  sim::copy_stream_run_through(sim::copy_stream_position());
}
static bool fp64_is_slow() {
  return false;
}

#else

namespace {
std::string bytes_text(size_t bytes) {
  return std::to_string(bytes) + " bytes";
}
cudaStream_t stream() {
  return static_cast<cudaStream_t>(compute_stream_handle());
}
}  // namespace

void* compute_stream_handle() {
  static const cudaStream_t compute = [] {
    cudaStream_t s = nullptr;
    check_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate (compute)");
    return s;
  }();
  return compute;
}

void require_usable_device(const char* device_label) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  const std::string advice = "; use --device cpu or --device sim";
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so a later query starts clean
    throw std::runtime_error(std::string("device ") + device_label + ": no usable GPU (" +
                             cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")" +
                             advice);
  }
  if (count == 0)
    throw std::runtime_error(std::string("device ") + device_label +
                             ": no usable GPU (the CUDA driver reports no devices)" + advice);
}

void* device_malloc(size_t bytes) {
  refuse_during_capture("cudaMalloc");
  void* p = nullptr;
  const size_t request = size_to_request(bytes);
  check_cuda(cudaMalloc(&p, request), "cudaMalloc of " + bytes_text(request));
  return p;
}
void clear_last_error() {
  cudaGetLastError();
}
void device_free(void* ptr) {
  refuse_during_capture("cudaFree");
  check_cuda(cudaFree(ptr), "cudaFree");
}
void copy_h2d(void* dst, const void* src, size_t bytes) {
  refuse_during_capture("a blocking upload (cudaMemcpy host to device)");
  ++blocking_uploads;
  // From pageable memory the copy is staged by the driver and returns when the source is read;
  // the synchronize makes it finish before the host goes on, as cudaMemcpy did.
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()),
             "copy of " + bytes_text(bytes) + " host to device");
  check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
}

namespace {
// The pinned ring of copy_h2d_async. Stretches are handed out in ring order, so the queue of
// those whose copies may still run is oldest first and in address order from the head on.
class StagingRing {
 public:
  ~StagingRing() {
    for (const Stretch& s : queued_) cudaEventDestroy(s.copied);
    if (base_) cudaFreeHost(base_);  // at exit the context may be gone: errors are moot
  }
  void upload(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!base_)
      check_cuda(cudaHostAlloc(&base_, kStagingBytes, cudaHostAllocDefault), "cudaHostAlloc");
    const size_t size = (bytes + 255) / 256 * 256;
    if (head_ + size > kStagingBytes) head_ = 0;
    make_free(head_, head_ + size);
    char* stage = static_cast<char*>(base_) + head_;
    std::memcpy(stage, src, bytes);
    check_cuda(cudaMemcpyAsync(dst, stage, bytes, cudaMemcpyHostToDevice, stream()),
               "asynchronous copy of " + bytes_text(bytes) + " host to device");
    cudaEvent_t copied;
    check_cuda(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming), "cudaEventCreate");
    check_cuda(cudaEventRecord(copied, stream()), "cudaEventRecord");
    queued_.push_back({head_, head_ + size, copied});
    head_ += size;
  }

 private:
  struct Stretch {
    size_t begin, end;
    cudaEvent_t copied;
  };
  // Drops the finished stretches at the front, and waits for those overlapping [begin, end).
  void make_free(size_t begin, size_t end) {
    while (!queued_.empty()) {
      const Stretch& s = queued_.front();
      const bool overlaps = s.begin < end && begin < s.end;
      const cudaError_t status = cudaEventQuery(s.copied);
      if (status == cudaErrorNotReady) {
        cudaGetLastError();  // not an error, but leave no trace for FORGE_CHECK_LAUNCH (as PyTorch)
        if (!overlaps) return;
        refuse_during_capture("a wait for the staging ring (cudaEventSynchronize)");
        ++host_waits;  // the host is a whole ring of uploads ahead of the device
        check_cuda(cudaEventSynchronize(s.copied), "cudaEventSynchronize");
      } else {
        check_cuda(status, "cudaEventQuery");
      }
      cudaEventDestroy(s.copied);
      queued_.pop_front();
    }
  }
  std::mutex mutex_;
  void* base_ = nullptr;
  size_t head_ = 0;
  std::deque<Stretch> queued_;
};
StagingRing staging_ring;

// The captured graph, with the pinned copies of what was uploaded during its capture.
struct CapturedGraph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::vector<void*> uploads;
};
CapturedGraph captured;
}  // namespace

void begin_graph_capture() {
  require_no_graph("begin_graph_capture");
  // Relaxed: the host may still query events and allocate pinned memory while capturing.
  check_cuda(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeRelaxed),
             "cudaStreamBeginCapture");
  graph_capture = true;
}
void end_graph_capture() {
  if (!graph_capture) throw std::logic_error("end_graph_capture without begin_graph_capture");
  graph_capture = false;
  check_cuda(cudaStreamEndCapture(stream(), &captured.graph), "cudaStreamEndCapture");
  check_cuda(cudaGraphInstantiate(&captured.exec, captured.graph, 0), "cudaGraphInstantiate");
  graph_made = true;
}
void replay_graph() {
  require_graph("replay_graph");
  ++graph_replays;
  check_cuda(cudaGraphLaunch(captured.exec, stream()), "cudaGraphLaunch");
}
void destroy_graph() {
  if (!graph_made) return;
  ++host_waits;  // its pinned uploads may be read by a replay still running
  check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
  check_cuda(cudaGraphExecDestroy(captured.exec), "cudaGraphExecDestroy");
  check_cuda(cudaGraphDestroy(captured.graph), "cudaGraphDestroy");
  for (void* p : captured.uploads) cudaFreeHost(p);
  captured = CapturedGraph{};
  graph_made = false;
}

void copy_h2d_async(void* dst, const void* src, size_t bytes) {
  if (blocking_size(bytes)) return copy_h2d(dst, src, bytes);
  if (!graph_capture) return staging_ring.upload(dst, src, bytes);
  // A captured copy reads its pinned source at every replay: one the graph owns, never rewritten.
  void* kept = nullptr;
  check_cuda(cudaHostAlloc(&kept, bytes, cudaHostAllocDefault), "cudaHostAlloc (graph upload)");
  captured.uploads.push_back(kept);
  std::memcpy(kept, src, bytes);
  check_cuda(cudaMemcpyAsync(dst, kept, bytes, cudaMemcpyHostToDevice, stream()),
             "captured copy of " + bytes_text(bytes) + " host to device");
}
void copy_d2h(void* dst, const void* src, size_t bytes) {
  // In stream order: waits for the kernels issued before it.
  refuse_during_capture("a transfer to the host (cudaMemcpy device to host)");
  ++host_waits;
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()),
             "copy of " + bytes_text(bytes) + " device to host");
  check_cuda(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
}
void copy_d2d(void* dst, const void* src, size_t bytes) {
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()),
             "copy of " + bytes_text(bytes) + " device to device");
}
void device_memset(void* dst, int byte, size_t bytes) {
  check_cuda(cudaMemsetAsync(dst, byte, bytes, stream()), "memset of " + bytes_text(bytes));
}
void device_synchronize() {
  refuse_during_capture("cudaDeviceSynchronize");
  ++host_waits;
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}
static bool fp64_is_slow() {
  int device = 0, ratio = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&ratio, cudaDevAttrSingleToDoublePrecisionPerfRatio, device),
             "cudaDeviceGetAttribute(SingleToDoublePrecisionPerfRatio)");
  return ratio > 4;
}

#endif

bool gelu_in_float() {
  const char* text = std::getenv("FORGE_GPU_GELU");
  if (!text || std::strcmp(text, "auto") == 0) return fp64_is_slow();
  if (std::strcmp(text, "float") == 0) return true;
  if (std::strcmp(text, "double") == 0) return false;
  throw std::invalid_argument("FORGE_GPU_GELU must be auto, float or double, not '" +
                              std::string(text) + "'");
}

}  // namespace forge::FORGE_GPU_NS
