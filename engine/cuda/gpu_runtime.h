// gpu_runtime.h: the GPU backend's device memory and synchronisation, in one place so that the
// rest of engine/cuda never calls the CUDA runtime directly.
//
// Under nvcc (Device::cuda) these wrap the CUDA runtime and turn every error into a
// std::runtime_error naming what was asked and cudaGetErrorString's answer. Under the sim build
// (FORGE_SIM_BUILD, Device::sim) "device" memory is host memory: the emulator runs kernels on the
// CPU, so a kernel reads and writes plain pointers, and every launch has finished when it returns
// (or, while a graph is captured, is recorded to run at each replay).
#pragma once
#include <cstddef>
#include <cstdint>

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

// Throws a clear error when this build's device cannot be used (cuda: no GPU or no driver).
// `device_label` is the device's name in the message ("cuda").
void require_usable_device(const char* device_label);

void* device_malloc(size_t bytes);  // 256-byte aligned, like cudaMalloc
// Resets CUDA's last error (cudaGetLastError): a failed device_malloc leaves "out of memory" there,
// and the next FORGE_CHECK_LAUNCH would blame an innocent kernel for it.
void clear_last_error();
// Test hook: the next device_malloc asks the device for more memory than any has (2^60 bytes), so
// it fails exactly as a real out-of-memory does, last error included.
void fail_next_device_malloc();
void device_free(void* ptr);
void copy_h2d(void* dst, const void* src, size_t bytes);  // on cuda, from pageable memory: waits
// An upload the host does not wait for: src is copied at once into a pinned staging ring (so the
// caller may reuse it on return) and from there to dst in stream order (cudaMemcpyAsync). The
// ring (kStagingBytes) is waited on only when it wraps onto copies still queued; an upload larger
// than half of it is a copy_h2d. On sim: a memcpy, with the same size rule for what counts as
// blocking.
constexpr size_t kStagingBytes = size_t(128) << 20;  // 128 MiB: a batch of 64 3x224x224 images
void copy_h2d_async(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);  // waits for earlier work first
void copy_d2d(void* dst, const void* src, size_t bytes);  // ordered on the compute stream
void device_memset(void* dst, int byte, size_t bytes);
void device_synchronize();  // both streams, the copy stream's too (copy_stream.h)

// How often this build made the host wait for the device: host_wait_count counts copy_d2h and
// device_synchronize calls, blocking_upload_count copy_h2d calls (a cudaMemcpy from pageable
// memory, which on cuda waits for the stream before it copies). The same calls count on sim, where
// nothing waits, so a test there sees what the step would do on a GPU.
uint64_t host_wait_count();
uint64_t blocking_upload_count();
void count_host_wait();  // a wait made elsewhere in the backend (copy_stream.h host_waits_for)

// Capture checks: the rules a step must keep to be captured as a CUDA graph (stream capture
// forbids them): while one is on, a device allocation or free (cudaMalloc, cudaFree: the caching
// allocator must serve the step from blocks it already holds), a transfer to the host, a blocking
// upload or a synchronize throws std::logic_error naming the call and "during capture". Kernel
// launches are allowed. Host-side bookkeeping, the same on both builds: nothing is captured.
void begin_capture_check();
void end_capture_check();

// The stream all work is issued on: kernels (kernels/kernel_util.cuh kStream), copies, cuBLAS,
// cuBLASLt and cuDNN. On cuda a non-blocking stream, made on first use (capture is impossible on
// the legacy default stream); a cudaStream_t, as void* so this header needs no CUDA. Null on sim.
void* compute_stream_handle();

// ---- CUDA graphs (one at a time) ----------------------------------------------------------
// begin_graph_capture: from now on work is recorded, not run: on cuda cudaStreamBeginCapture on
// the compute stream (relaxed mode), on sim kernels/sim's record (kernels with their arguments by
// value, copies); the capture check is on meanwhile (no allocation, free, read-back, blocking
// upload or synchronize). An upload while capturing copies its source into host memory the graph
// keeps: every replay uploads those same bytes (right for tables, wrong for per-step data).
// end_graph_capture instantiates the graph; replay_graph runs all of it in stream order as one
// launch (cudaGraphLaunch); destroy_graph waits for the last replay and frees it. The memory the
// graph's kernels use is the caller's business (GpuBackend's graph pool, caching_allocator.h).
bool graph_capturing();
bool graph_exists();
void begin_graph_capture();
void end_graph_capture();
void replay_graph();
void destroy_graph();
uint64_t graph_replay_count();  // replays so far: each is one launch

// Whether GELU runs its float path (engine/gelu_math.h). FORGE_GPU_GELU=float or double chooses;
// unset or auto: float where the device's fp64 runs under a quarter of its fp32 rate
// (cudaDevAttrSingleToDoublePrecisionPerfRatio > 4: L4, A10, consumer parts; H100, H200 and A100
// have 2), double on the sim (a CPU's fp64 is fast).
bool gelu_in_float();

}  // namespace forge::FORGE_GPU_NS
