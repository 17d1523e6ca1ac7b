// stb_impl.cpp: the one translation unit that compiles stb_image and stb_image_write (Debian's
// libstb-dev ships them as headers). Every format stb knows is enabled: decoding goes by content.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
