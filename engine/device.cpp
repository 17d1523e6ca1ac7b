// device.cpp: device names and the registry of backends.
#include "engine/device.h"

#include <mutex>
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/random.h"

namespace forge {

const char* device_name(Device d) {
  switch (d) {
    case Device::cpu:
      return "cpu";
    case Device::sim:
      return "sim";
    case Device::cuda:
      return "cuda";
  }
  return "?";
}

Device parse_device(std::string_view text) {
  if (text == "cpu") return Device::cpu;
  if (text == "sim") return Device::sim;
  if (text == "cuda") return Device::cuda;
  throw std::invalid_argument("unknown device '" + std::string(text) +
                              "' (expected cpu, sim or cuda)");
}

namespace {
struct Registry {
  std::mutex mutex;
  Backend* (*factories[3])() = {nullptr, nullptr, nullptr};
  Backend* instances[3] = {nullptr, nullptr, nullptr};
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

void register_backend(Device device, Backend* (*factory)()) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[static_cast<int>(device)] = factory;
}

const char* matmul_precision_name(MatmulPrecision precision) {
  switch (precision) {
    case MatmulPrecision::fp32:
      return "fp32";
    case MatmulPrecision::tf32:
      return "tf32";
    case MatmulPrecision::bf16:
      return "bf16";
  }
  return "?";
}

void Backend::set_matmul_precision(MatmulPrecision precision) {
  if (precision != MatmulPrecision::fp32)
    throw std::invalid_argument(std::string("device ") + device_name(device()) +
                                " computes in fp32 only; " + matmul_precision_name(precision) +
                                " matmuls run on sim and cuda");
}

void Backend::set_step_values(const StepValues&) {}

// Reached only through a caller that ignored gelu_keeps_slope() == false (engine/backend.h).
static void no_gelu_slope(Device device, const char* entry) {
  throw std::logic_error(std::string(entry) + ": device " + device_name(device) +
                         " recomputes GELU's slope in backward (gelu_keeps_slope() is false)");
}
void Backend::gelu_slope_forward(const float*, float*, float*, int64_t, float, uint64_t) {
  no_gelu_slope(device(), "gelu_slope_forward");
}
void Backend::gelu_slope_backward(const float*, const float*, float*, int64_t, float, uint64_t) {
  no_gelu_slope(device(), "gelu_slope_backward");
}

uint64_t Backend::dropout_seed(uint64_t key, uint64_t step, uint64_t call) {
  return step_seed(key, step, call);
}

Backend& backend(Device device) {
  if (device == Device::cpu) return cpu_backend();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const int i = static_cast<int>(device);
  if (!r.instances[i]) {
    if (!r.factories[i])
      throw std::runtime_error(std::string("device '") + device_name(device) +
                               "' is not built into this program (configure with " +
                               (device == Device::sim ? "-DFORGE_SIM=ON" : "-DFORGE_CUDA=ON") +
                               ")");
    r.instances[i] = r.factories[i]();  // may throw, e.g. cuda without a driver
  }
  return *r.instances[i];
}

}  // namespace forge
