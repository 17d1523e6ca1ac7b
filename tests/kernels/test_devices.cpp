// test_devices.cpp: FORGE_TEST_DEVICES for the GPU tests (see test_devices.h).
#include "tests/kernels/test_devices.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"

namespace forge::testing {

std::vector<Device> gpu_test_devices_for(const char* setting) {
  register_builtin_backends();
  if (!setting) {
    std::vector<Device> devices{Device::sim};
    try {
      backend(Device::cuda);
      devices.push_back(Device::cuda);
    } catch (const std::exception& e) {
      MESSAGE("Device::cuda skipped (FORGE_TEST_DEVICES=cuda makes this a failure): "
              << std::string(e.what()));
    }
    return devices;
  }
  std::vector<Device> devices;
  std::string_view rest(setting);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view name = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (name != "sim" && name != "cuda")
      throw std::invalid_argument("FORGE_TEST_DEVICES='" + std::string(setting) +
                                  "': expected a comma-separated list of sim and cuda, got '" +
                                  std::string(name) + "'");
    const Device device = parse_device(name);
    try {
      backend(device);
    } catch (const std::exception& e) {
      throw std::runtime_error("FORGE_TEST_DEVICES='" + std::string(setting) + "' asks for " +
                               std::string(name) + ", which cannot be used: " + e.what());
    }
    if (std::find(devices.begin(), devices.end(), device) == devices.end())
      devices.push_back(device);
  }
  if (devices.empty()) throw std::invalid_argument("FORGE_TEST_DEVICES is set but names no device");
  return devices;
}

const std::vector<Device>& gpu_test_devices() {
  static std::exception_ptr failure;
  static const std::vector<Device> devices = [] {
    try {
      return gpu_test_devices_for(std::getenv("FORGE_TEST_DEVICES"));
    } catch (...) {
      failure = std::current_exception();
      return std::vector<Device>();
    }
  }();
  if (failure) std::rethrow_exception(failure);
  return devices;
}

bool sim_selected() {
  const auto& devices = gpu_test_devices();
  return std::find(devices.begin(), devices.end(), Device::sim) != devices.end();
}

}  // namespace forge::testing
