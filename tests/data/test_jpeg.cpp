// test_jpeg.cpp: JPEG decoding (libjpeg-turbo): valid files that stb_image's guards refused (bytes
// after the end-of-image marker, FF C4 inside a comment or APP segment) decode to the same pixels
// as the plain file; progressive, grey and CMYK files decode; files cut short are refused. Every
// JPEG is encoded here from a pattern image (stb_image_write, or libjpeg-turbo's compressor for
// what stb cannot write).
#include <doctest/doctest.h>
#include <turbojpeg.h>

#include <cmath>

#include "data/decode.h"
#include "tests/data/helpers.h"

using namespace forge::data;
using namespace forge::data::test;

namespace {

// The body of a Huffman table segment declaring 16 x 20 = 320 codes (at most 256 exist): what a
// naive scan for FF C4 would take for a corrupt table.
std::vector<uint8_t> fake_huffman_table() {
  std::vector<uint8_t> b{0xFF, 0xC4, 0x01, 0x55, 0x00};
  for (int i = 0; i < 16; ++i) b.push_back(20);
  return b;
}

// `jpg` with a segment (marker FF `marker`, then `body`) inserted right after SOI.
std::vector<uint8_t> with_segment(std::vector<uint8_t> jpg, uint8_t marker,
                                  const std::vector<uint8_t>& body) {
  const size_t len = body.size() + 2;  // the length field counts itself
  std::vector<uint8_t> seg{0xFF, marker, uint8_t(len >> 8), uint8_t(len & 0xFF)};
  seg.insert(seg.end(), body.begin(), body.end());
  jpg.insert(jpg.begin() + 2, seg.begin(), seg.end());
  return jpg;
}

// libjpeg-turbo's compressor, for what stb_image_write cannot make.
std::vector<uint8_t> tj_encode(const std::vector<uint8_t>& px, int w, int h, int pixel_format,
                               int subsampling, int flags) {
  tjhandle tj = tjInitCompress();
  REQUIRE(tj);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  const int rc =
      tjCompress2(tj, px.data(), w, 0, h, pixel_format, &out, &size, subsampling, 95, flags);
  std::vector<uint8_t> bytes(out, out + size);
  tjFree(out);
  tjDestroy(tj);
  REQUIRE(rc == 0);
  return bytes;
}

double mean_abs_error(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += std::abs(int(a[i]) - int(b[i]));
  return e / a.size();
}

}  // namespace

TEST_CASE("jpeg: bytes after the end-of-image marker, FF C4 in a comment or APP1 all decode") {
  const Image img = pattern(24, 16);
  const std::vector<uint8_t> base = encode(img, "jpg");
  const Image plain = decode_image(base, "plain.jpg");
  REQUIRE(plain.width == 24);
  CHECK(mean_abs_error(plain.rgb, img.rgb) < 30);

  // Trailing bytes as cameras and editors leave them: padding, a second image's start, markers.
  std::vector<uint8_t> trailing = base, tail = fake_huffman_table();
  tail.insert(tail.end(), {0xFF, 0xD8, 0xFF, 0xE0});
  for (int i = 0; i < 4000; ++i) tail.push_back(uint8_t(i * 37));
  trailing.insert(trailing.end(), tail.begin(), tail.end());
  std::vector<uint8_t> text = fake_huffman_table();
  text.insert(text.end(), 40, 'x');
  const std::vector<uint8_t> comment = with_segment(base, 0xFE, text);
  std::vector<uint8_t> exif = text;
  exif.insert(exif.begin(), {'E', 'x', 'i', 'f', 0, 0});
  const std::vector<uint8_t> app1 = with_segment(base, 0xE1, exif);
  for (const auto& [name, bytes] :
       {std::pair{"trailing.jpg", trailing}, std::pair{"comment.jpg", comment},
        std::pair{"app1.jpg", app1}}) {
    CAPTURE(name);
    Image back;
    REQUIRE_NOTHROW(back = decode_image(bytes, name));
    CHECK(back.width == 24);
    CHECK(back.height == 16);
    CHECK(back.rgb == plain.rgb);  // the same entropy-coded data: the same pixels
  }
}

TEST_CASE("jpeg: progressive, grey and CMYK files decode; a file cut short is refused") {
  const int w = 16, h = 12;
  const Image img = pattern(w, h);
  const Image prog =
      decode_image(tj_encode(img.rgb, w, h, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE), "p.jpg");
  CHECK(mean_abs_error(prog.rgb, img.rgb) < 30);

  std::vector<uint8_t> grey(size_t(w) * h);
  for (size_t i = 0; i < grey.size(); ++i) grey[i] = img.rgb[i * 3];
  const Image g = decode_image(tj_encode(grey, w, h, TJPF_GRAY, TJSAMP_GRAY, 0), "g.jpg");
  REQUIRE(g.rgb.size() == size_t(w) * h * 3);
  CHECK(std::abs(int(g.pixel(5, 7)[0]) - int(grey[7 * w + 5])) < 8);
  CHECK(g.pixel(5, 7)[0] == g.pixel(5, 7)[2]);  // grey replicated into every channel

  // Flat CMYK (inverted, as Adobe stores it) C' = 200, M' = 100, Y' = 255, K' = 128: R = C'K'/255.
  std::vector<uint8_t> cmyk;
  for (int i = 0; i < w * h; ++i) cmyk.insert(cmyk.end(), {200, 100, 255, 128});
  const Image c = decode_image(tj_encode(cmyk, w, h, TJPF_CMYK, TJSAMP_444, 0), "c.jpg");
  CHECK(std::abs(int(c.pixel(3, 3)[0]) - 200 * 128 / 255) <= 3);
  CHECK(std::abs(int(c.pixel(3, 3)[1]) - 100 * 128 / 255) <= 3);
  CHECK(std::abs(int(c.pixel(3, 3)[2]) - 128) <= 3);

  // Cut short, libjpeg-turbo would fill the rest with grey and only warn: refused instead.
  std::vector<uint8_t> cut = encode(pattern(64, 64), "jpg");
  cut.resize(cut.size() * 2 / 3);
  CHECK_THROWS_WITH_AS(decode_image(cut, "cut.jpg"), doctest::Contains("cut.jpg: corrupt JPEG"),
                       DecodeError);
}
