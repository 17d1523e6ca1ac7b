// model_ema.cpp: the weight average's update (see model_ema.h). The average's tensors are paired
// with the model's once, at construction, by name, shape and device; each update is then one
// Backend::ema_update over that table (one launch on a GPU, as the multi-tensor AdamW).
#include "train/model_ema.h"

#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "train/saved_model.h"

namespace forge::train {
namespace {

// The averaged tensors beside the model's, checked to correspond name by name, all on one device.
void check_same_tensors(const NamedTensors& average, const NamedTensors& model) {
  if (average.size() != model.size())
    throw std::invalid_argument("model EMA: the average has " + std::to_string(average.size()) +
                                " tensors, the model " + std::to_string(model.size()));
  for (size_t i = 0; i < model.size(); ++i) {
    const Tensor &a = average[i].second, &m = model[i].second;
    if (average[i].first != model[i].first || a.shape() != m.shape() || a.device() != m.device())
      throw std::invalid_argument("model EMA: tensor " + average[i].first +
                                  " does not match the model's " + model[i].first);
    if (m.device() != model.front().second.device())
      throw std::invalid_argument("model EMA: tensor " + model[i].first + " is on " +
                                  device_name(m.device()) + ", the model's first on " +
                                  device_name(model.front().second.device()));
  }
}

}  // namespace

ModelEma::ModelEma(std::unique_ptr<models::ImageClassifier> average, const nn::Module& model,
                   float decay)
    : average_(std::move(average)), model_(&model), decay_(decay) {
  if (!(decay >= 0.f && decay <= 1.f))
    throw std::invalid_argument("model EMA: decay " + std::to_string(decay) + " is outside [0, 1]");
  average_tensors_ = tensors();
  model_tensors_ = model_tensors(model);
  check_same_tensors(average_tensors_, model_tensors_);
  for (size_t i = 0; i < average_tensors_.size(); ++i) {
    const Tensor &mine = average_tensors_[i].second, &theirs = model_tensors_[i].second;
    mine.copy_from(theirs);
    pairs_.push_back({mine.data(), theirs.data(), mine.numel()});
  }
  if (!model_tensors_.empty()) device_ = model_tensors_.front().second.device();
  average_->eval();
}

NamedTensors ModelEma::tensors() const {
  return model_tensors(*average_);
}

void ModelEma::update(const nn::Module& model) {
  if (&model != model_)
    throw std::logic_error("model EMA: update() was given another model than the one it averages");
  if (pairs_.empty()) return;
  backend(device_).ema_update(pairs_.data(), static_cast<int>(pairs_.size()), decay_);
}

}  // namespace forge::train
