// launch.cpp: kernel launches on the sim. Checks the launch configuration as CUDA would, then hands
// the grid to one persistent pool of OS threads (FORGE_SIM_THREADS, default: hardware threads);
// each takes whole blocks from an atomic counter and runs them with its own BlockScheduler, whose
// fibers therefore live as long as the program. Launches are synchronous and one at a time.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "kernels/sim/block_scheduler.h"

namespace forge::sim {

namespace {

// CUDA's limits on compute capability 8.x / 9.x.
constexpr uint64_t kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDimZ = 64;
constexpr uint64_t kMaxGridDimX = (1ull << 31) - 1;
constexpr unsigned kMaxGridDimYZ = 65535;
constexpr size_t kMaxDynamicSmemBytes = 227 * 1024;  // sm_90 opt-in maximum per block

Order order_from_environment() {
  const char* text = std::getenv("FORGE_SIM_ORDER");
  if (!text || std::strcmp(text, "forward") == 0) return Order::forward;
  if (std::strcmp(text, "reverse") == 0) return Order::reverse;
  throw std::invalid_argument("FORGE_SIM_ORDER must be forward or reverse, not '" +
                              std::string(text) + "'");
}

std::atomic<Order>& order_setting() {
  static std::atomic<Order> setting{order_from_environment()};
  return setting;
}

unsigned worker_count() {
  if (const char* text = std::getenv("FORGE_SIM_THREADS")) {
    const int n = std::atoi(text);
    if (n < 1) throw std::invalid_argument("FORGE_SIM_THREADS must be a positive integer");
    return unsigned(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

void check_configuration(const Kernel& k) {
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error("kernel " + std::string(k.name) + ": invalid launch, grid " +
                             dims(k.grid) + " block " + dims(k.block) + ", " +
                             std::to_string(k.dynamic_smem_bytes) + " bytes of dynamic shared " +
                             "memory: " + why);
  };
  if (k.grid.x == 0 || k.grid.y == 0 || k.grid.z == 0 || k.block.x == 0 || k.block.y == 0 ||
      k.block.z == 0)
    fail("a dimension is zero");
  if (uint64_t(k.block.x) * k.block.y * k.block.z > kMaxThreadsPerBlock)
    fail("more than 1024 threads per block");
  if (k.block.z > kMaxBlockDimZ) fail("blockDim.z above 64");
  if (k.grid.x > kMaxGridDimX || k.grid.y > kMaxGridDimYZ || k.grid.z > kMaxGridDimYZ)
    fail("grid dimension above CUDA's limit (2^31-1, 65535, 65535)");
  if (k.dynamic_smem_bytes > kMaxDynamicSmemBytes) fail("more than 227 KiB of shared memory");
}

thread_local bool on_worker = false;
std::atomic<uint64_t> launches{0};

class WorkerPool {
 public:
  // The workers run until the program exits (detached: nothing waits for them). The pool is never
  // destroyed, so that no static destructor can pull it from under a late launch.
  WorkerPool() {
    const unsigned n = worker_count();
    for (unsigned i = 0; i < n; ++i) std::thread([this] { work(); }).detach();
    workers_ = n;
  }

  void run(const Kernel& kernel) {
    std::lock_guard one_launch_at_a_time(launch_mutex_);
    {
      std::lock_guard lock(mutex_);
      kernel_ = &kernel;
      blocks_ = uint64_t(kernel.grid.x) * kernel.grid.y * kernel.grid.z;
      next_block_ = 0;
      failed_ = false;
      error_ = nullptr;
      busy_ = workers_;
      ++generation_;
    }
    work_ready_.notify_all();
    std::unique_lock lock(mutex_);
    all_done_.wait(lock, [this] { return busy_ == 0; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    on_worker = true;
    BlockScheduler scheduler;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        work_ready_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      const Kernel& k = *kernel_;
      for (uint64_t b; !failed_ && (b = next_block_.fetch_add(1)) < blocks_;) {
        const uint3 block{unsigned(b % k.grid.x), unsigned(b / k.grid.x % k.grid.y),
                          unsigned(b / (uint64_t(k.grid.x) * k.grid.y))};
        try {
          scheduler.run(k, block);
        } catch (...) {
          std::lock_guard lock(mutex_);
          if (!error_) error_ = std::current_exception();
          failed_ = true;  // the other workers stop taking blocks
        }
      }
      std::lock_guard lock(mutex_);
      if (--busy_ == 0) all_done_.notify_one();
    }
  }

  unsigned workers_ = 0;
  std::mutex launch_mutex_;
  std::mutex mutex_;
  std::condition_variable work_ready_, all_done_;
  const Kernel* kernel_ = nullptr;
  uint64_t generation_ = 0;  // one per launch; workers wait for it to change
  uint64_t blocks_ = 0;
  std::atomic<uint64_t> next_block_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  unsigned busy_ = 0;  // workers still on the current launch
};

BlockScheduler& running_block(const char* what) {
  BlockScheduler* scheduler = BlockScheduler::current();
  if (!scheduler) throw std::logic_error(std::string(what) + " called outside a kernel");
  return *scheduler;
}

}  // namespace

void set_order(Order order) {
  order_setting() = order;
}
Order order() {
  return order_setting();
}

namespace {
// Checks a launch as CUDA does when it is issued (on a graph: when it is captured).
void check_launch(const Kernel& kernel) {
  check_configuration(kernel);
  if (on_worker)
    throw std::logic_error("kernel " + std::string(kernel.name) +
                           ": launched from inside a kernel (no dynamic parallelism on the sim)");
}
void run(const Kernel& kernel) {
  static WorkerPool& pool = *new WorkerPool;
  pool.run(kernel);
}

std::mutex record_mutex;
bool is_recording = false;
std::vector<Operation> active_record;
}  // namespace

void launch(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
            const std::function<void()>& thread_body) {
  const Kernel kernel{kernel_name, grid, block, dynamic_smem_bytes, &thread_body};
  check_launch(kernel);
  launches.fetch_add(1, std::memory_order_relaxed);
  run(kernel);
}

uint64_t launch_count() {
  return launches.load(std::memory_order_relaxed);
}

void begin_recording() {
  std::lock_guard lock(record_mutex);
  if (is_recording) throw std::logic_error("sim: begin_recording while a record is being made");
  is_recording = true;
  active_record.clear();
}

bool recording() {
  std::lock_guard lock(record_mutex);
  return is_recording;
}

void record(Operation operation) {
  std::lock_guard lock(record_mutex);
  if (!is_recording) throw std::logic_error("sim: record() outside begin/end_recording");
  active_record.push_back(std::move(operation));
}

std::vector<Operation> end_recording() {
  std::lock_guard lock(record_mutex);
  if (!is_recording) throw std::logic_error("sim: end_recording without begin_recording");
  is_recording = false;
  return std::move(active_record);
}

void record_launch(const char* kernel_name, dim3 grid, dim3 block, size_t dynamic_smem_bytes,
                   Operation thread_body) {
  check_launch({kernel_name, grid, block, dynamic_smem_bytes, &thread_body});
  launches.fetch_add(1, std::memory_order_relaxed);  // as FORGE_LAUNCH counts a captured launch
  record([kernel_name, grid, block, dynamic_smem_bytes, body = std::move(thread_body)] {
    run({kernel_name, grid, block, dynamic_smem_bytes, &body});
  });
}

void replay_record(const std::vector<Operation>& operations) {
  for (const Operation& operation : operations) operation();
}

void sync_threads() {
  running_block("__syncthreads").sync_threads();
}

uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int arg, int width) {
  return running_block("a warp collective").warp_collective(kind, mask, value, arg, width);
}

void* dynamic_smem() {
  return running_block("FORGE_DYNAMIC_SMEM").dynamic_smem();
}

}  // namespace forge::sim
