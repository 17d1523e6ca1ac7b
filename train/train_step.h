// train_step.h: one training step, the one the trainer (train/trainer.cpp), `bench model`
// (tools/bench/model_bench.cpp) and the model tests take, so that what is timed and what is
// checked against PyTorch (tests/models/test_pytorch_fixtures.cpp) is what training does:
//
//   set the step (dropout masks are a function of it) and the samples' keys (drop path draws
//   from them), set the learning rate, forward, cross-entropy with label smoothing (against the
//   mixed targets with mixup/cutmix), read the loss back; then, only if it is finite: zero the
//   gradients, backward, clip to a global norm, one optimizer step.
//
// A non-finite loss leaves the weights and the optimizer untouched, so the caller can stop
// without saving broken weights (the trainer does).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/nn/module.h"
#include "engine/optim/optimizer.h"

namespace forge::train {

struct StepSettings {
  uint64_t step = 0;  // the global step: Module::set_step
  float lr = 5e-4f;
  float label_smoothing = 0.1f;
  float clip_grad = 1.f;  // <= 0: no clipping
  // One key per sample of the batch, for per-sample randomness (Module::set_sample_keys); empty:
  // rows are keyed by their place in the batch.
  std::vector<uint64_t> sample_keys = {};
  // Mixup/cutmix targets (data::Batch): each row's partner label and its own label's weight;
  // empty: the plain labels. The loss is then mixed_cross_entropy (engine/ops.h).
  std::vector<int32_t> mix_labels = {};
  std::vector<float> mix_weights = {};
};

struct StepResult {
  Tensor logits;     // [batch, classes], from the forward before the update
  Tensor loss;       // [1], still attached to the graph of that forward
  float loss_value;  // loss read back to the host; the update was skipped unless finite
};

StepResult train_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                      const std::vector<int32_t>& labels, const StepSettings& settings);

}  // namespace forge::train
