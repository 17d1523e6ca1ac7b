// test_saliency.cpp: attention rollout and Grad-CAM: maps of the image's size scaled to [0, 1],
// the rollout row a distribution, and each responding where a planted cue is.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/ops.h"
#include "models/model.h"
#include "train/saliency.h"

using namespace forge;
using namespace forge::train;

namespace {

// Class 1's score is the mean of channel 0: its feature map is the image itself.
class ChannelZeroScorer : public models::ImageClassifier {
 public:
  ChannelZeroScorer() : ImageClassifier({.preset = "planted", .num_classes = 2}) {
    weight_ = register_parameter("w", Tensor::from_vector({0, 0, 0, 1, 0, 0}, {2, 3}));
  }
  Tensor forward(const Tensor& x) override { return classify_features(feature_map(x)); }
  Tensor feature_map(const Tensor& x) override { return x; }
  Tensor classify_features(const Tensor& f) override {
    return linear(global_avg_pool(f), weight_, Tensor());
  }

 private:
  Tensor weight_;
};

size_t argmax(const std::vector<float>& v) {
  return size_t(std::max_element(v.begin(), v.end()) - v.begin());
}

void check_scaled(const SaliencyMap& m, int size) {
  CHECK(m.width == size);
  CHECK(m.height == size);
  REQUIRE(m.values.size() == size_t(size) * size);
  CHECK(*std::max_element(m.values.begin(), m.values.end()) == doctest::Approx(1));
  CHECK(*std::min_element(m.values.begin(), m.values.end()) == 0);
}

}  // namespace

TEST_CASE("Grad-CAM responds where the planted feature is, through autograd") {
  ChannelZeroScorer model;
  const int size = 12;
  std::vector<float> image(3 * size * size, 0.f);
  for (int y = 2; y < 4; ++y)
    for (int x = 8; x < 10; ++x) image[y * size + x] = 1.f;  // channel 0, rows 2-3, columns 8-9
  const Tensor images = Tensor::from_vector(image, {1, 3, size, size});
  const std::vector<SaliencyMap> maps = grad_cam(model, images, {1});
  REQUIRE(maps.size() == 1);
  check_scaled(maps[0], size);
  const size_t peak = argmax(maps[0].values);
  CHECK(peak / size >= 2);
  CHECK(peak / size < 4);
  CHECK(peak % size >= 8);
  CHECK(peak % size < 10);
  CHECK(maps[0].values[11 * size + 0] == 0.f);  // far from it: nothing
  // Class 0 weighs nothing: an all-zero map, not a division by zero.
  const std::vector<SaliencyMap> none = grad_cam(model, images, {0});
  CHECK(*std::max_element(none[0].values.begin(), none[0].values.end()) == 0.f);
  // The model's parameters are left without a gradient.
  CHECK_FALSE(model.parameters()[0].grad().defined());
}

TEST_CASE("attention rollout of planted attention follows it to its patch") {
  // 2 layers, 1 image, 2 heads, a 2x2 grid + class token: every token attends to patch 3
  // (token 4) in every head, so the class token's rollout concentrates there.
  const int t = 5;
  std::vector<float> probabilities(2 * t * t, 0.f);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < t; ++i) probabilities[(h * t + i) * t + 4] = 1.f;
  const Tensor layer = Tensor::from_vector(probabilities, {1, 2, t, t});
  const models::TokenAttention attention{.layers = {layer, layer}, .grid = 2, .padded_size = 8};
  const std::vector<double> row = rollout_class_row(attention, 0);
  REQUIRE(row.size() == t);
  CHECK(std::accumulate(row.begin(), row.end(), 0.0) == doctest::Approx(1));
  // Â = (A + I) / 2: the class token keeps 1/4 after two layers, patch 3 gets the other 3/4.
  CHECK(row[0] == doctest::Approx(0.25));
  CHECK(row[4] == doctest::Approx(0.75));
  const SaliencyMap map = rollout_map(attention, 0, 6);  // 6 px padded to 8: 1 px each side
  check_scaled(map, 6);
  CHECK(argmax(map.values) == 5 * 6 + 5);  // patch 3 is the bottom right
  CHECK(map.values[0] == 0.f);
}

TEST_CASE("saliency of the micro presets: rollout for the ViT, Grad-CAM for the CNN and HRNet") {
  for (const char* preset : {"vit-micro", "cnn-micro", "hrnet-micro"}) {
    CAPTURE(preset);
    Generator gen(3);
    auto model = models::create_model({.preset = preset, .num_classes = 2, .image_size = 20}, gen,
                                      Device::cpu);
    const Tensor images = Tensor::randn({2, 3, 20, 20}, gen);
    if (std::string(preset) == "vit-micro") {
      const models::TokenAttention a = model->attention_probabilities(images);
      REQUIRE_FALSE(a.layers.empty());
      const Tensor& p = a.layers[0];
      CHECK(p.size(2) == 1 + a.grid * a.grid);
      const Tensor rows = sum(p, {3});
      for (float v : rows.to_vector()) CHECK(v == doctest::Approx(1).epsilon(1e-5));
      const std::vector<double> row = rollout_class_row(a, 1);
      CHECK(std::accumulate(row.begin(), row.end(), 0.0) == doctest::Approx(1));
    } else {
      // The split forward is the forward.
      model->eval();
      const std::vector<float> whole = model->forward(images).to_vector();
      const std::vector<float> split =
          model->classify_features(model->feature_map(images)).to_vector();
      CHECK(whole == split);
      model->train();
    }
    const std::vector<SaliencyMap> maps = saliency_maps(*model, images, {0, 1}, {"a", "b"});
    REQUIRE(maps.size() == 2);
    for (const SaliencyMap& m : maps) {
      CHECK(m.width == 20);
      CHECK(m.height == 20);
      CHECK(*std::max_element(m.values.begin(), m.values.end()) <= 1.f);
    }
    CHECK(model->training());  // the mode is restored
  }
}
