// split.cpp: drawing, writing and reading splits (see split.h).
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "data/csv.h"
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
  out << csv_record({"file", "class", "side"});
  auto write = [&](const std::vector<size_t>& idx, const char* side) {
    for (size_t i : idx) {
      const Sample& s = folder.samples[i];
      out << csv_record({s.file, folder.classes[s.label], side});
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
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open split file " + path);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < folder.samples.size(); ++i) index[folder.samples[i].file] = i;
  CsvReader csv(in, path);
  std::vector<std::string> record;
  if (!csv.next(record) || record != std::vector<std::string>{"file", "class", "side"})
    throw std::runtime_error(path + ": not a split file (first line should be file,class,side)");
  Split split;
  struct Listed {
    int line;
    std::string side;
  };
  std::unordered_map<size_t, Listed> listed;  // sample index -> where it was first listed
  while (csv.next(record)) {
    const std::string at = path + ":" + std::to_string(csv.line()) + ": ";
    if (record.size() == 1 && record[0].empty()) continue;  // a blank line
    if (record.size() != 3)
      throw std::runtime_error(at + "expected 3 fields (file,class,side), found " +
                               std::to_string(record.size()) +
                               " (a name with a comma must be in double quotes)");
    const std::string &file = record[0], &cls = record[1], &side = record[2];
    auto it = index.find(file);
    if (it == index.end())
      throw std::runtime_error(at + "'" + file + "' is not in " + folder.root +
                               " (a split from another data folder?)");
    if (folder.classes[folder.samples[it->second].label] != cls)
      throw std::runtime_error(at + "'" + file + "' is listed as class '" + cls +
                               "' but lies in folder '" +
                               folder.classes[folder.samples[it->second].label] + "'");
    std::vector<size_t>* dest = side == "train"  ? &split.train
                                : side == "val"  ? &split.val
                                : side == "test" ? &split.test
                                                 : nullptr;
    if (!dest) throw std::runtime_error(at + "side '" + side + "' is none of train, val, test");
    const auto [first, fresh] = listed.emplace(it->second, Listed{csv.line(), side});
    if (!fresh)
      throw std::runtime_error(at + "'" + file + "' is listed again (as " + side +
                               "), already on line " + std::to_string(first->second.line) +
                               " (as " + first->second.side +
                               "): an image must be on one side of a split, once");
    dest->push_back(it->second);
  }
  for (auto* side : {&split.train, &split.val, &split.test}) std::sort(side->begin(), side->end());
  return split;
}

}  // namespace forge::data
