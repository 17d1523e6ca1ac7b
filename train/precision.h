// precision.h: --precision fp32|bf16 and --tf32 (the options table, train/options.cpp) turned into
// the GPU backend's matmul precision (engine/backend.h, docs/MIXED_PRECISION.md), for train,
// eval, predict and bench alike.
#pragma once
#include <string>

#include "engine/backend.h"
#include "engine/device.h"

namespace forge::train {

// The backend setting that --precision `precision` (fp32 or bf16) and --tf32 ask for. Throws
// OptionError naming the flags for an unknown precision or --tf32 with bf16 (tf32 is a choice for
// fp32 GEMMs; at bf16 every GEMM already runs on the tensor cores).
MatmulPrecision matmul_precision_of(const std::string& precision, bool tf32);

// Sets `device`'s matmul precision for the life of the scope and restores the previous one at its
// end (the setting belongs to the process-wide backend, and a program may run more than once in a
// process, as the tests do). Throws OptionError naming the flag and the device where the device
// cannot compute so: cpu is fp32 only.
class ScopedPrecision {
 public:
  ScopedPrecision(Device device, const std::string& precision, bool tf32);
  ~ScopedPrecision();
  ScopedPrecision(const ScopedPrecision&) = delete;
  ScopedPrecision& operator=(const ScopedPrecision&) = delete;

 private:
  Backend& backend_;
  MatmulPrecision previous_;
};

}  // namespace forge::train
