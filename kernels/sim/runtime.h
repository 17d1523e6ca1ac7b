// runtime.h: the emulator's interface, as cuda_compat.h uses it. Kernel code never calls these
// directly; it writes CUDA (threadIdx, __syncthreads, __shfl_sync, FORGE_LAUNCH) and cuda_compat.h
// maps that onto the functions below. Tests and tools may call set_order().
//
// The model (../../../shared/docs/SIM.md): a persistent pool of OS threads takes whole blocks; the
// threads of a block are fibers on one OS thread; the scheduler runs each warp's lanes until every
// one blocks on a barrier or exits, then completes whatever barriers are complete.
#pragma once
#include <driver_types.h>  // NVIDIA's cudaError_t, so errors read as they do on CUDA
#include <vector_types.h>  // NVIDIA's uint3 / dim3, so kernels see the same types under g++

#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace forge::sim {

// The order in which the scheduler runs lanes within a warp and warps within a block. A kernel
// whose result depends on it has a race: a missing barrier, or warp-synchronous code.
enum class Order { forward, reverse };
// Initially FORGE_SIM_ORDER (forward when unset); set_order overrides it for later launches.
void set_order(Order order);
Order order();

// Coordinates of the CUDA thread now running on this OS thread. The scheduler writes them before
// it resumes a fiber; fibers never migrate between OS threads, so thread_local is exact.
// (constinit: no dynamic initialisation, so reading them needs no TLS wrapper call.)
extern thread_local constinit uint3 thread_idx;
extern thread_local constinit uint3 block_idx;
extern thread_local constinit dim3 block_dim;
extern thread_local constinit dim3 grid_dim;
// Counts the blocks started on this OS thread. State the emulator keeps per CUDA thread outside
// the scheduler (cp.async's pending groups, kernels/sim/warp_mma.h) belongs to the block it was
// recorded under and is stale once this has moved on.
extern thread_local constinit uint64_t block_serial;

// __syncthreads(): suspends this fiber until every thread of the block has arrived.
void sync_threads();

// A warp collective: the calling lane posts `value` and waits until every lane of `mask` has
// posted the same collective; then each gets its result. Shuffles return the source lane's value
// bits, ballot/any/all the vote, syncwarp nothing. `arg` is srcLane, delta or laneMask.
enum class Collective : uint8_t {
  syncwarp,
  shfl_idx,
  shfl_up,
  shfl_down,
  shfl_xor,
  ballot,
  any,
  all
};
uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int arg, int width);

// The running block's dynamic shared memory (FORGE_DYNAMIC_SMEM), 16-byte aligned, filled with
// 0xFF bytes at block start so a float read before it is written is NaN.
void* dynamic_smem();

// Runs thread_body once per thread of every block and returns when all have finished (launches
// are synchronous). Throws std::runtime_error naming the kernel for an invalid configuration or a
// barrier error, and rethrows the first exception a kernel body threw.
void launch(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
            const std::function<void()>& thread_body);

// ---- device memory and CUDA's last error, as the CUDA runtime has them
// cudaMalloc: 256-byte aligned host memory (0 bytes still get a distinct pointer). When there is
// none to give it returns cudaErrorMemoryAllocation and, like CUDA, also leaves that error as the
// calling thread's last error, where it stays until take_last_error() (cudaGetLastError) reads it:
// a launch checked after a failed allocation sees it unless the allocator cleared it.
cudaError_t device_malloc(void** ptr, size_t bytes);
void device_free(void* ptr);
// cudaGetLastError: this thread's last error, reset to cudaSuccess.
cudaError_t take_last_error();
// cudaGetErrorString for the errors the sim produces ("out of memory", "no error").
const char* error_string(cudaError_t error);

// Kernel launches so far in this program: every launch() and record_launch() that passed its
// configuration check (a replayed record's launches are not counted again).
uint64_t launch_count();

// ---- CUDA graphs, emulated (engine/cuda/gpu_runtime.h begin_graph_capture)
// Between begin_recording and end_recording nothing runs: each kernel launch is checked and
// appended to the record with its arguments BY VALUE, as a CUDA graph keeps a captured launch's
// parameters, and the runtime appends its copies (record()). replay_record runs the operations in
// order, so a kernel that took a per-step value as an argument sees the captured value again, as
// on a GPU. One record at a time, program-wide.
using Operation = std::function<void()>;
void begin_recording();
bool recording();
void record(Operation operation);  // only while recording
std::vector<Operation> end_recording();
void replay_record(const std::vector<Operation>& operations);
// launch() for a record: checks the configuration now and appends the launch.
void record_launch(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
                   Operation thread_body);

// FORGE_LAUNCH on the sim: CUDA copies the arguments into parameter space once per launch, with the
// kernel's parameter types; every thread then receives its own by-value copies.
template <class... Params, class... Args>
void launch_kernel(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
                   void (*kernel)(Params...), Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "FORGE_LAUNCH: wrong number of arguments");
  std::tuple<std::decay_t<Params>...> parameters(std::forward<Args>(args)...);
  if (recording())
    return record_launch(kernel_name, grid, block, dynamic_smem_bytes,
                         [parameters, kernel] { std::apply(kernel, parameters); });
  launch(kernel_name, grid, block, dynamic_smem_bytes,
         [&parameters, kernel] { std::apply(kernel, parameters); });
}

}  // namespace forge::sim
