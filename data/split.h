// split.h: the train/validation/test split: seeded, stratified (each class split in the same
// proportion), written as a CSV next to a run's outputs and readable again, so that train, eval
// and predict agree on which images were never trained on. The validation side chooses the best
// model; the test side is only reported on.
//
// File format (split.csv, RFC 4180 CSV: fields with commas, quotes or line breaks are quoted, see
// csv.h): a header record, then one record per image, side train, val or test:
//   file,class,side
//   anime/anime_0000.jpg,anime,train
//   "selfie/me, ""smiling"".jpg",selfie,test
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace forge::data {

struct Split {
  std::vector<size_t> train, test;  // indices into ImageFolder::samples, ascending
  std::vector<size_t> val;          // validation: carved out of the training side, ascending
};

// Per class: shuffle that class's indices with the seed, the first round(train_fraction * n) form
// the training side, the rest the test side. Each class keeps at least one image on each side
// when it has two or more. Then the last round(val_fraction * m) of a class's m training-side
// images become validation images (at least one, and one left to train on, when m >= 2 and
// val_fraction > 0), so the test side does not depend on val_fraction.
Split stratified_split(const ImageFolder& folder, const std::vector<size_t>& usable,
                       float train_fraction, uint64_t seed, float val_fraction = 0.f);
// The split file's text (format above); save_split writes it through the atomic writer.
std::string format_split(const ImageFolder& folder, const Split& split);
void save_split(const ImageFolder& folder, const Split& split, const std::string& path);
// Reads a split file back against `folder`: every listed file must be in the folder with the
// same class, and listed once (a file twice, or on two sides, is refused); errors name the file
// and the line.
Split load_split(const ImageFolder& folder, const std::string& path);

}  // namespace forge::data
