// precision.cpp: the --precision and --tf32 options applied to a backend (see precision.h).
#include "train/precision.h"

#include "train/options.h"

namespace forge::train {

MatmulPrecision matmul_precision_of(const std::string& precision, bool tf32) {
  if (precision != "fp32" && precision != "bf16")
    throw OptionError("--precision '" + precision + "': expected fp32 or bf16");
  if (precision == "bf16" && tf32)
    throw OptionError(
        "--tf32 with --precision bf16: tf32 applies to fp32 GEMMs, and at bf16 every GEMM already "
        "takes bf16 inputs; use one or the other");
  if (precision == "bf16") return MatmulPrecision::bf16;
  return tf32 ? MatmulPrecision::tf32 : MatmulPrecision::fp32;
}

ScopedPrecision::ScopedPrecision(Device device, const std::string& precision, bool tf32)
    : backend_(backend(device)), previous_(backend_.matmul_precision()) {
  const MatmulPrecision wanted = matmul_precision_of(precision, tf32);
  if (device == Device::cpu && wanted != MatmulPrecision::fp32)
    throw OptionError(std::string(wanted == MatmulPrecision::bf16 ? "--precision bf16" : "--tf32") +
                      ": device cpu computes in fp32 only; " + matmul_precision_name(wanted) +
                      " runs on --device sim or cuda");
  backend_.set_matmul_precision(wanted);
}

ScopedPrecision::~ScopedPrecision() {
  backend_.set_matmul_precision(previous_);
}

}  // namespace forge::train
