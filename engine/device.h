// device.h: where a tensor's memory lives and which backend computes on it.
//
//   cpu  - native C++ (OpenMP loops, oneDNN GEMM/convolution). Also the oracle the others are
//          checked against.
//   sim  - the CUDA backend's sources and kernels compiled by g++ against kernels/sim and run on
//          the CPU: how every kernel is run and tested on machines without a GPU.
//   cuda - the CUDA backend compiled by nvcc, running on a real GPU.
#pragma once
#include <string>
#include <string_view>

namespace forge {

enum class Device { cpu, sim, cuda };

const char* device_name(Device d);
// Parses "cpu", "sim" or "cuda"; throws std::invalid_argument naming the text otherwise.
Device parse_device(std::string_view text);

}  // namespace forge
