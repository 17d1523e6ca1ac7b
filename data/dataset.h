// dataset.h: an image folder, one sub-folder per class (the torchvision ImageFolder layout).
//
//   root/anime/0001.jpg, root/anime/0002.png, root/selfie/a.jpg, ...
//
// Classes are the sub-folder names sorted; files are sorted within each class; hidden files and
// folders (a leading '.') are ignored. Any file is a candidate: decoding, not the extension,
// decides what is an image.
#pragma once
#include <string>
#include <vector>

namespace forge::data {

struct Sample {
  std::string file;  // relative to the root
  int label = 0;
};

struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;
  std::vector<Sample> samples;
};

// Scans `root`. Throws std::runtime_error with what to fix for a missing or unreadable folder,
// fewer than two classes, or an empty class folder. max_per_class > 0 keeps the first N files of
// each class (for smoke runs).
ImageFolder scan_image_folder(const std::string& root, int max_per_class = 0);

}  // namespace forge::data
