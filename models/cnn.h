// cnn.h: the baseline convolutional network.
//
//   stages x [ (3x3 conv - batch norm - ReLU) x 2, 2x2 max pool ] -> global average pool
//   -> dropout -> linear head
//
// The "cnn" preset: four stages of 32, 64, 128, 256 channels, dropout 0.5, He-normal weights.
// At 120x120 the stages see 120, 60, 30 and 15 pixels and hand 7x7 maps to the pool.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/layers.h"
#include "models/model.h"

namespace forge::models {

struct CnnConfig {
  std::vector<int> channels = {32, 64, 128, 256};
  float dropout = 0.5f;
};

// conv3x3 (no bias: the batch norm's shift replaces it) - batch norm - ReLU.
std::shared_ptr<nn::Sequential> conv_bn_relu(int in, int out, int stride, Generator& gen,
                                             Device device);

class BaselineCnn : public ImageClassifier {
 public:
  BaselineCnn(ModelSpec spec, const CnnConfig& cfg, Generator& gen, Device device);
  Tensor forward(const Tensor& images) override;
  // The last stage's output before its pool (15x15 at 120 px), for Grad-CAM.
  Tensor feature_map(const Tensor& images) override;
  Tensor classify_features(const Tensor& features) override;

 private:
  std::vector<std::shared_ptr<nn::Sequential>> stages_;
  std::shared_ptr<nn::Dropout> drop_;
  std::shared_ptr<nn::Linear> head_;
};

}  // namespace forge::models
