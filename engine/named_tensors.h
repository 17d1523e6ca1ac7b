// named_tensors.h: a list of (name, tensor) pairs, the currency of optimizer state, checkpoints
// and safetensors files. A vector, not a map: the order is the caller's and is kept.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace forge {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

}  // namespace forge
