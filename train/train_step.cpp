// train_step.cpp: one training step (see train_step.h).
#include "train/train_step.h"

#include "engine/backend.h"
#include "engine/ops.h"

namespace forge::train {

void set_up_step(nn::Module& model, Optimizer& optimizer, Device device, const StepSettings& s) {
  model.set_step(s.step);
  model.set_sample_keys(s.sample_keys);
  optimizer.set_lr(s.lr);
  backend(device).set_step_values(
      {.step = s.step, .lr = s.lr, .optimizer_steps = optimizer.step_count()});
}

StepResult run_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                    const std::vector<int32_t>& labels, const StepSettings& s) {
  StepResult r;
  r.logits = model.forward(images);
  if (!s.mix_labels.empty())
    r.loss = mixed_cross_entropy(r.logits, labels, s.mix_labels, s.mix_weights, s.label_smoothing);
  else if (s.device_labels)
    r.loss = cross_entropy(r.logits, s.device_labels, s.label_smoothing);
  else
    r.loss = cross_entropy(r.logits, labels, s.label_smoothing);
  optimizer.zero_grad();
  if (s.reducer)
    s.reducer->backward(r.loss, s.grad_weight);
  else
    r.loss.backward();
  if (s.clip_grad > 0) clip_grad_norm(optimizer.params(), s.clip_grad);
  optimizer.step();
  return r;
}

StepResult train_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                      const std::vector<int32_t>& labels, const StepSettings& s) {
  set_up_step(model, optimizer, images.device(), s);
  return run_step(model, optimizer, images, labels, s);
}

}  // namespace forge::train
