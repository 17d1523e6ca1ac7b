// random_erasing.h: random erasing (Zhong et al. 2020) as timm's RandomErasing, on a normalised
// planar image (so after normalisation, where the erased values N(0, 1) look like image values):
//
//   with probability `prob`: up to 10 attempts to place a rectangle of area
//   U(min_area, max_area) x image area and aspect ratio exp(U(log min_aspect, log 1/min_aspect)),
//   sides rounded; the first that fits strictly inside the image is filled, at a uniform place,
//   with per-pixel N(0, 1) values ("pixel", timm's default), one N(0, 1) value per channel
//   ("rand"), or zeros ("const").
#pragma once
#include <string>

#include "engine/random.h"

namespace forge::data {

struct ErasingOptions {
  float prob = 0.f;
  std::string mode = "pixel";  // pixel | rand | const
  float min_area = 0.02f, max_area = 1.f / 3.f, min_aspect = 0.3f;
};

struct ErasedBox {
  int top = 0, left = 0, height = 0, width = 0;  // height 0: nothing erased
};

// Erases at most one rectangle of the image (channels x height x width floats); returns it.
// Throws std::invalid_argument naming an unknown mode.
ErasedBox random_erase(float* chw, int channels, int height, int width,
                       const ErasingOptions& options, Generator& gen);

}  // namespace forge::data
