// decode.cpp: JPEG through libjpeg-turbo, every other format through stb_image, both behind a
// size check (see decode.h).
#include "data/decode.h"

#include <fcntl.h>
#include <stb/stb_image.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "data/files.h"

namespace forge::data {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  // Opening a FIFO blocks until a writer comes, and opening a device may act on it: look first,
  // open only a regular file, and look again at what was opened (the entry may have changed).
  std::string why;
  examine_entry(path, why);
  if (!why.empty()) throw DecodeError(path, "cannot open: " + why);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw DecodeError(path, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw DecodeError(path, "cannot open: not a regular file");
  // Encoded files are far smaller than decoded ones; the same cap keeps a huge file out.
  if (st.st_size > kMaxImagePixels * 4)
    throw DecodeError(path, "file too large to be an image here");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DecodeError(path, std::string("read failed: ") + std::strerror(errno));
    if (n == 0) break;  // shrank while being read: decode what is there
    got += size_t(n);
  }
  bytes.resize(got);
  return bytes;
}

static void check_dimensions(int w, int h, const std::string& name) {
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide ||
      int64_t(w) * h > kMaxImagePixels)
    throw DecodeError(name, "header claims " + std::to_string(w) + "x" + std::to_string(h) +
                                " pixels, beyond the limit of " + std::to_string(kMaxImageSide) +
                                " per side and " + std::to_string(kMaxImagePixels >> 20) + " MP");
}

// A JPEG starts with the start-of-image marker FF D8 (libjpeg accepts nothing else).
static bool is_jpeg(const std::vector<uint8_t>& b) {
  return b.size() >= 2 && b[0] == 0xFF && b[1] == 0xD8;
}

// libjpeg-turbo reads a JPEG's segments by their lengths and stops at the end-of-image marker, so
// a comment or APP segment holding any bytes (FF C4 in EXIF data, say) and bytes after the end
// are fine. It replaced stb_image for JPEG: stb 2.27 overruns an array on a corrupt Huffman table
// and fills a file cut short with grey, and the checks that guarded stb against both (a scan for
// FF C4, an end marker near the end of the file) refused those valid files. Any warning is an error
// (TJFLAG_STOPONWARNING): libjpeg "decodes" a file cut short by filling the rest with grey, with
// only a warning. TJFLAG_LIMITSCANS refuses progressive files of more than 500 scans, which could
// take minutes to decode.
static Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) throw DecodeError(name, std::string("libjpeg-turbo: ") + tjGetErrorStr2(nullptr));
  const auto* data = bytes.data();
  const auto len = static_cast<unsigned long>(bytes.size());
  int w = 0, h = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, len, &w, &h, &subsampling, &colorspace) != 0)
    throw DecodeError(name, std::string("corrupt JPEG (") + tjGetErrorStr2(tj.get()) + ")");
  check_dimensions(w, h, name);
  // CMYK and YCCK (Adobe) files come out as CMYK; libjpeg has no RGB conversion for them.
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int channels = cmyk ? 4 : 3;
  std::vector<uint8_t> px(size_t(w) * h * channels);
  if (tjDecompress2(tj.get(), data, len, px.data(), w, 0, h, cmyk ? TJPF_CMYK : TJPF_RGB,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
    throw DecodeError(name, std::string("corrupt JPEG (") + tjGetErrorStr2(tj.get()) + ")");
  Image img;
  img.width = w;
  img.height = h;
  if (!cmyk) {
    img.rgb = std::move(px);
    return img;
  }
  // Adobe files store CMYK inverted (255 = no ink), which is what libjpeg hands back: each colour
  // is then its inverted ink times the inverted black, R = C' K' / 255 (what stb_image did).
  img.rgb.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < size_t(w) * h; ++i)
    for (int c = 0; c < 3; ++c)
      img.rgb[i * 3 + c] = uint8_t((unsigned(px[i * 4 + c]) * px[i * 4 + 3] + 127) / 255);
  return img;
}

// stb reads past the end of a file as zeros, so a TGA (or BMP, PSD, ...) header from a 40-byte
// file "decodes" to a 45-megapixel image of zeros (found by scripts/fuzz_decode.sh, taking 16 s
// each). Run-length coding, the densest these formats have, packs at most 128 pixels in 2 bytes:
// more than 256 pixels per byte of file is a file cut short, or not an image at all. PNG and GIF
// are exempt: deflate and LZW pack far more.
constexpr int64_t kMaxPixelsPerByte = 256;

static bool deflate_or_lzw(const std::vector<uint8_t>& b) {
  return (b.size() >= 4 && std::memcmp(b.data(), "\x89PNG", 4) == 0) ||
         (b.size() >= 4 && std::memcmp(b.data(), "GIF8", 4) == 0);
}

// Every other format: stb_image (built without its JPEG decoder, stb_impl.cpp).
static Image decode_with_stb(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() > size_t(INT32_MAX)) throw DecodeError(name, "file too large");
  const auto* data = bytes.data();
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &channels))
    throw DecodeError(name, std::string("not a readable image (") + stbi_failure_reason() + ")");
  check_dimensions(w, h, name);
  if (!deflate_or_lzw(bytes) && int64_t(w) * h > kMaxPixelsPerByte * int64_t(bytes.size()))
    throw DecodeError(name, "header claims " + std::to_string(w) + "x" + std::to_string(h) +
                                " pixels, more than a " + std::to_string(bytes.size()) +
                                "-byte file can hold (cut short?)");
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

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) throw DecodeError(name, "empty file (0 bytes)");
  return is_jpeg(bytes) ? decode_jpeg(bytes, name) : decode_with_stb(bytes, name);
}

Image decode_image_file(const std::string& path) {
  return decode_image(read_file_bytes(path), path);
}

}  // namespace forge::data
