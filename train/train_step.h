// train_step.h: one training step, the one the trainer (train/trainer.cpp), `bench model`
// (tools/bench/model_bench.cpp) and the model tests take, so that what is timed and what is
// checked against PyTorch (tests/models/test_pytorch_fixtures.cpp) is what training does:
//
//   set the step (dropout masks are a function of it) and the samples' keys (drop path draws
//   from them), set the learning rate, hand the step's values to the backend (engine/backend.h
//   set_step_values: on a GPU they live in device memory), forward, cross-entropy with label
//   smoothing (against the mixed targets with mixup/cutmix), zero the gradients, backward (with the
//   all-reduce of data-parallel training), clip to a global norm, one optimizer step.
//
// Nothing is read back to the host (on a GPU the host never waits for the device here): the loss
// stays on the device, and the caller reads it when it shows it (train/step_metrics.h: once a log
// interval). A non-finite loss is therefore not caught at its step: the update goes ahead (clipping
// leaves a NaN gradient unscaled, so the weights turn NaN too), and the caller, on finding it,
// must stop without saving the weights (the trainer does).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/dist/gradient_reducer.h"
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
  // Data-parallel training (train/data_parallel.h): backward through the reducer, which leaves the
  // sum over ranks of grad_weight * gradient (before clipping); null: a plain backward.
  dist::GradientReducer* reducer = nullptr;
  float grad_weight = 1.f;
  // The labels already on the model's device (int32, the same values as `labels`, checked by the
  // caller), as a captured step needs them (train/graph_step.h): null: uploaded from `labels`.
  std::shared_ptr<Storage> device_labels = nullptr;
};

struct StepResult {
  Tensor logits;  // [batch, classes], from the forward before the update
  Tensor loss;    // [1] on the model's device, still attached to the graph of that forward
};

StepResult train_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                      const std::vector<int32_t>& labels, const StepSettings& settings);

// train_step in its two halves, for a step captured as a CUDA graph (train/graph_step.h):
// set_up_step does the host's part (step, keys, learning rate, the backend's step values: an
// upload, never captured), run_step all that runs on the device (forward to optimizer step).
void set_up_step(nn::Module& model, Optimizer& optimizer, Device device,
                 const StepSettings& settings);
StepResult run_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                    const std::vector<int32_t>& labels, const StepSettings& settings);

}  // namespace forge::train
