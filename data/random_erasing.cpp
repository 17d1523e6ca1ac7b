// random_erasing.cpp: timm's RandomErasing on a planar float image (see random_erasing.h).
#include "data/random_erasing.h"

#include <cmath>
#include <stdexcept>

namespace forge::data {

ErasedBox random_erase(float* chw, int channels, int height, int width, const ErasingOptions& o,
                       Generator& gen) {
  if (o.mode != "pixel" && o.mode != "rand" && o.mode != "const")
    throw std::invalid_argument("random erasing mode '" + o.mode +
                                "': expected pixel, rand or const");
  ErasedBox box;
  if (gen.uniform() >= o.prob) return box;
  const double area = double(height) * width;
  const double log_min = std::log(o.min_aspect), log_max = std::log(1.0 / o.min_aspect);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = (o.min_area + (o.max_area - o.min_area) * gen.uniform()) * area;
    const double aspect = std::exp(log_min + (log_max - log_min) * gen.uniform());
    const int h = int(std::lround(std::sqrt(target * aspect)));
    const int w = int(std::lround(std::sqrt(target / aspect)));
    if (h <= 0 || w <= 0 || h >= height || w >= width) continue;
    box = {int(gen.below(uint64_t(height - h + 1))), int(gen.below(uint64_t(width - w + 1))), h, w};
    const int64_t plane = int64_t(height) * width;
    for (int c = 0; c < channels; ++c) {
      const float channel_value = o.mode == "rand" ? float(gen.normal()) : 0.f;
      for (int y = box.top; y < box.top + h; ++y)
        for (int x = box.left; x < box.left + w; ++x)
          chw[c * plane + int64_t(y) * width + x] =
              o.mode == "pixel" ? float(gen.normal()) : channel_value;
    }
    return box;
  }
  return box;
}

}  // namespace forge::data
