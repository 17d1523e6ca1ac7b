// test_devices.h: which GPU devices the test_gpu_* programs check, from FORGE_TEST_DEVICES (and
// AtPrecision, a device's matmul precision for a scope).
//
//   unset             sim always; cuda too when its backend can be created, otherwise a MESSAGE
//                     says it was skipped (a machine without a GPU stays green)
//   a list, "sim,cuda" / "cuda" / "sim"
//                     exactly those devices, and one that cannot be created is a FAILURE: on a GPU
//                     machine, FORGE_TEST_DEVICES=cuda runs every check on the GPU only (the
//                     emulator passes are skipped) and a broken driver or cuBLAS cannot pass.
#pragma once
#include <vector>

#include "engine/backend.h"
#include "engine/device.h"

namespace forge::testing {

// The devices a `setting` (FORGE_TEST_DEVICES's text, nullptr when unset) selects. Throws
// std::runtime_error naming the device when a listed one cannot be created, and
// std::invalid_argument for a name that is not sim or cuda. Registers the builtin backends.
std::vector<Device> gpu_test_devices_for(const char* setting);

// gpu_test_devices_for(getenv("FORGE_TEST_DEVICES")), worked out once. A failure is rethrown on
// every call, so each test case that asks fails.
const std::vector<Device>& gpu_test_devices();

// Whether Device::sim is among them: checks of the emulator itself run only then.
bool sim_selected();

// Sets a device's matmul precision for a scope.
class AtPrecision {
 public:
  AtPrecision(Device device, MatmulPrecision precision)
      : backend_(backend(device)), previous_(backend_.matmul_precision()) {
    backend_.set_matmul_precision(precision);
  }
  ~AtPrecision() { backend_.set_matmul_precision(previous_); }
  AtPrecision(const AtPrecision&) = delete;
  AtPrecision& operator=(const AtPrecision&) = delete;

 private:
  Backend& backend_;
  MatmulPrecision previous_;
};

}  // namespace forge::testing
