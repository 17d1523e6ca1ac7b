// split.cpp: drawing, writing and reading splits (see split.h).
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "engine/io/atomic_file.h"
#include "engine/random.h"

namespace forge::data {

Split stratified_split(const ImageFolder& folder, const std::vector<size_t>& usable, float fraction,
                       uint64_t seed, float val_fraction) {
  if (!(fraction > 0.f && fraction < 1.f))
    throw std::invalid_argument("train fraction " + std::to_string(fraction) +
                                " must be between 0 and 1");
  if (!(val_fraction >= 0.f && val_fraction < 1.f))
    throw std::invalid_argument("validation fraction " + std::to_string(val_fraction) +
                                " must be at least 0 and below 1");
  std::vector<std::vector<size_t>> by_class(folder.classes.size());
  for (size_t i : usable) by_class[folder.samples[i].label].push_back(i);
  Split split;
  for (size_t c = 0; c < by_class.size(); ++c) {
    auto& idx = by_class[c];
    Generator gen(splitmix64(seed) ^ splitmix64(c + 1));
    for (size_t i = idx.size(); i > 1; --i)
      std::swap(idx[i - 1], idx[gen.below(i)]);  // Fisher-Yates
    size_t n_train = static_cast<size_t>(std::lround(fraction * idx.size()));
    if (idx.size() >= 2) n_train = std::clamp<size_t>(n_train, 1, idx.size() - 1);
    size_t n_val = static_cast<size_t>(std::lround(val_fraction * n_train));
    if (n_train >= 2 && val_fraction > 0.f) n_val = std::clamp<size_t>(n_val, 1, n_train - 1);
    split.train.insert(split.train.end(), idx.begin(), idx.begin() + (n_train - n_val));
    split.val.insert(split.val.end(), idx.begin() + (n_train - n_val), idx.begin() + n_train);
    split.test.insert(split.test.end(), idx.begin() + n_train, idx.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  std::sort(split.test.begin(), split.test.end());
  return split;
}

std::string format_split(const ImageFolder& folder, const Split& split) {
  std::ostringstream out;
  out << "file,class,side\n";
  auto write = [&](const std::vector<size_t>& idx, const char* side) {
    for (size_t i : idx) {
      const Sample& s = folder.samples[i];
      out << s.file << "," << folder.classes[s.label] << "," << side << "\n";
    }
  };
  write(split.train, "train");
  write(split.val, "val");
  write(split.test, "test");
  return out.str();
}

void save_split(const ImageFolder& folder, const Split& split, const std::string& path) {
  write_file_atomically(path, format_split(folder, split));
}

Split load_split(const ImageFolder& folder, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open split file " + path);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < folder.samples.size(); ++i) index[folder.samples[i].file] = i;
  Split split;
  std::string line;
  std::getline(in, line);
  if (line != "file,class,side")
    throw std::runtime_error(path + ": not a split file (first line should be file,class,side)");
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const size_t a = line.rfind(','), b = a == std::string::npos ? a : line.rfind(',', a - 1);
    if (b == std::string::npos)
      throw std::runtime_error(path + ":" + std::to_string(n) + ": expected file,class,side");
    const std::string file = line.substr(0, b), cls = line.substr(b + 1, a - b - 1),
                      side = line.substr(a + 1);
    auto it = index.find(file);
    if (it == index.end())
      throw std::runtime_error(path + ":" + std::to_string(n) + ": '" + file + "' is not in " +
                               folder.root + " (a split from another data folder?)");
    if (folder.classes[folder.samples[it->second].label] != cls)
      throw std::runtime_error(path + ":" + std::to_string(n) + ": '" + file +
                               "' is listed as class '" + cls + "' but lies in folder '" +
                               folder.classes[folder.samples[it->second].label] + "'");
    if (side == "train")
      split.train.push_back(it->second);
    else if (side == "val")
      split.val.push_back(it->second);
    else if (side == "test")
      split.test.push_back(it->second);
    else
      throw std::runtime_error(path + ":" + std::to_string(n) + ": side '" + side +
                               "' is not train, val or test");
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  std::sort(split.test.begin(), split.test.end());
  return split;
}

}  // namespace forge::data
