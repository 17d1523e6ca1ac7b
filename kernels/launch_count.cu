// launch_count.cu: how many kernels this build of the GPU backend has launched, for host code
// (engine/cuda/*.cpp, compiled without cuda_compat.h under nvcc) to read. The count itself is kept
// where launches happen: by FORGE_LAUNCH under nvcc, by the sim's launch() under g++.
#include "kernels/kernel_util.cuh"

namespace forge::FORGE_GPU_NS {

uint64_t kernel_launch_total() {
  return kernel_launch_count();
}

}  // namespace forge::FORGE_GPU_NS
