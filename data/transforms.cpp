// transforms.cpp: the image operations of transforms.h.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace forge::data {

static uint8_t to_byte(float v) {
  return static_cast<uint8_t>(std::clamp(v + 0.5f, 0.f, 255.f));
}

// Bilinear sample at continuous coordinates (pixel centres at integer + 0.5), borders clamped.
static void sample_bilinear(const Image& img, float fx, float fy, float out[3]) {
  fx -= 0.5f;
  fy -= 0.5f;
  const int x0 = static_cast<int>(std::floor(fx)), y0 = static_cast<int>(std::floor(fy));
  const float ax = fx - x0, ay = fy - y0;
  auto at = [&](int x, int y) {
    return img.pixel(std::clamp(x, 0, img.width - 1), std::clamp(y, 0, img.height - 1));
  };
  const uint8_t *p00 = at(x0, y0), *p10 = at(x0 + 1, y0), *p01 = at(x0, y0 + 1),
                *p11 = at(x0 + 1, y0 + 1);
  for (int c = 0; c < 3; ++c)
    out[c] = (1 - ay) * ((1 - ax) * p00[c] + ax * p10[c]) + ay * ((1 - ax) * p01[c] + ax * p11[c]);
}

// Area averaging along one axis: output cell i covers input [i s, (i+1) s), s = in / out, each
// input pixel weighted by the length of its overlap with the cell.
static std::vector<std::vector<std::pair<int, float>>> area_weights(int in, int out) {
  std::vector<std::vector<std::pair<int, float>>> w(out);
  const double scale = double(in) / out;
  for (int i = 0; i < out; ++i) {
    const double lo = i * scale, hi = (i + 1) * scale;
    for (int k = static_cast<int>(lo); k < in && k < hi; ++k) {
      const double overlap = std::min<double>(hi, k + 1) - std::max<double>(lo, k);
      if (overlap > 0) w[i].emplace_back(k, static_cast<float>(overlap / scale));
    }
  }
  return w;
}

Fit parse_fit(const std::string& name) {
  if (name == "crop") return Fit::crop;
  if (name == "pad") return Fit::pad;
  throw std::invalid_argument("fit '" + name + "' is neither crop nor pad");
}

const char* fit_name(Fit fit) {
  return fit == Fit::crop ? "crop" : "pad";
}

Image resize(const Image& img, int width, int height) {
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("resize: target " + std::to_string(width) + "x" +
                                std::to_string(height) + " is empty");
  Image out = Image::blank(width, height);
  if (width <= img.width && height <= img.height) {
    const auto wx = area_weights(img.width, width), wy = area_weights(img.height, height);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        float acc[3] = {0, 0, 0};
        for (auto [sy, ay] : wy[y])
          for (auto [sx, ax] : wx[x]) {
            const uint8_t* p = img.pixel(sx, sy);
            for (int c = 0; c < 3; ++c) acc[c] += ay * ax * p[c];
          }
        for (int c = 0; c < 3; ++c) out.pixel(x, y)[c] = to_byte(acc[c]);
      }
    return out;
  }
  const float sx = float(img.width) / width, sy = float(img.height) / height;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      float v[3];
      sample_bilinear(img, (x + 0.5f) * sx, (y + 0.5f) * sy, v);
      for (int c = 0; c < 3; ++c) out.pixel(x, y)[c] = to_byte(v[c]);
    }
  return out;
}

Image crop(const Image& img, int x, int y, int width, int height) {
  if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > img.width ||
      y + height > img.height)
    throw std::invalid_argument("crop: window " + std::to_string(width) + "x" +
                                std::to_string(height) + " at (" + std::to_string(x) + ", " +
                                std::to_string(y) + ") is outside the image");
  Image out = Image::blank(width, height);
  for (int r = 0; r < height; ++r)
    std::copy_n(img.pixel(x, y + r), size_t(width) * 3, out.pixel(0, r));
  return out;
}

Image resize_square(const Image& img, int size, Fit fit, uint8_t fill) {
  const int side =
      fit == Fit::crop ? std::min(img.width, img.height) : std::max(img.width, img.height);
  Image square;
  if (fit == Fit::crop) {
    square = crop(img, (img.width - side) / 2, (img.height - side) / 2, side, side);
  } else {
    square = Image::blank(side, side, fill);
    const int ox = (side - img.width) / 2, oy = (side - img.height) / 2;
    for (int r = 0; r < img.height; ++r)
      std::copy_n(img.pixel(0, r), size_t(img.width) * 3, square.pixel(ox, oy + r));
  }
  return side == size ? square : resize(square, size, size);
}

Image flip_horizontal(const Image& img) {
  Image out = img;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      std::copy_n(img.pixel(img.width - 1 - x, y), 3, out.pixel(x, y));
  return out;
}

Image flip_vertical(const Image& img) {
  Image out = img;
  for (int y = 0; y < img.height; ++y)
    std::copy_n(img.pixel(0, img.height - 1 - y), size_t(img.width) * 3, out.pixel(0, y));
  return out;
}

Image rotate(const Image& img, float degrees, uint8_t fill) {
  // Inverse mapping: the output pixel at offset d from the centre samples the input at R(t) d,
  //   x_in = cos t dx - sin t dy,   y_in = sin t dx + cos t dy.
  // So input content at d_in appears at R(-t) d_in: with y pointing down, a point right of the
  // centre moves up for t = 90 degrees: a counter-clockwise turn on screen.
  const double t = degrees * M_PI / 180.0, c = std::cos(t), s = std::sin(t);
  const double cx = img.width / 2.0, cy = img.height / 2.0;
  Image out = Image::blank(img.width, img.height, fill);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      const double sx = c * dx - s * dy + cx, sy = s * dx + c * dy + cy;
      if (sx < 0 || sy < 0 || sx >= img.width || sy >= img.height) continue;  // stays `fill`
      // Exact quarter turns land on pixel centres: copy them so 90 degrees permutes exactly.
      const double rx = std::round(sx - 0.5), ry = std::round(sy - 0.5);
      if (std::fabs(sx - 0.5 - rx) < 1e-6 && std::fabs(sy - 0.5 - ry) < 1e-6) {
        std::copy_n(img.pixel(int(rx), int(ry)), 3, out.pixel(x, y));
        continue;
      }
      float v[3];
      sample_bilinear(img, float(sx), float(sy), v);
      for (int k = 0; k < 3; ++k) out.pixel(x, y)[k] = to_byte(v[k]);
    }
  return out;
}

Image scale_brightness(const Image& img, float factor) {
  Image out = img;
  for (uint8_t& v : out.rgb) v = to_byte(v * factor);
  return out;
}

Image gaussian_blur(const Image& img, float sigma) {
  if (sigma <= 0) return img;
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<float> k(2 * radius + 1);
  float total = 0;
  for (int i = -radius; i <= radius; ++i)
    total += k[i + radius] = std::exp(-0.5f * i * i / (sigma * sigma));
  for (float& v : k) v /= total;
  // Separable: rows into a float buffer, then columns.
  std::vector<float> tmp(img.rgb.size());
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c) {
        float acc = 0;
        for (int i = -radius; i <= radius; ++i)
          acc += k[i + radius] * img.pixel(std::clamp(x + i, 0, img.width - 1), y)[c];
        tmp[(size_t(y) * img.width + x) * 3 + c] = acc;
      }
  Image out = img;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c) {
        float acc = 0;
        for (int i = -radius; i <= radius; ++i)
          acc += k[i + radius] *
                 tmp[(size_t(std::clamp(y + i, 0, img.height - 1)) * img.width + x) * 3 + c];
        out.pixel(x, y)[c] = to_byte(acc);
      }
  return out;
}

static float uniform(Generator& gen, float lo, float hi) {
  return lo + (hi - lo) * static_cast<float>(gen.uniform());
}

Image augment(const Image& input, const AugmentOptions& o, Generator& gen) {
  Image img = input;
  // Random resized crop: an area fraction and aspect ratio, a window of that shape placed
  // uniformly, then resized back to the input's size.
  if (gen.uniform() < o.crop_prob) {
    const float area = uniform(gen, o.crop_scale_min, o.crop_scale_max) * img.width * img.height;
    const float ratio =
        std::exp(uniform(gen, std::log(o.crop_ratio_min), std::log(o.crop_ratio_max)));
    const int w = std::clamp(static_cast<int>(std::round(std::sqrt(area * ratio))), 1, img.width);
    const int h = std::clamp(static_cast<int>(std::round(std::sqrt(area / ratio))), 1, img.height);
    const int x = static_cast<int>(gen.below(img.width - w + 1));
    const int y = static_cast<int>(gen.below(img.height - h + 1));
    img = resize(crop(img, x, y, w, h), input.width, input.height);
  }
  if (gen.uniform() < o.rotate_prob)
    img = rotate(img, uniform(gen, -o.rotate_degrees, o.rotate_degrees), o.fill);
  if (gen.uniform() < o.hflip_prob) img = flip_horizontal(img);
  if (gen.uniform() < o.vflip_prob) img = flip_vertical(img);
  if (gen.uniform() < o.brightness_prob)
    img = scale_brightness(img, uniform(gen, o.brightness_min, o.brightness_max));
  if (gen.uniform() < o.blur_prob)
    img = gaussian_blur(img, uniform(gen, o.blur_sigma_min, o.blur_sigma_max));
  return img;
}

void normalize_into(const Image& img, const Normalization& n, float* chw) {
  const size_t plane = size_t(img.width) * img.height;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c)
      chw[c * plane + p] = (img.rgb[p * 3 + c] / 255.f - n.mean[c]) / n.std[c];
}

}  // namespace forge::data
