// optimizer.h: the optimizers that update parameters from their gradients (SGD, Adam, AdamW) and
// gradient-norm clipping.
//
// An Optimizer holds handles on the parameters (leaf tensors with requires_grad) and one set of
// state buffers per parameter, on the parameter's device. step() applies one update through the
// backend's fused primitives (Backend::sgd_step / adam_step, whose comments give the exact math)
// to every parameter that has a gradient; parameters without one (frozen, or unused by this
// step's graph) are left untouched and their state does not advance. Adam hands the whole list to
// one adam_step call per device: a single launch on a GPU.
//
// Checkpoints: state() names every buffer "<kind>.<i>" (i = index of the parameter in the list
// given to the constructor), e.g. "exp_avg.3", "exp_avg_sq.3", "momentum.3", plus "step.<i>",
// the number of updates parameter i has received (Adam's bias correction uses it). load_state()
// takes the same names back.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/named_tensors.h"
#include "engine/tensor.h"

namespace forge {

struct OptimizerState {
  int64_t step = 0;      // number of step() calls so far
  NamedTensors tensors;  // per-parameter buffers by name, see the file comment
};

class Optimizer {
 public:
  // Throws unless every parameter is a defined leaf with requires_grad.
  Optimizer(std::vector<Tensor> params, float lr, const char* name);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, at the current learning rate.
  void step();
  // Which parameters (by index) the latest step() updated: those that had a gradient.
  const std::vector<bool>& updated_by_last_step() const { return last_updated_; }
  // step()'s counts without its update, for an update that ran on the device without a call to
  // step() (a replayed CUDA graph, train/graph_step.h): the step count advances, and the update
  // count of every parameter marked in `updated` (updated_by_last_step() of the step that was
  // captured). Not the host's gradients: a replay leaves them as they were, and what ran since
  // the capture may have dropped them (Grad-CAM in the run report zeroes every one).
  void count_step(const std::vector<bool>& updated);
  // Drops every parameter's accumulated gradient (the next backward() starts from nothing).
  void zero_grad();

  float lr() const { return lr_; }
  void set_lr(float lr);  // for schedules: call before step()
  int64_t step_count() const { return step_count_; }
  const std::vector<Tensor>& params() const { return params_; }

  // The live state buffers (handles, not copies: save them before the next step()) and counts.
  OptimizerState state() const;
  // Copies a saved state in. Every name state() would produce must be present with the same
  // shape, and no other; the first mismatch is named in the error.
  void load_state(const OptimizerState& saved);

 protected:
  // Registers a zero-filled buffer shaped like parameter i under "<kind>.<i>"; returns it.
  Tensor add_buffer(const char* kind, size_t i);
  // One parameter of a step: index i, contiguous p and g on one device, and t >= 1, the updates
  // this parameter has received, this one included.
  struct ParamUpdate {
    size_t i;
    Tensor p, g;
    int64_t t;
  };
  // Applies one step to every parameter listed (those with a gradient, in order).
  virtual void update(const std::vector<ParamUpdate>& updates) = 0;

 private:
  const char* name_;
  std::vector<Tensor> params_;
  float lr_;
  int64_t step_count_ = 0;
  std::vector<int64_t> param_steps_;  // updates received, per parameter
  std::vector<bool> last_updated_;    // per parameter: updated by the latest step()
  NamedTensors buffers_;              // registered by the subclass, in registration order
};

struct SgdOptions {
  float lr = 0.1f;
  float momentum = 0.f;
  float weight_decay = 0.f;  // L2: added to the gradient as wd * p
  bool nesterov = false;     // needs momentum > 0
};

// SGD with (optionally Nesterov) momentum: buf = momentum buf + g', p -= lr buf
// (or lr (g' + momentum buf) with Nesterov), g' = g + wd p. Buffers: "momentum.<i>".
class SGD final : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SgdOptions& options);

 private:
  void update(const std::vector<ParamUpdate>& updates) override;
  SgdOptions options_;
  std::vector<Tensor> momentum_;
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;
};

// Adam (Kingma & Ba) with bias correction; weight decay as L2, g' = g + wd p, so the decay is
// rescaled by the adaptive denominator like the gradient. Buffers "exp_avg.<i>" (m) and
// "exp_avg_sq.<i>" (v).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options);

 protected:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, const char* name);

 private:
  void update(const std::vector<ParamUpdate>& updates) override;
  AdamOptions options_;
  bool decoupled_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, p -= lr wd p before the Adam
// update, so every weight shrinks by the same factor whatever its gradient history.
class AdamW final : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamOptions& options);
};

// Scales every gradient by max_norm / (norm + 1e-6) when the global norm
//   norm = sqrt(sum over parameters of sum_i g_i^2)
// exceeds max_norm, and returns the norm (before clipping) as a one-element tensor on the
// gradients' device, without waiting for it: on a GPU two launches (Backend::clip_by_global_norm:
// the sum of squares, then the norm, the scale and its application on the device), no transfer;
// read it (item()) only where it is shown. A non-finite norm (a NaN or inf gradient) leaves the
// gradients untouched: scaling would spread the NaN into every weight. Parameters without a
// gradient are ignored (none at all: a norm of 0); the gradients must share one device.
Tensor clip_grad_norm(const std::vector<Tensor>& params, float max_norm);

}  // namespace forge
