// dataset.cpp: scanning an image folder (see dataset.h).
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

namespace forge::data {

static bool hidden(const fs::path& p) {
  return p.filename().string().rfind('.', 0) == 0;
}

ImageFolder scan_image_folder(const std::string& root, int max_per_class) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw std::runtime_error("data folder '" + root + "' does not exist or is not a folder " +
                             "(expected one sub-folder per class)");
  ImageFolder folder;
  folder.root = root;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory() && !hidden(entry.path()))
      folder.classes.push_back(entry.path().filename().string());
  if (ec) throw std::runtime_error("cannot read data folder '" + root + "': " + ec.message());
  std::sort(folder.classes.begin(), folder.classes.end());
  if (folder.classes.size() < 2)
    throw std::runtime_error("data folder '" + root + "' has " +
                             std::to_string(folder.classes.size()) +
                             " class folder(s); a classifier needs at least two sub-folders, "
                             "one per class");
  for (size_t label = 0; label < folder.classes.size(); ++label) {
    const std::string& name = folder.classes[label];
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(fs::path(root) / name, ec))
      if (!entry.is_directory() && !hidden(entry.path()))
        files.push_back(name + "/" + entry.path().filename().string());
    if (ec) throw std::runtime_error("cannot read class folder '" + name + "': " + ec.message());
    if (files.empty())
      throw std::runtime_error("class folder '" + (fs::path(root) / name).string() +
                               "' is empty: every class needs images");
    std::sort(files.begin(), files.end());
    if (max_per_class > 0 && files.size() > size_t(max_per_class)) files.resize(max_per_class);
    for (auto& f : files) folder.samples.push_back({std::move(f), static_cast<int>(label)});
  }
  return folder;
}

}  // namespace forge::data
