// test_data.cpp: decoding by content, the augmentations' effects, the split, the loader, and every
// kind of bad input. Images are made by the test itself (stb_image_write, or by hand where stb
// cannot write the format) in a temporary folder.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/dataset.h"
#include "data/decode.h"
#include "data/loader.h"
#include "data/split.h"
#include "data/transforms.h"
#include "tests/data/helpers.h"

using namespace forge;
using namespace forge::data;
using namespace forge::data::test;
namespace fs = std::filesystem;

namespace {

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0xFFFFFFFFu) {
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc;
}

void put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

// A 16-bit RGB PNG written by hand (stb cannot write one): zlib with one stored block.
std::vector<uint8_t> png16(int w, int h, uint16_t value) {
  std::vector<uint8_t> raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);  // filter: none
    for (int x = 0; x < w * 3; ++x) {
      raw.push_back(uint8_t(value >> 8));
      raw.push_back(uint8_t(value & 0xFF));
    }
  }
  std::vector<uint8_t> z{0x78,
                         0x01,
                         0x01,
                         uint8_t(raw.size() & 0xFF),
                         uint8_t(raw.size() >> 8),
                         uint8_t(~raw.size() & 0xFF),
                         uint8_t((~raw.size() >> 8) & 0xFF)};
  z.insert(z.end(), raw.begin(), raw.end());
  uint32_t a = 1, b = 0;  // Adler-32
  for (uint8_t c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, (b << 16) | a);
  std::vector<uint8_t> png{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
    put32(png, uint32_t(body.size()));
    std::vector<uint8_t> tb(type, type + 4);
    tb.insert(tb.end(), body.begin(), body.end());
    png.insert(png.end(), tb.begin(), tb.end());
    put32(png, ~crc32(tb.data(), tb.size()));
  };
  std::vector<uint8_t> ihdr;
  put32(ihdr, w);
  put32(ihdr, h);
  ihdr.insert(ihdr.end(), {16, 2, 0, 0, 0});  // 16-bit, RGB
  chunk("IHDR", ihdr);
  chunk("IDAT", z);
  chunk("IEND", {});
  return png;
}

double variance(const Image& img) {
  double m = 0, s = 0;
  for (uint8_t v : img.rgb) m += v;
  m /= img.rgb.size();
  for (uint8_t v : img.rgb) s += (v - m) * (v - m);
  return s / img.rgb.size();
}

}  // namespace

TEST_CASE("decode: PNG, JPEG and BMP by content, whatever the extension") {
  TempDir dir;
  const Image img = pattern(13, 9);
  for (const char* fmt : {"png", "bmp", "jpg"}) {
    CAPTURE(fmt);
    // The file name lies about the format: decoding must not care.
    const fs::path path =
        dir.path / (std::string("picture.") + (std::string(fmt) == "png" ? "jpg" : "png"));
    write_bytes(path, encode(img, fmt));
    Image back = decode_image_file(path.string());
    REQUIRE(back.width == 13);
    REQUIRE(back.height == 9);
    if (std::string(fmt) == "jpg") {
      // JPEG is lossy: quality 95 keeps each channel within ~30 levels on this busy pattern.
      double err = 0;
      for (size_t i = 0; i < img.rgb.size(); ++i) err += std::abs(int(img.rgb[i]) - back.rgb[i]);
      CHECK(err / img.rgb.size() < 30);
    } else {
      CHECK(back.rgb == img.rgb);  // lossless formats round-trip exactly
    }
  }
}

TEST_CASE("decode: grey, grey+alpha, RGBA and 16-bit images become 8-bit RGB") {
  const Image img = pattern(6, 5);
  Image grey = decode_image(encode(img, "png", 1), "grey.png");
  CHECK(grey.rgb.size() == 6 * 5 * 3);
  CHECK(grey.pixel(2, 3)[0] == img.pixel(2, 3)[0]);
  CHECK(grey.pixel(2, 3)[1] == img.pixel(2, 3)[0]);  // grey replicated into G and B
  Image ga = decode_image(encode(img, "png", 2), "ga.png");
  CHECK(ga.pixel(4, 1)[2] == img.pixel(4, 1)[0]);
  Image rgba = decode_image(encode(img, "png", 4), "rgba.png");
  CHECK(rgba.rgb == img.rgb);  // alpha dropped
  Image deep = decode_image(png16(4, 3, 0xABCD), "deep.png");
  REQUIRE(deep.width == 4);
  CHECK(deep.pixel(3, 2)[1] == 0xAB);  // 16-bit scaled to its high byte
}

TEST_CASE("decode: bad files fail with the file's name and the reason") {
  const Image img = pattern(16, 16);
  CHECK_THROWS_WITH_AS(decode_image({}, "empty.jpg"), doctest::Contains("empty.jpg: empty file"),
                       DecodeError);
  const std::vector<uint8_t> text{'h', 'e', 'l', 'l', 'o', '\n'};
  CHECK_THROWS_WITH_AS(decode_image(text, "notes.png"),
                       doctest::Contains("notes.png: not a readable image"), DecodeError);
  std::vector<uint8_t> jpg = encode(img, "jpg"), png = encode(img, "png");
  jpg.resize(jpg.size() / 2);
  png.erase(png.end() - 20, png.end());
  CHECK_THROWS_WITH_AS(decode_image(jpg, "cut.jpg"), doctest::Contains("cut.jpg: corrupt JPEG"),
                       DecodeError);
  CHECK_THROWS_AS(decode_image(png, "cut.png"), DecodeError);
  CHECK_THROWS_WITH_AS(decode_image_file("/nonexistent/x.png"), doctest::Contains("cannot open"),
                       DecodeError);
}

TEST_CASE("decode: a JPEG Huffman table with more than 256 codes is refused") {
  // SOI, a DHT segment whose 16 counts sum to 16 x 20 = 320 codes, then EOI. Debian's stb_image
  // 2.27 overran a 257-entry array on this (found by scripts/fuzz_decode.sh).
  std::vector<uint8_t> jpg{0xFF, 0xD8, 0xFF, 0xC4, 0x01, 0x55, 0x00};
  for (int i = 0; i < 16; ++i) jpg.push_back(20);
  jpg.insert(jpg.end(), 320, 1);
  jpg.insert(jpg.end(), {0xFF, 0xD9});
  CHECK_THROWS_WITH_AS(decode_image(jpg, "evil.jpg"), doctest::Contains("evil.jpg: corrupt JPEG"),
                       DecodeError);
}

TEST_CASE("decode: a header claiming absurd dimensions is refused before allocating") {
  // A BMP header for 100000 x 100000 pixels (30 GB decoded) followed by a few bytes.
  std::vector<uint8_t> bmp{'B', 'M'};
  auto le32 = [&](uint32_t v) {
    for (int s = 0; s < 32; s += 8) bmp.push_back(uint8_t(v >> s));
  };
  le32(54 + 16);
  le32(0);
  le32(54);  // file size, reserved, pixel offset
  le32(40);
  le32(100000);
  le32(100000);                          // header size, width, height
  bmp.insert(bmp.end(), {1, 0, 24, 0});  // planes, bits per pixel
  le32(0);
  le32(16);
  le32(0);
  le32(0);
  le32(0);
  le32(0);
  bmp.resize(bmp.size() + 16, 0);
  CHECK_THROWS_WITH_AS(decode_image(bmp, "huge.bmp"), doctest::Contains("100000x100000"),
                       DecodeError);
}

TEST_CASE("decode: a header claiming more pixels than the file can hold is refused") {
  // 43 bytes the fuzzer found: TGA (which has no magic number) of 11008 x 4113 pixels, which stb
  // decoded as 45 MP of zeros read past the end, 16 s each under the sanitizers.
  const std::vector<uint8_t> tga{0x89, 0x00, 0x02, 0x10, 0x03, 0x10, 0xff, 0x22, 0x6e, 0x01, 0xd8,
                                 0x09, 0x00, 0x2b, 0x11, 0x10, 0x10, 0x10, 0x42, 0x10, 0x10, 0x0d,
                                 0x10, 0x14, 0x10, 0x10, 0x2e, 0x10, 0x10, 0x10, 0x10, 0x01, 0x10,
                                 0x3e, 0x14, 0x10, 0x10, 0x10, 0x2e, 0x10, 0x10, 0x14, 0x10};
  CHECK_THROWS_WITH_AS(decode_image(tga, "tiny.tga"),
                       doctest::Contains("11008x4113 pixels, more than a 43-byte file can hold"),
                       DecodeError);
  // The densest real case, a flat image run-length coded (128 pixels a packet), still decodes.
  const Image flat = Image::blank(300, 200, 77);
  const std::vector<uint8_t> rle = encode(flat, "tga");
  CHECK(rle.size() < 300 * 200 / 16);  // compressed indeed
  CHECK(decode_image(rle, "flat.tga").rgb == flat.rgb);
}

TEST_CASE("transforms: flips mirror, quarter turns permute, brightness scales, blur smooths") {
  const Image img = pattern(8, 6);
  Image h = flip_horizontal(img), v = flip_vertical(img);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x) {
      CHECK(std::equal(h.pixel(x, y), h.pixel(x, y) + 3, img.pixel(7 - x, y)));
      CHECK(std::equal(v.pixel(x, y), v.pixel(x, y) + 3, img.pixel(x, 5 - y)));
    }
  // 90 degrees on a square image is an exact permutation: the same multiset of pixels, and four
  // turns give the image back.
  const Image sq = pattern(7, 7);
  Image r = rotate(sq, 90.f);
  std::multiset<std::array<uint8_t, 3>> a, b;
  for (int i = 0; i < 49; ++i) {
    a.insert({sq.rgb[i * 3], sq.rgb[i * 3 + 1], sq.rgb[i * 3 + 2]});
    b.insert({r.rgb[i * 3], r.rgb[i * 3 + 1], r.rgb[i * 3 + 2]});
  }
  CHECK(a == b);
  CHECK(r.rgb != sq.rgb);
  CHECK(rotate(rotate(rotate(r, 90.f), 90.f), 90.f).rgb == sq.rgb);
  // Counter-clockwise: the right-middle pixel moves to the top-middle.
  CHECK(std::equal(r.pixel(3, 0), r.pixel(3, 0) + 3, sq.pixel(6, 3)));
  // A rotation by 45 degrees leaves the corners to the fill value.
  CHECK(rotate(sq, 45.f, 17).pixel(0, 0)[0] == 17);
  Image bright = scale_brightness(img, 0.5f);
  for (size_t i = 0; i < img.rgb.size(); ++i)
    CHECK(std::abs(bright.rgb[i] - img.rgb[i] * 0.5f) <= 0.5f);
  Image ten = scale_brightness(img, 10.f);
  for (size_t i = 0; i < img.rgb.size(); ++i)
    if (img.rgb[i] >= 26) CHECK(ten.rgb[i] == 255);  // saturates instead of wrapping
  // Smoothing white noise with a 2-D Gaussian of sigma 1.5 keeps about 1 / (4 pi sigma^2) = 3.5%
  // of its variance; a halving is a safe lower bound on the effect.
  Image noise = Image::blank(32, 32);
  Generator gen(3);
  for (uint8_t& v : noise.rgb) v = static_cast<uint8_t>(gen.below(256));
  CHECK(variance(gaussian_blur(noise, 1.5f)) < 0.5 * variance(noise));
  CHECK(gaussian_blur(img, 0.f).rgb == img.rgb);
}

TEST_CASE("transforms: resize, crops and augment keep sizes; augment is seeded") {
  const Image img = pattern(40, 30);
  Image small = resize(img, 10, 10), big = resize(img, 64, 48);
  CHECK(small.width == 10);
  CHECK(big.height == 48);
  // Area averaging of a constant image is exact.
  Image flat = Image::blank(33, 17, 200);
  for (uint8_t v : resize(flat, 8, 5).rgb) CHECK(v == 200);
  CHECK(resize_square(img, 20, Fit::crop).width == 20);
  Image padded = resize_square(img, 40, Fit::pad, 9);
  CHECK(padded.height == 40);
  CHECK(padded.pixel(0, 0)[0] == 9);  // the padding band
  CHECK_THROWS_AS(crop(img, 30, 0, 20, 10), std::invalid_argument);
  AugmentOptions all;
  all.crop_prob = all.rotate_prob = all.hflip_prob = all.brightness_prob = all.blur_prob = 1.f;
  Generator g1(5), g2(5), g3(6);
  Image a1 = augment(resize(img, 24, 24), all, g1), a2 = augment(resize(img, 24, 24), all, g2),
        a3 = augment(resize(img, 24, 24), all, g3);
  CHECK(a1.width == 24);
  CHECK(a1.rgb == a2.rgb);
  CHECK(a1.rgb != a3.rgb);
  float chw[3 * 2 * 2];
  normalize_into(Image::blank(2, 2, 255), Normalization{}, chw);
  for (float v : chw) CHECK(v == doctest::Approx(1.f));  // (1 - 0.5) / 0.5
}

TEST_CASE("dataset: classes sorted, hidden files ignored, and clear errors for bad folders") {
  TempDir dir;
  make_folder(dir.path, {"zebra", "apple"}, 3);
  write_bytes(dir.path / "apple" / ".DS_Store", {1, 2, 3});
  fs::create_directories(dir.path / ".git");
  ImageFolder f = scan_image_folder(dir.path.string());
  CHECK(f.classes == std::vector<std::string>{"apple", "zebra"});
  CHECK(f.samples.size() == 6);
  CHECK(f.samples[0].file == "apple/img0.png");
  CHECK(f.samples[3].label == 1);
  CHECK(scan_image_folder(dir.path.string(), 2).samples.size() == 4);
  CHECK_THROWS_WITH_AS(scan_image_folder((dir.path / "missing").string()),
                       doctest::Contains("does not exist"), std::runtime_error);
  TempDir one;
  make_folder(one.path, {"only"}, 2);
  CHECK_THROWS_WITH_AS(scan_image_folder(one.path.string()), doctest::Contains("at least two"),
                       std::runtime_error);
  fs::create_directories(dir.path / "empty");
  CHECK_THROWS_WITH_AS(scan_image_folder(dir.path.string()), doctest::Contains("is empty"),
                       std::runtime_error);
}

TEST_CASE("split: stratified, disjoint, repeatable, and round-trips through its file") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 10);
  ImageFolder f = scan_image_folder(dir.path.string());
  std::vector<size_t> all(f.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  Split s = stratified_split(f, all, 0.7f, 1);
  CHECK(s.train.size() == 14);
  CHECK(s.test.size() == 6);
  int train_a = 0;
  for (size_t i : s.train) train_a += f.samples[i].label == 0;
  CHECK(train_a == 7);  // 70% of each class
  std::set<size_t> seen(s.train.begin(), s.train.end());
  for (size_t i : s.test) CHECK(seen.insert(i).second);  // disjoint
  CHECK(seen.size() == 20);                              // and complete
  Split again = stratified_split(f, all, 0.7f, 1), other = stratified_split(f, all, 0.7f, 2);
  CHECK(again.train == s.train);
  CHECK(other.train != s.train);
  const std::string file = (dir.path / "split.csv").string();
  save_split(f, s, file);
  Split back = load_split(f, file);
  CHECK(back.train == s.train);
  CHECK(back.test == s.test);
  // A split naming a file the folder does not have is refused with the line.
  std::ofstream(file, std::ios::app) << "a/ghost.png,a,test\n";
  CHECK_THROWS_WITH_AS(load_split(f, file), doctest::Contains("ghost.png' is not in"),
                       std::runtime_error);
  CHECK_THROWS_AS(stratified_split(f, all, 1.5f, 1), std::invalid_argument);
}

TEST_CASE("loader: bad files are skipped with a count, or refused in strict mode") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 4);
  write_bytes(dir.path / "a" / "zero.jpg", {});
  write_bytes(dir.path / "a" / "text.png", {'n', 'o', 'p', 'e'});
  std::vector<uint8_t> cut = encode(pattern(30, 30), "jpg");
  cut.resize(cut.size() / 3);
  write_bytes(dir.path / "b" / "cut.jpg", cut);
  ImageFolder f = scan_image_folder(dir.path.string());
  REQUIRE(f.samples.size() == 11);
  // Decoding reports its progress from this thread: counts that grow, ending at (11, 11).
  std::vector<std::pair<size_t, size_t>> calls;
  ImageCache cache(f, CacheOptions{.image_size = 16,
                                   .workers = 2,
                                   .verbose = false,
                                   .progress = [&](size_t done, size_t total) {
                                     calls.emplace_back(done, total);
                                   }});
  REQUIRE(!calls.empty());
  CHECK(calls.back() == std::pair<size_t, size_t>(11, 11));
  for (size_t i = 1; i < calls.size(); ++i) CHECK(calls[i].first > calls[i - 1].first);
  CHECK(std::count(calls.begin(), calls.end(), calls.back()) == 1);  // one end, not two
  CHECK(cache.skipped().size() == 3);
  CHECK(cache.usable_indices().size() == 8);
  CHECK(cache.image(cache.usable_indices()[0]).width == 16);
  CHECK_THROWS_WITH_AS(
      ImageCache(f, CacheOptions{.image_size = 16, .workers = 1, .strict = true, .verbose = false}),
      doctest::Contains("strict mode"), std::runtime_error);
}

TEST_CASE(
    "loader: each image once per epoch, a new order each epoch, same batches for any worker "
    "count") {
  TempDir dir;
  make_folder(dir.path, {"a", "b"}, 11);
  ImageFolder f = scan_image_folder(dir.path.string());
  auto cache =
      std::make_shared<const ImageCache>(f, CacheOptions{.image_size = 12, .verbose = false});
  auto epoch_of = [&](int workers, int epoch, bool drop_last) {
    LoaderOptions o;
    o.batch_size = 5;
    o.workers = workers;
    o.seed = 9;
    o.drop_last = drop_last;
    Loader loader(cache, cache->usable_indices(), o);
    loader.start_epoch(epoch);
    std::vector<Batch> out;
    for (Batch b; loader.next(b);) out.push_back(b);
    CHECK(static_cast<int64_t>(out.size()) == loader.batches_per_epoch());
    return out;
  };
  std::vector<Batch> e0 = epoch_of(1, 0, false);
  REQUIRE(e0.size() == 5);  // 22 images: 4 full batches and one of 2
  CHECK(e0.back().n == 2);
  std::multiset<size_t> seen;
  for (auto& b : e0) seen.insert(b.indices.begin(), b.indices.end());
  CHECK(seen.size() == 22);
  CHECK(std::set<size_t>(seen.begin(), seen.end()).size() == 22);  // each exactly once
  std::vector<Batch> two_workers = epoch_of(2, 0, false);
  for (size_t k = 0; k < e0.size(); ++k) {
    CHECK(two_workers[k].indices == e0[k].indices);
    CHECK(two_workers[k].images == e0[k].images);  // augmentations identical too
  }
  CHECK(epoch_of(2, 1, false)[0].indices != e0[0].indices);  // reshuffled
  CHECK(epoch_of(1, 0, true).size() == 4);                   // the partial batch dropped
}

TEST_CASE("data: a few real images from the shared data set") {
  const fs::path root = fs::path(FORGE_SHARED_DATA) / "selfie2anime";
  if (!fs::is_directory(root)) {
    MESSAGE("skipped: " << root << " is not here");
    return;
  }
  ImageFolder f = scan_image_folder(root.string(), 10);
  CHECK(f.classes == std::vector<std::string>{"anime", "selfie"});
  ImageCache cache(f, CacheOptions{.image_size = 120, .verbose = false});
  CHECK(cache.usable_indices().size() == 20);
  CHECK(cache.image(0).width == 120);
}
