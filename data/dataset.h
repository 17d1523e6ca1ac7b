// dataset.h: an image folder, one sub-folder per class (the torchvision ImageFolder layout).
//
//   root/anime/0001.jpg, root/anime/0002.png, root/selfie/a.jpg, ...
//
// Classes are the sub-folder names sorted; files are sorted within each class; hidden files and
// folders (a leading '.') are ignored. Any regular file is a candidate: decoding, not the
// extension, decides what is an image. Entries that are not regular files (symlink loops, links to
// nothing, FIFOs, devices, sockets) are skipped with a warning naming them, never opened.
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
  std::vector<std::string> skipped;  // "path: reason" for each entry passed over (also printed)
};

// Scans `root`. Throws std::runtime_error with what to fix for a missing or unreadable folder,
// fewer than two classes, or a class folder with no regular file. max_per_class > 0 keeps the first
// N files of each class (for smoke runs).
ImageFolder scan_image_folder(const std::string& root, int max_per_class = 0);

}  // namespace forge::data
