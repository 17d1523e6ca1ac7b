// decode.cpp: stb_image behind a size check (see decode.h).
#include "data/decode.h"

#include <stb/stb_image.h>

#include <algorithm>
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

// Debian's stb_image (2.27) writes past a 257-entry array when a JPEG Huffman table (DHT
// segment) declares more than 256 codes; our fuzzer found it (scripts/fuzz_decode.sh). stb 2.28
// fixed it upstream; until Debian ships that, such tables are refused here first. In JPEG data a
// 0xFF byte inside entropy-coded data is always followed by 0x00 or a restart marker, so every
// FF C4 in the file starts a real DHT segment:
//   FF C4, length (2 bytes, big-endian, itself included), then tables of
//   [class/id byte][16 counts][sum(counts) symbols]
// stb takes a file as JPEG when it starts with FF, any further FF fill bytes, then D8 (SOI).
static bool looks_like_jpeg(const std::vector<uint8_t>& b) {
  size_t i = 0;
  while (i < b.size() && b[i] == 0xFF) ++i;
  return i > 0 && i < b.size() && b[i] == 0xD8;
}

static void check_jpeg_huffman_tables(const std::vector<uint8_t>& b, const std::string& name) {
  // Walk each DHT segment the way stb does: tables are read while the declared length lasts,
  // each one in full even when it runs past the segment, bytes past the end reading as 0.
  auto at = [&](size_t p) -> size_t { return p < b.size() ? b[p] : 0; };
  for (size_t i = 2; i + 4 <= b.size(); ++i) {
    if (b[i] != 0xFF || b[i + 1] != 0xC4) continue;
    long remaining = long((at(i + 2) << 8) | at(i + 3)) - 2;
    for (size_t p = i + 4; remaining > 0;) {
      size_t codes = 0;
      for (int k = 1; k <= 16; ++k) codes += at(p + k);
      if (codes > 256)
        throw DecodeError(name, "corrupt JPEG (a Huffman table declares " + std::to_string(codes) +
                                    " codes, at most 256 exist)");
      p += 17 + codes;
      remaining -= long(17 + codes);
    }
  }
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) throw DecodeError(name, "empty file (0 bytes)");
  if (bytes.size() > size_t(INT32_MAX)) throw DecodeError(name, "file too large");
  // stb_image decodes a JPEG cut short without complaint, filling the rest with grey: a JPEG must
  // end with its end-of-image marker (FF D9), allowing a little trailing padding.
  if (looks_like_jpeg(bytes)) {
    bool has_end = false;
    for (size_t i = bytes.size() - 1; i > 0 && i + 64 >= bytes.size() && !has_end; --i)
      has_end = bytes[i - 1] == 0xFF && bytes[i] == 0xD9;
    if (!has_end) throw DecodeError(name, "truncated JPEG (no end-of-image marker)");
    check_jpeg_huffman_tables(bytes, name);
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
