// model_ema.h: an exponential moving average of a model's weights (timm's ModelEmaV2, --model-ema):
//
//   at the start  ema = w_0 (a copy of the initial parameters and buffers)
//   after step k  ema = decay * ema + (1 - decay) * w_k
//   so after k steps  ema_k = decay^k w_0 + (1 - decay) sum_{j=1..k} decay^(k-j) w_j.
//
// Every parameter and buffer is averaged (batch-norm running statistics too, as timm does). The
// average lives in a second model of the same architecture, in fp32 whatever the training step
// computes in, so it can be evaluated and saved like the model itself: the trainer writes it
// into last.safetensors under "ema." (engine/io/checkpoint.h), restores it on --resume, and also
// writes it alone as ema.safetensors, which eval and predict read like any other checkpoint.
#pragma once
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "models/model.h"

namespace forge::train {

class ModelEma {
 public:
  // `average`: a model of `model`'s architecture (its weights are overwritten with `model`'s).
  // The two models' tensors are paired here, once, by name and shape; `model` must outlive this.
  // Throws std::invalid_argument when the two do not have the same tensors or decay is not in
  // [0, 1].
  ModelEma(std::unique_ptr<models::ImageClassifier> average, const nn::Module& model, float decay);
  // One averaging step, after an optimizer step of `model` (the model given at construction:
  // std::logic_error otherwise): one Backend::ema_update over the pairs, a single launch on a GPU.
  void update(const nn::Module& model);
  // The averaged model (evaluate it; its tensors are what a checkpoint stores).
  models::ImageClassifier& model() { return *average_; }
  NamedTensors tensors() const;
  float decay() const { return decay_; }

 private:
  std::unique_ptr<models::ImageClassifier> average_;
  const nn::Module* model_;
  float decay_;
  // The paired tensors (their handles keep the storage the pointers below point into) and the
  // update's table of (average, model) pointers, resolved at construction.
  NamedTensors average_tensors_, model_tensors_;
  std::vector<EmaTensor> pairs_;
  Device device_ = Device::cpu;
};

}  // namespace forge::train
