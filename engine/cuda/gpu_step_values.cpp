// gpu_step_values.cpp: the per-step values block (see step_values.h).
#include <stdexcept>

#include "engine/cuda/gpu_impl.h"
#include "engine/cuda/gpu_runtime.h"

namespace forge::FORGE_GPU_NS {

StepValuesBlock::~StepValuesBlock() {
  allocator_.deallocate(device_, sizeof(DeviceStepValues));
}

const DeviceStepValues* StepValuesBlock::device(GpuBackend& backend) {
  if (!device_) {
    device_ = static_cast<DeviceStepValues*>(allocator_.allocate(sizeof(DeviceStepValues)));
    const DeviceStepValues zero{0, 0, 0.f};
    backend.copy_from_host(device_, &zero, sizeof zero);
  }
  return device_;
}

void StepValuesBlock::set(GpuBackend& backend, const StepValues& values) {
  if (graph_capturing())
    throw std::logic_error(
        "set_step_values during a graph capture: the upload would be replayed with these "
        "values every time (set them before the capture and before each replay)");
  DeviceStepValues* block = const_cast<DeviceStepValues*>(device(backend));
  const DeviceStepValues next{values.step, values.optimizer_steps, values.lr};
  backend.copy_from_host(block, &next, sizeof next);
  host_ = values;
  host_set_ = true;
  seeds_.clear();
}

void StepValuesBlock::remember_seed(uint64_t seed, uint64_t key, uint64_t step, uint64_t call) {
  // Forwards without set_step_values in between (tests, tools) would let the map grow without
  // end: past a bound it is emptied, and the seeds it held become plain arguments again.
  constexpr size_t kMaxSeeds = size_t(1) << 16;
  if (seeds_.size() >= kMaxSeeds) seeds_.clear();
  seeds_[seed] = {key, call, int64_t(step - host_.step)};
}

LrArg StepValuesBlock::lr(GpuBackend& backend, float lr) {
  if (host_set_ && lr == host_.lr) return {lr, device(backend)};
  return {lr, nullptr};
}

SeedArg StepValuesBlock::seed(GpuBackend& backend, uint64_t seed) {
  const auto it = seeds_.find(seed);
  if (it == seeds_.end()) return {seed, 0, 0, nullptr};
  return {it->second.key, it->second.call, it->second.step_offset, device(backend)};
}

StepArg StepValuesBlock::step(GpuBackend& backend, int64_t step) {
  if (host_set_ && uint64_t(step) == host_.step) return {step, device(backend)};
  return {step, nullptr};
}

// ---- GpuBackend ----------------------------------------------------------------------------

void GpuBackend::set_step_values(const StepValues& values) {
  impl_->step_values.set(*this, values);
}

uint64_t GpuBackend::dropout_seed(uint64_t key, uint64_t step, uint64_t call) {
  const uint64_t seed = step_seed(key, step, call);
  impl_->step_values.remember_seed(seed, key, step, call);
  return seed;
}

}  // namespace forge::FORGE_GPU_NS
