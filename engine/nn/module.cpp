// module.cpp: recursive traversal of parameters, buffers and modes.
#include "engine/nn/module.h"

#include <stdexcept>

namespace forge::nn {

Tensor Module::forward(const Tensor&) {
  throw std::logic_error("this module does not take a single input: call its own forward");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::set_step(uint64_t step) {
  on_step(step);
  for (auto& [name, child] : children_) child->set_step(step);
}

void Module::set_sample_keys(const std::vector<uint64_t>& keys) {
  on_sample_keys(keys);
  for (auto& [name, child] : children_) child->set_sample_keys(keys);
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  value.requires_grad_(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, value);
  return value;
}

void Module::collect(const std::string& prefix, bool buffers, NamedTensors& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

}  // namespace forge::nn
