// dataset.cpp: scanning an image folder (see dataset.h).
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "data/files.h"

namespace fs = std::filesystem;

namespace forge::data {

ImageFolder scan_image_folder(const std::string& root, int max_per_class) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw std::runtime_error("data folder '" + root + "' does not exist or is not a folder " +
                             "(expected one sub-folder per class)");
  ImageFolder folder;
  folder.root = root;
  fs::directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_hidden(name)) continue;
    std::string why;
    if (examine_entry(it->path(), why) == fs::file_type::directory)
      folder.classes.push_back(name);
    else if (!why.empty())  // a loose regular file beside the class folders is not ours to judge
      folder.skipped.push_back(it->path().string() + ": " + why);
  }
  if (ec) throw std::runtime_error("cannot read data folder '" + root + "': " + ec.message());
  std::sort(folder.classes.begin(), folder.classes.end());
  if (folder.classes.size() < 2)
    throw std::runtime_error("data folder '" + root + "' has " +
                             std::to_string(folder.classes.size()) +
                             " class folder(s); a classifier needs at least two sub-folders, "
                             "one per class");
  for (size_t label = 0; label < folder.classes.size(); ++label) {
    const std::string& name = folder.classes[label];
    const fs::path dir = fs::path(root) / name;
    FileList list = list_regular_files(dir, /*recursive=*/false);
    folder.skipped.insert(folder.skipped.end(), list.skipped.begin(), list.skipped.end());
    if (list.files.empty())
      throw std::runtime_error(
          "class folder '" + dir.string() + "' is empty: every class needs images" +
          (list.skipped.empty()
               ? std::string()
               : " (its " + std::to_string(list.skipped.size()) +
                     " entries are not regular files, first: " + list.skipped.front() + ")"));
    if (max_per_class > 0 && list.files.size() > size_t(max_per_class))
      list.files.resize(max_per_class);
    for (auto& f : list.files) folder.samples.push_back({name + "/" + f, static_cast<int>(label)});
  }
  warn_skipped(folder.skipped);
  return folder;
}

}  // namespace forge::data
