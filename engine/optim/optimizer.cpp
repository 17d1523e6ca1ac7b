// optimizer.cpp: what every optimizer shares: parameter checks, the step loop (which parameters
// to update, gradient layout), named state for checkpoints, and gradient-norm clipping.
#include "engine/optim/optimizer.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"

namespace forge {

static std::string param_str(const char* name, size_t i, const Tensor& p) {
  return std::string(name) + ": parameter " + std::to_string(i) + " (shape " +
         shape_str(p.shape()) + ")";
}

Optimizer::Optimizer(std::vector<Tensor> params, float lr, const char* name)
    : name_(name),
      params_(std::move(params)),
      param_steps_(params_.size(), 0),
      last_updated_(params_.size(), false) {
  set_lr(lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined())
      throw std::invalid_argument(std::string(name) + ": parameter " + std::to_string(i) +
                                  " is an undefined tensor");
    if (!p.requires_grad() || p.grad_fn())
      throw std::invalid_argument(param_str(name, i, p) +
                                  " is not a leaf with requires_grad: it would never get a grad");
    if (!p.is_contiguous())
      throw std::invalid_argument(param_str(name, i, p) + " is not contiguous");
  }
}

void Optimizer::set_lr(float lr) {
  if (!(lr >= 0.f) || !std::isfinite(lr))
    throw std::invalid_argument(
        std::string(name_) + ": learning rate must be finite and >= 0, got " + std::to_string(lr));
  lr_ = lr;
}

void Optimizer::step() {
  NoGradGuard no_grad;
  ++step_count_;
  std::vector<ParamUpdate> updates;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    last_updated_[i] = g.defined();
    if (!g.defined()) continue;
    if (g.shape() != p.shape() || g.device() != p.device())
      throw std::invalid_argument(param_str(name_, i, p) + " on " + device_name(p.device()) +
                                  " has a gradient of shape " + shape_str(g.shape()) + " on " +
                                  device_name(g.device()));
    if (!g.is_contiguous()) g = g.contiguous();  // the primitives read flat buffers
    updates.push_back({i, p, g, ++param_steps_[i]});
  }
  if (!updates.empty()) update(updates);
}

void Optimizer::count_step(const std::vector<bool>& updated) {
  if (updated.size() != params_.size())
    throw std::invalid_argument(std::string(name_) +
                                ": count_step: " + std::to_string(updated.size()) + " flags for " +
                                std::to_string(params_.size()) + " parameters");
  ++step_count_;
  for (size_t i = 0; i < params_.size(); ++i)
    if (updated[i]) ++param_steps_[i];
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.zero_grad();
}

Tensor Optimizer::add_buffer(const char* kind, size_t i) {
  Tensor buffer = Tensor::zeros(params_[i].shape(), params_[i].device());
  buffers_.emplace_back(std::string(kind) + "." + std::to_string(i), buffer);
  return buffer;
}

// The per-parameter update counts travel as one-element float tensors "step.<i>" (exact up to
// 2^24 updates, far beyond a training run), so a checkpoint holds only F32 tensors.
OptimizerState Optimizer::state() const {
  OptimizerState s{step_count_, buffers_};
  for (size_t i = 0; i < params_.size(); ++i)
    s.tensors.emplace_back("step." + std::to_string(i),
                           Tensor::full({1}, static_cast<float>(param_steps_[i])));
  return s;
}

void Optimizer::load_state(const OptimizerState& saved) {
  const OptimizerState expected = state();
  if (saved.step < 0)
    throw std::invalid_argument(std::string(name_) + ": load_state: negative step count " +
                                std::to_string(saved.step));
  if (saved.tensors.size() != expected.tensors.size())
    throw std::invalid_argument(
        std::string(name_) + ": load_state: " + std::to_string(saved.tensors.size()) +
        " state tensors, expected " + std::to_string(expected.tensors.size()));
  // Check everything before changing anything, so a failed load leaves the optimizer as it was.
  std::vector<const Tensor*> sources;
  for (const auto& [name, tensor] : expected.tensors) {
    const Tensor* found = nullptr;
    for (const auto& [saved_name, saved_tensor] : saved.tensors)
      if (saved_name == name) found = &saved_tensor;
    if (!found)
      throw std::invalid_argument(std::string(name_) + ": load_state: missing state tensor " +
                                  name);
    if (!found->defined() || found->shape() != tensor.shape())
      throw std::invalid_argument(std::string(name_) + ": load_state: state tensor " + name +
                                  " has shape " +
                                  (found->defined() ? shape_str(found->shape()) : "undefined") +
                                  ", expected " + shape_str(tensor.shape()));
    sources.push_back(found);
  }
  std::vector<int64_t> param_steps(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const float t = sources[buffers_.size() + i]->item();
    if (!(t >= 0.f) || t != std::floor(t))
      throw std::invalid_argument(std::string(name_) + ": load_state: step." + std::to_string(i) +
                                  " = " + std::to_string(t) + " is not a count");
    param_steps[i] = static_cast<int64_t>(t);
  }
  for (size_t b = 0; b < buffers_.size(); ++b) buffers_[b].second.copy_from(*sources[b]);
  param_steps_ = std::move(param_steps);
  step_count_ = saved.step;
}

Tensor clip_grad_norm(const std::vector<Tensor>& params, float max_norm) {
  if (!(max_norm > 0.f))
    throw std::invalid_argument("clip_grad_norm: max_norm must be > 0, got " +
                                std::to_string(max_norm));
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    if (!grads.empty() && g.device() != grads[0].device())
      throw std::invalid_argument(std::string("clip_grad_norm: gradients on different devices (") +
                                  device_name(grads[0].device()) + " and " +
                                  device_name(g.device()) + ")");
    if (!g.is_contiguous()) {  // scaled in place below, so make the stored gradient flat
      g = g.contiguous();
      p.set_grad(g);
    }
    grads.push_back(g);
  }
  if (grads.empty()) return Tensor::zeros({1}, params.empty() ? Device::cpu : params[0].device());
  // The whole list to one primitive: on a GPU two launches, and the norm stays on the device.
  Tensor norm = Tensor::empty({1}, grads[0].device());
  std::vector<float*> data;
  std::vector<int64_t> sizes;
  for (const Tensor& g : grads) {
    data.push_back(g.data());
    sizes.push_back(g.numel());
  }
  backend(grads[0].device())
      .clip_by_global_norm(data.data(), sizes.data(), static_cast<int>(grads.size()), max_norm,
                           norm.data());
  return norm;
}

}  // namespace forge
