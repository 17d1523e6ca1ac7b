// cnn.cpp: the baseline CNN (see cnn.h).
#include "models/cnn.h"

#include <string>

#include "engine/ops.h"

namespace forge::models {

std::shared_ptr<nn::Sequential> conv_bn_relu(int in, int out, int stride, Generator& gen,
                                             Device device) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(in, out, 3, stride, 1, gen, device),
      std::make_shared<nn::BatchNorm2d>(out, device), std::make_shared<nn::ReLU>()});
}

BaselineCnn::BaselineCnn(ModelSpec spec, const CnnConfig& cfg, Generator& gen, Device device)
    : ImageClassifier(std::move(spec)) {
  int in = 3;
  for (size_t i = 0; i < cfg.channels.size(); ++i) {
    const int out = cfg.channels[i];
    auto stage = std::make_shared<nn::Sequential>();
    stage->push_back(conv_bn_relu(in, out, 1, gen, device));
    stage->push_back(conv_bn_relu(out, out, 1, gen, device));
    stages_.push_back(register_module("stages." + std::to_string(i), stage));
    in = out;
  }
  drop_ = register_module("drop", std::make_shared<nn::Dropout>(cfg.dropout, gen));
  head_ = register_module("head",
                          std::make_shared<nn::Linear>(in, this->spec().num_classes, gen, device));
}

Tensor BaselineCnn::forward(const Tensor& images) {
  return classify_features(feature_map(images));
}

Tensor BaselineCnn::feature_map(const Tensor& images) {
  Tensor x = images;
  for (size_t i = 0; i + 1 < stages_.size(); ++i) x = max_pool2d(stages_[i]->forward(x), 2, 2);
  return stages_.back()->forward(x);
}

Tensor BaselineCnn::classify_features(const Tensor& features) {
  return head_->forward(drop_->forward(global_avg_pool(max_pool2d(features, 2, 2))));
}

}  // namespace forge::models
