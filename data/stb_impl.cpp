// stb_impl.cpp: the one translation unit that compiles stb_image and stb_image_write (Debian's
// libstb-dev ships them as headers). Every format stb reads is enabled but JPEG, which
// libjpeg-turbo decodes (decode.cpp says why); decoding goes by content.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_NO_JPEG
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
