// image.h: an 8-bit RGB image in memory (interleaved, row-major), the unit the data layer works
// in until normalisation turns it into floats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace forge::data {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3, row-major, R G B

  uint8_t* pixel(int x, int y) { return &rgb[(size_t(y) * width + x) * 3]; }
  const uint8_t* pixel(int x, int y) const { return &rgb[(size_t(y) * width + x) * 3]; }
  static Image blank(int w, int h, uint8_t fill = 0) {
    return Image{w, h, std::vector<uint8_t>(size_t(w) * h * 3, fill)};
  }
};

}  // namespace forge::data
