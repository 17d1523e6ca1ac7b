// decode.h: image files to RGB, by content, never by file name.
//
// JPEG through libjpeg-turbo (baseline, progressive, grey, CMYK); PNG, BMP, GIF (first frame),
// TGA, PSD, HDR, PNM: whatever stb_image reads. Grey, grey + alpha, RGBA and 16-bit images become
// 8-bit RGB (alpha dropped). The header's dimensions are checked before decoding, so a file
// claiming absurd dimensions, or (BMP, TGA, PSD, HDR, PNM) more pixels than its size can hold, is
// refused before any large allocation. A JPEG cut short is refused (libjpeg-turbo's warnings are
// errors here).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/image.h"

namespace forge::data {

// Largest accepted side and area: far above any photo this project trains on, far below what
// would exhaust memory (64 MP x 4 bytes = 256 MB).
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t(64) << 20;

// A file that cannot be turned into an image; what() names the file and the reason.
class DecodeError : public std::runtime_error {
 public:
  DecodeError(const std::string& file, const std::string& reason)
      : std::runtime_error(file + ": " + reason), file_(file) {}
  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name);
Image decode_image_file(const std::string& path);
// The bytes of a regular file (symlinks followed); anything else (a FIFO, a device) is refused
// without being opened.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace forge::data
