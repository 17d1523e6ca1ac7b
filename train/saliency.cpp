// saliency.cpp: attention rollout and Grad-CAM (see saliency.h for the math).
#include "train/saliency.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "train/example_prediction.h"

namespace forge::train {

std::vector<double> rollout_class_row(const models::TokenAttention& attention, int index) {
  if (attention.layers.empty()) throw std::invalid_argument("attention rollout: no layers");
  const int64_t heads = attention.layers[0].size(1), t = attention.layers[0].size(2);
  // The class-token row of R = Â_L ... Â_1, built from the left: r <- r Â_l, l = L .. 1.
  std::vector<double> row(t, 0.0), next(t);
  row[0] = 1;
  for (auto layer = attention.layers.rbegin(); layer != attention.layers.rend(); ++layer) {
    const std::vector<float> a = layer->slice(0, index, index + 1).contiguous().to_vector();
    std::fill(next.begin(), next.end(), 0.0);
    for (int64_t i = 0; i < t; ++i) {
      if (row[i] == 0) continue;
      // Row i of Â: the head mean plus the identity, renormalised to sum 1.
      std::vector<double> hat(t, 0.0);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < t; ++j) hat[j] += a[(h * t + i) * t + j] / heads;
      hat[i] += 1;
      double total = 0;
      for (double v : hat) total += v;
      for (int64_t j = 0; j < t; ++j) next[j] += row[i] * hat[j] / total;
    }
    row.swap(next);
  }
  return row;
}

SaliencyMap resample_to_image(const std::vector<float>& grid, int grid_w, int grid_h, int width,
                              int height) {
  SaliencyMap m{width, height, std::vector<float>(size_t(width) * height), ""};
  auto at = [&](int x, int y) {
    return grid[size_t(std::clamp(y, 0, grid_h - 1)) * grid_w + std::clamp(x, 0, grid_w - 1)];
  };
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      // The pixel centre in grid cells, relative to the first cell's centre.
      const double gx = (x + 0.5) * grid_w / width - 0.5, gy = (y + 0.5) * grid_h / height - 0.5;
      const int x0 = int(std::floor(gx)), y0 = int(std::floor(gy));
      const double fx = gx - x0, fy = gy - y0;
      m.values[size_t(y) * width + x] =
          float((1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
                fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1)));
    }
  const auto [low, high] = std::minmax_element(m.values.begin(), m.values.end());
  const float lo = *low, range = *high - *low;
  for (float& v : m.values) v = range > 0 ? (v - lo) / range : 0.f;
  return m;
}

SaliencyMap rollout_map(const models::TokenAttention& attention, int index, int image_size) {
  const std::vector<double> row = rollout_class_row(attention, index);
  const int grid = attention.grid, padded = attention.padded_size;
  if (int64_t(row.size()) != 1 + int64_t(grid) * grid)
    throw std::invalid_argument("attention rollout: " + std::to_string(row.size()) +
                                " tokens is not a class token and a " + std::to_string(grid) + "x" +
                                std::to_string(grid) + " patch grid");
  const std::vector<float> patches(row.begin() + 1, row.end());
  // Over the padded square, then its centre crop: the image (as the model pads it).
  const SaliencyMap square = resample_to_image(patches, grid, grid, padded, padded);
  const int offset = (padded - image_size) / 2;
  std::vector<float> crop(size_t(image_size) * image_size);
  for (int y = 0; y < image_size; ++y)
    for (int x = 0; x < image_size; ++x)
      crop[size_t(y) * image_size + x] = square.values[size_t(y + offset) * padded + x + offset];
  SaliencyMap m = resample_to_image(crop, image_size, image_size, image_size, image_size);
  m.method = "attention rollout";
  return m;
}

std::vector<SaliencyMap> grad_cam(models::ImageClassifier& model, const Tensor& images,
                                  const std::vector<int>& classes) {
  const bool was_training = model.training();
  model.eval();
  Tensor features;
  {
    NoGradGuard no_grad;  // only the head's part of the graph is needed
    features = model.feature_map(images);
  }
  features = features.detach();
  features.requires_grad_(true);
  const Tensor logits = model.classify_features(features);
  const int64_t b = images.size(0), num_classes = logits.size(1);
  // d(sum_i y_{i, c_i}) / dA: each image's gradient is its own class score's (eval mode: the
  // images of a batch do not interact).
  std::vector<float> seed(size_t(b) * num_classes, 0.f);
  for (int64_t i = 0; i < b; ++i) seed[size_t(i) * num_classes + classes.at(i)] = 1.f;
  run_backward(logits, Tensor::from_vector(seed, logits.shape(), logits.device()));
  for (const Tensor& p : model.parameters()) p.zero_grad();
  model.train(was_training);

  const int64_t k = features.size(1), h = features.size(2), w = features.size(3);
  const std::vector<float> a = features.detach().to_vector(), g = features.grad().to_vector();
  std::vector<SaliencyMap> maps;
  for (int64_t i = 0; i < b; ++i) {
    std::vector<float> cam(size_t(h) * w, 0.f);
    for (int64_t c = 0; c < k; ++c) {
      const size_t base = size_t(i * k + c) * h * w;
      double alpha = 0;
      for (int64_t p = 0; p < h * w; ++p) alpha += g[base + p];
      alpha /= double(h * w);
      for (int64_t p = 0; p < h * w; ++p) cam[p] += float(alpha * a[base + p]);
    }
    for (float& v : cam) v = std::max(v, 0.f);
    maps.push_back(
        resample_to_image(cam, int(w), int(h), int(images.size(3)), int(images.size(2))));
  }
  return maps;
}

std::vector<SaliencyMap> saliency_maps(models::ImageClassifier& model, const Tensor& images,
                                       const std::vector<int>& classes,
                                       const std::vector<std::string>& class_names) {
  std::vector<SaliencyMap> maps;
  if (model.saliency_kind() == models::SaliencyKind::attention_rollout) {
    const bool was_training = model.training();
    model.eval();
    const models::TokenAttention attention = model.attention_probabilities(images);
    model.train(was_training);
    for (int64_t i = 0; i < images.size(0); ++i)
      maps.push_back(rollout_map(attention, int(i), int(images.size(3))));
    return maps;
  }
  maps = grad_cam(model, images, classes);
  for (size_t i = 0; i < maps.size(); ++i)
    maps[i].method = "Grad-CAM (class " + class_names.at(classes[i]) + ")";
  return maps;
}

void add_saliency(models::ImageClassifier& model, std::vector<ExamplePrediction>& examples,
                  int count, const std::vector<std::string>& class_names, Device device) {
  const size_t n = std::min(examples.size(), size_t(std::max(count, 0)));
  if (n == 0) return;
  const int h = examples[0].height, w = examples[0].width;
  std::vector<float> batch;
  std::vector<int> classes;
  for (size_t i = 0; i < n; ++i) {
    batch.insert(batch.end(), examples[i].input.begin(), examples[i].input.end());
    classes.push_back(examples[i].predicted);
  }
  const Tensor images = Tensor::from_vector(batch, {int64_t(n), 3, h, w}, device);
  std::vector<SaliencyMap> maps = saliency_maps(model, images, classes, class_names);
  for (size_t i = 0; i < n; ++i) examples[i].saliency = std::move(maps[i]);
}

}  // namespace forge::train
