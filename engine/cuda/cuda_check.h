// cuda_check.h: the one way the CUDA build's host code turns a failed CUDA runtime call into an
// exception, "cuda: <what> failed (<error name>: <error string>)". Under nvcc only: the sim build
// has no cudaError_t to check (its runtime throws itself).
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace forge {

inline void check_cuda(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess)
    throw std::runtime_error("cuda: " + what + " failed (" + cudaGetErrorName(status) + ": " +
                             cudaGetErrorString(status) + ")");
}

}  // namespace forge
