// train_step.cpp: one training step (see train_step.h).
#include "train/train_step.h"

#include "engine/ops.h"

namespace forge::train {

StepResult train_step(nn::Module& model, Optimizer& optimizer, const Tensor& images,
                      const std::vector<int32_t>& labels, const StepSettings& s) {
  model.set_step(s.step);
  model.set_sample_keys(s.sample_keys);
  optimizer.set_lr(s.lr);
  StepResult r;
  r.logits = model.forward(images);
  r.loss = s.mix_labels.empty() ? cross_entropy(r.logits, labels, s.label_smoothing)
                                : mixed_cross_entropy(r.logits, labels, s.mix_labels, s.mix_weights,
                                                      s.label_smoothing);
  optimizer.zero_grad();
  if (s.reducer)
    s.reducer->backward(r.loss, s.grad_weight);
  else
    r.loss.backward();
  if (s.clip_grad > 0) clip_grad_norm(optimizer.params(), s.clip_grad);
  optimizer.step();
  return r;
}

}  // namespace forge::train
