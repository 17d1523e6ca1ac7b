// train_step.cpp: one training step (see train_step.h).
#include "train/train_step.h"

#include "engine/ops.h"

namespace forge::train {

StepResult train_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                      const std::vector<int32_t>& labels, const StepSettings& s) {
  model.set_step(s.step);
  optimizer.set_lr(s.lr);
  StepResult r;
  r.logits = model.forward(images);
  r.loss = cross_entropy(r.logits, labels, s.label_smoothing);
  optimizer.zero_grad();
  r.loss.backward();
  if (s.clip_grad > 0) clip_grad_norm(optimizer.params(), s.clip_grad);
  optimizer.step();
  return r;
}

}  // namespace forge::train
