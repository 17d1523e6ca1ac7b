// test_split_val.cpp: the three-way split: train, validation (carved out of the training side)
// and test, each class split in the same proportions, disjoint, complete, and fixed by the seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "data/split.h"

using namespace forge::data;

namespace {

// Two classes of 30 and 20 images, no files needed: the split reads only the labels.
ImageFolder labelled_folder() {
  ImageFolder f;
  f.root = "synthetic";
  f.classes = {"a", "b"};
  for (int i = 0; i < 50; ++i) f.samples.push_back({"img" + std::to_string(i), i < 30 ? 0 : 1});
  return f;
}

int count_class(const ImageFolder& f, const std::vector<size_t>& idx, int label) {
  int n = 0;
  for (size_t i : idx) n += f.samples[i].label == label;
  return n;
}

}  // namespace

TEST_CASE("split: validation is stratified, disjoint, seeded, and leaves the test side alone") {
  const ImageFolder f = labelled_folder();
  std::vector<size_t> all(f.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const Split s = stratified_split(f, all, 0.7f, 5, 0.1f);
  // Class a: 21 training-side images (2 val, 19 train), 9 test; class b: 14 (1 val, 13), 6 test.
  CHECK(count_class(f, s.train, 0) == 19);
  CHECK(count_class(f, s.val, 0) == 2);
  CHECK(count_class(f, s.test, 0) == 9);
  CHECK(count_class(f, s.train, 1) == 13);
  CHECK(count_class(f, s.val, 1) == 1);
  CHECK(count_class(f, s.test, 1) == 6);
  std::set<size_t> seen;
  for (const auto* side : {&s.train, &s.val, &s.test})
    for (size_t i : *side) CHECK(seen.insert(i).second);  // disjoint
  CHECK(seen.size() == all.size());                       // and complete

  const Split again = stratified_split(f, all, 0.7f, 5, 0.1f);
  CHECK(again.train == s.train);
  CHECK(again.val == s.val);
  CHECK(again.test == s.test);
  const Split other = stratified_split(f, all, 0.7f, 6, 0.1f);
  CHECK(other.val != s.val);
  // The validation side comes out of the training side only: the same test side without it.
  const Split no_val = stratified_split(f, all, 0.7f, 5);
  CHECK(no_val.val.empty());
  CHECK(no_val.test == s.test);
  std::vector<size_t> train_side = s.train;
  train_side.insert(train_side.end(), s.val.begin(), s.val.end());
  std::sort(train_side.begin(), train_side.end());
  CHECK(train_side == no_val.train);

  // split.csv lists the three sides (read back by load_split).
  const std::string text = format_split(f, s);
  CHECK(text.rfind("file,class,side\n", 0) == 0);
  size_t val_lines = 0;
  for (size_t at = 0; (at = text.find(",val\n", at)) != std::string::npos; ++at) ++val_lines;
  CHECK(val_lines == s.val.size());
  CHECK_THROWS_AS(stratified_split(f, all, 0.7f, 5, 1.f), std::invalid_argument);
}
