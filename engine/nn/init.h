// init.h: weight initialisers. Each returns a new tensor of the given shape on `device`, drawn
// from the generator on the host (so every device gets the same initial weights).
//
//   kaiming_normal   N(0, 2 / fan_in)                 He et al. 2015, for ReLU networks
//   xavier_uniform   U(-a, a), a = sqrt(6 / (fan_in + fan_out))   Glorot and Bengio 2010
//   trunc_normal     N(0, std^2) redrawn outside [-2 std, 2 std]  (ViT position embeddings)
#pragma once
#include "engine/tensor.h"

namespace forge::nn {

Tensor kaiming_normal(const Shape& shape, int64_t fan_in, Generator& gen, Device device);
Tensor xavier_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen,
                      Device device);
Tensor trunc_normal(const Shape& shape, float std, Generator& gen, Device device);

}  // namespace forge::nn
