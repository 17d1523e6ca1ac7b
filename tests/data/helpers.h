// helpers.h: what the data tests share: a temporary folder, a test pattern image, encoding it
// (stb_image_write) and writing files and class folders of such images.
#pragma once
#include <doctest/doctest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "tests/temp_dir.h"

namespace forge::data::test {

namespace fs = std::filesystem;

// A fresh temporary folder, removed at the end of the test.
struct TempDir : forge::test::TempDir {
  TempDir() : forge::test::TempDir("data") {}
};

// A w x h image whose pixel (x, y) is (x * 7 + y, y * 5, x ^ y) mod 256: every pixel distinct
// enough to see where it went.
inline Image pattern(int w, int h) {
  Image img = Image::blank(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = uint8_t(x * 7 + y);
      p[1] = uint8_t(y * 5);
      p[2] = uint8_t(x ^ y);
    }
  return img;
}

inline void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

inline std::vector<uint8_t> encode(const Image& img, const std::string& format, int channels = 3) {
  // Reduce to the requested channel count (1: grey from R, 4: RGBA with alpha 255).
  std::vector<uint8_t> px;
  for (size_t i = 0; i < size_t(img.width) * img.height; ++i) {
    const int colours = channels >= 3 ? 3 : 1;  // grey (+ alpha) takes the red channel
    for (int c = 0; c < colours; ++c) px.push_back(img.rgb[i * 3 + c]);
    if (channels == 2 || channels == 4) px.push_back(255);  // opaque alpha
  }
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int n) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
  };
  if (format == "png")
    stbi_write_png_to_func(sink, &out, img.width, img.height, channels, px.data(), 0);
  if (format == "bmp")
    stbi_write_bmp_to_func(sink, &out, img.width, img.height, channels, px.data());
  if (format == "tga")  // run-length coded (stb's default)
    stbi_write_tga_to_func(sink, &out, img.width, img.height, channels, px.data());
  if (format == "jpg")
    stbi_write_jpg_to_func(sink, &out, img.width, img.height, channels, px.data(), 95);
  REQUIRE(!out.empty());
  return out;
}

// A class folder layout with `per_class` pattern images in each of `classes`.
inline void make_folder(const fs::path& root, const std::vector<std::string>& classes,
                        int per_class) {
  for (size_t c = 0; c < classes.size(); ++c)
    for (int i = 0; i < per_class; ++i) {
      Image img = pattern(20 + i, 16 + int(c));
      write_bytes(root / classes[c] / ("img" + std::to_string(i) + ".png"), encode(img, "png"));
    }
}

}  // namespace forge::data::test
