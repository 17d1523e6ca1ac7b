// conv_path.h: which convolution the GPU backend runs, from the FORGE_CONV environment variable,
// read when the backend is made (engine/cuda/gpu_impl.h):
//
//   unset, "" or "cudnn"   cuDNN on Device::cuda (engine/cuda/cudnn_conv.h) where the build has it
//                          (FORGE_CUDNN), the im2col kernels (kernels/conv.cu) everywhere else
//   "im2col"               the im2col kernels on cuda too, so a GPU run can compare the two paths
//
// Device::sim has no cuDNN and always runs im2col; it still refuses a value that is neither, so a
// typo is not silently ignored.
#pragma once
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifndef FORGE_GPU_NS
#error "FORGE_GPU_NS must be defined (gpu_cuda or gpu_sim) by the build"
#endif

namespace forge::FORGE_GPU_NS {

enum class ConvPath { cudnn, im2col };

inline ConvPath conv_path_from_env() {
  const char* text = std::getenv("FORGE_CONV");
  const std::string value = text ? text : "";
  if (value.empty() || value == "cudnn") return ConvPath::cudnn;
  if (value == "im2col") return ConvPath::im2col;
  throw std::invalid_argument("FORGE_CONV must be cudnn or im2col, not '" + value + "'");
}

}  // namespace forge::FORGE_GPU_NS
