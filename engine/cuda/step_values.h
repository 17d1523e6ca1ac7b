// step_values.h: the GPU backend's per-step values (engine/backend.h set_step_values) in device
// memory, and the kernel arguments that read them there.
//
// A kernel argument is copied into a launch when it is issued, and a CUDA graph repeats the copy
// of its capture on every replay: a learning rate passed by value would stay the captured step's.
// So a value that changes per step reaches the kernel as a pointer to one small device block,
// written by an asynchronous upload before each step (StepValuesBlock::set), and each launcher
// hands its kernel an LrArg, SeedArg or StepArg: the block's value when the argument it was given
// is the current step's (the result is the same), else the argument itself (a direct call with
// some other value, as the tests make).
#pragma once
#include <cstdint>
#include <unordered_map>

#include "engine/backend.h"
#include "engine/cuda/caching_allocator.h"
#include "engine/random.h"

namespace forge::FORGE_GPU_NS {

// The block in device memory.
struct DeviceStepValues {
  uint64_t step;
  int64_t optimizer_steps;
  float lr;
};

// A learning rate: values->lr when values is set, else value.
struct LrArg {
  float value;
  const DeviceStepValues* values;
  FORGE_HOST_DEVICE float get() const { return values ? values->lr : value; }
};

// A dropout seed: step_seed(key, values->step + step_offset, call) when values is set (the seed
// dropout_seed made), else key, the seed itself.
struct SeedArg {
  uint64_t key, call;
  int64_t step_offset;
  const DeviceStepValues* values;
  FORGE_HOST_DEVICE uint64_t get() const {
    return values ? step_seed(key, values->step + uint64_t(step_offset), call) : key;
  }
};

// The step of accumulate_step_metrics: values->step when values is set, else value.
struct StepArg {
  int64_t value;
  const DeviceStepValues* values;
  FORGE_HOST_DEVICE int64_t get() const { return values ? int64_t(values->step) : value; }
};

class GpuBackend;

class StepValuesBlock {
 public:
  explicit StepValuesBlock(CachingAllocator& allocator) : allocator_(allocator) {}
  ~StepValuesBlock();
  StepValuesBlock(const StepValuesBlock&) = delete;
  StepValuesBlock& operator=(const StepValuesBlock&) = delete;

  // The next step's values: one asynchronous upload, ordered after the work issued before it.
  // Forgets the seeds of the last step. Refused (std::logic_error) while a graph is captured: the
  // upload would be part of the graph, replayed with these values every time.
  void set(GpuBackend& backend, const StepValues& values);
  const StepValues& host() const { return host_; }
  // The device block (allocated and zeroed on first use: do that before a capture).
  const DeviceStepValues* device(GpuBackend& backend);
  // dropout_seed: records how `seed` was made, until the next set().
  void remember_seed(uint64_t seed, uint64_t key, uint64_t step, uint64_t call);

  LrArg lr(GpuBackend& backend, float lr);
  SeedArg seed(GpuBackend& backend, uint64_t seed);
  StepArg step(GpuBackend& backend, int64_t step);

 private:
  struct SeedRecipe {
    uint64_t key, call;
    int64_t step_offset;
  };
  CachingAllocator& allocator_;
  DeviceStepValues* device_ = nullptr;
  StepValues host_;
  bool host_set_ = false;  // set() was called: host_ is a step's, not the zero start
  std::unordered_map<uint64_t, SeedRecipe> seeds_;
};

}  // namespace forge::FORGE_GPU_NS
