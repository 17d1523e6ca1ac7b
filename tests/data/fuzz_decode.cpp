// fuzz_decode.cpp: a libFuzzer target for the image decoding path (libjpeg-turbo for JPEG,
// stb_image for the rest). Any byte string must either decode into a sane RGB image or be refused
// with a DecodeError: never a crash, an overrun (the build uses AddressSanitizer) or a huge
// allocation. Run by scripts/fuzz_decode.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "data/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    const forge::data::Image img = forge::data::decode_image(bytes, "fuzz-input");
    if (img.width <= 0 || img.height <= 0 || img.width > forge::data::kMaxImageSide ||
        img.rgb.size() != size_t(img.width) * img.height * 3)
      std::abort();  // decoded, but not a consistent image
  } catch (const forge::data::DecodeError&) {
    // refused with a message: fine
  }
  return 0;
}
