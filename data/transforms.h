// transforms.h: geometry and colour operations on 8-bit RGB images, and the normalisation that
// turns an image into the model's float input.
//
// Resizing: area averaging when shrinking (each output pixel is the mean of the input area it
// covers, so no aliasing), bilinear when enlarging. Rotation maps each output pixel back into
// the input (inverse mapping, bilinear sampling) and fills what falls outside with a constant.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/random.h"

namespace forge::data {

enum class Fit { crop, pad };            // keep the aspect ratio by a centre crop, or by padding
Fit parse_fit(const std::string& name);  // "crop" or "pad"; throws naming anything else
const char* fit_name(Fit fit);

Image resize(const Image& img, int width, int height);
// Square output of side `size`: centre-crop (or pad with `fill`) to a square, then resize.
Image resize_square(const Image& img, int size, Fit fit, uint8_t fill = 0);
Image crop(const Image& img, int x, int y, int width, int height);
Image flip_horizontal(const Image& img);
Image flip_vertical(const Image& img);
// Rotation by `degrees` counter-clockwise about the centre, same size, outside filled with `fill`.
Image rotate(const Image& img, float degrees, uint8_t fill = 0);
// Multiplies every channel by `factor`, saturating at 255.
Image scale_brightness(const Image& img, float factor);
// Separable Gaussian smoothing, kernel radius ceil(3 sigma), borders clamped.
Image gaussian_blur(const Image& img, float sigma);

// The seed paper's training augmentations (its Table 2), each applied with its own probability.
struct AugmentOptions {
  float rotate_prob = 0.5f, rotate_degrees = 15.f;  // angle uniform in [-deg, +deg]
  uint8_t fill = 0;
  float hflip_prob = 0.5f, vflip_prob = 0.f;
  float crop_prob = 0.5f, crop_scale_min = 0.8f, crop_scale_max = 1.f;  // area fraction
  float crop_ratio_min = 3.f / 4, crop_ratio_max = 4.f / 3;             // aspect ratio
  float brightness_prob = 0.5f, brightness_min = 0.8f, brightness_max = 1.2f;
  float blur_prob = 0.2f, blur_sigma_min = 0.1f, blur_sigma_max = 1.f;
};

// One random augmentation of an image of side `size`, drawn from `gen`; the output has the same
// size as the input.
Image augment(const Image& img, const AugmentOptions& options, Generator& gen);

struct Normalization {
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f}, std{0.5f, 0.5f, 0.5f};
};
// Writes the image as planar floats (c, h, w): (value / 255 - mean[c]) / std[c].
void normalize_into(const Image& img, const Normalization& norm, float* chw);

}  // namespace forge::data
