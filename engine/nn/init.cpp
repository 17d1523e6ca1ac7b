// init.cpp: the initialisers of init.h.
#include "engine/nn/init.h"

#include <cmath>

namespace forge::nn {

Tensor kaiming_normal(const Shape& shape, int64_t fan_in, Generator& gen, Device device) {
  return Tensor::randn(shape, gen, 0.f, std::sqrt(2.f / static_cast<float>(fan_in)), device);
}

Tensor xavier_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen,
                      Device device) {
  const float a = std::sqrt(6.f / static_cast<float>(fan_in + fan_out));
  return Tensor::uniform(shape, gen, -a, a, device);
}

Tensor trunc_normal(const Shape& shape, float std, Generator& gen, Device device) {
  std::vector<float> v(shape_numel(shape));
  for (float& x : v) {
    double z;
    do z = gen.normal();
    while (z < -2.0 || z > 2.0);  // rejection: about 4.6% of draws are redrawn
    x = static_cast<float>(z) * std;
  }
  return Tensor::from_vector(v, shape, device);
}

}  // namespace forge::nn
