// model_ema.cpp: the weight average's update, with the backend's in-place primitives (see
// model_ema.h): per tensor, ema *= decay (in place), then ema += (1 - decay) w: two launches a
// tensor on a GPU (a multi-tensor kernel, as AdamW has, would make it one).
#include "train/model_ema.h"

#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "train/saved_model.h"

namespace forge::train {
namespace {

// The averaged tensors beside the model's, checked to correspond name by name.
void check_same_tensors(const NamedTensors& average, const NamedTensors& model) {
  if (average.size() != model.size())
    throw std::invalid_argument("model EMA: the average has " + std::to_string(average.size()) +
                                " tensors, the model " + std::to_string(model.size()));
  for (size_t i = 0; i < model.size(); ++i)
    if (average[i].first != model[i].first ||
        average[i].second.shape() != model[i].second.shape() ||
        average[i].second.device() != model[i].second.device())
      throw std::invalid_argument("model EMA: tensor " + average[i].first +
                                  " does not match the model's " + model[i].first);
}

}  // namespace

ModelEma::ModelEma(std::unique_ptr<models::ImageClassifier> average, const nn::Module& model,
                   float decay)
    : average_(std::move(average)), decay_(decay) {
  if (!(decay >= 0.f && decay <= 1.f))
    throw std::invalid_argument("model EMA: decay " + std::to_string(decay) + " is outside [0, 1]");
  const NamedTensors mine = tensors(), theirs = model_tensors(model);
  check_same_tensors(mine, theirs);
  for (size_t i = 0; i < mine.size(); ++i) mine[i].second.copy_from(theirs[i].second);
  average_->eval();
}

NamedTensors ModelEma::tensors() const {
  return model_tensors(*average_);
}

void ModelEma::update(const nn::Module& model) {
  const NamedTensors mine = tensors(), theirs = model_tensors(model);
  check_same_tensors(mine, theirs);
  if (mine.empty()) return;
  Backend& be = backend(mine.front().second.device());
  for (size_t i = 0; i < mine.size(); ++i) {
    float* average = mine[i].second.data();
    const int64_t n = mine[i].second.numel();
    be.unary(UnaryOp::scale, average, average, n, decay_);
    be.axpy(1.f - decay_, theirs[i].second.data(), average, n);
  }
}

}  // namespace forge::train
