// decode.cpp: stb_image behind a size check (see decode.h).
#include "data/decode.h"

#include <stb/stb_image.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

namespace forge::data {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw DecodeError(path, std::string("cannot open: ") + std::strerror(errno));
  const std::streamsize size = in.tellg();
  if (size < 0) throw DecodeError(path, "cannot read its size");
  // Encoded files are far smaller than decoded ones; the same cap keeps a huge file out.
  if (size > kMaxImagePixels * 4) throw DecodeError(path, "file too large to be an image here");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw DecodeError(path, "read failed");
  return bytes;
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) throw DecodeError(name, "empty file (0 bytes)");
  if (bytes.size() > size_t(INT32_MAX)) throw DecodeError(name, "file too large");
  // stb_image decodes a JPEG cut short without complaint, filling the rest with grey: a JPEG must
  // end with its end-of-image marker (FF D9), allowing a little trailing padding.
  if (bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) {
    bool has_end = false;
    for (size_t i = bytes.size() - 1; i > 0 && i + 64 >= bytes.size() && !has_end; --i)
      has_end = bytes[i - 1] == 0xFF && bytes[i] == 0xD9;
    if (!has_end) throw DecodeError(name, "truncated JPEG (no end-of-image marker)");
  }
  const auto* data = bytes.data();
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels))
    throw DecodeError(name, std::string("not a readable image (") + stbi_failure_reason() + ")");
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide ||
      int64_t(w) * h > kMaxImagePixels)
    throw DecodeError(name, "header claims " + std::to_string(w) + "x" + std::to_string(h) +
                                " pixels, beyond the limit of " + std::to_string(kMaxImageSide) +
                                " per side and " + std::to_string(kMaxImagePixels >> 20) + " MP");
  // Asking for 3 channels converts grey, grey+alpha and RGBA; 16-bit PNGs come back as 8-bit
  // from stbi_load (stb scales them).
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, len, &w, &h, &channels, 3), stbi_image_free);
  if (!pixels)
    throw DecodeError(name, std::string("corrupt image (") + stbi_failure_reason() + ")");
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(pixels.get(), pixels.get() + size_t(w) * h * 3);
  return img;
}

Image decode_image_file(const std::string& path) {
  return decode_image(read_file_bytes(path), path);
}

}  // namespace forge::data
