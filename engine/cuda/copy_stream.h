// copy_stream.h: the GPU backend's second stream, for uploads, and the events that order it
// against the compute stream (gpu_runtime.h compute_stream_handle). Used by the double-buffered
// batch uploads (upload_slots.h, gpu_upload_slots.cpp); docs/GPU_BACKEND.md "The copy stream".
//
// On cuda: a non-blocking stream of its own, cudaEvent_t events (timing disabled), pinned host
// memory from cudaHostAlloc, so that a cudaMemcpyAsync from it is a DMA the host does not wait
// for and that runs beside the compute stream's kernels. On sim: kernels/sim/copy_stream.h, whose
// copy stream runs at once in forward order and only when waited for in reverse order, so that a
// missing wait is a wrong result there. None of these may be called while a graph is captured
// (std::logic_error): uploads happen outside the captured step, ordered by events.
#pragma once
#include <cstddef>

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

void* pinned_malloc(size_t bytes);  // page-locked host memory (sim: 256-byte aligned host memory)
void pinned_free(void* ptr);

// An event: cudaEvent_t on cuda, as void* so this header needs no CUDA.
void* event_create();
void event_destroy(void* event);
// cudaEventRecord: the event completes when the work issued to that stream so far has.
void record_on_compute_stream(void* event);
void record_on_copy_stream(void* event);
// cudaStreamWaitEvent: the stream's later work starts after the event has completed (the host
// does not wait). An event never recorded is complete.
void compute_stream_waits(void* event);
void copy_stream_waits(void* event);
// cudaEventSynchronize: the host waits for the event; counted in host_wait_count (gpu_runtime.h)
// when it had not yet completed.
void host_waits_for(void* event);

// cudaMemcpyAsync host to device on the copy stream: `pinned_src` (from pinned_malloc) must stay
// unchanged until an event recorded on the copy stream after this completes.
void copy_h2d_on_copy_stream(void* dst, const void* pinned_src, size_t bytes);

}  // namespace forge::FORGE_GPU_NS
