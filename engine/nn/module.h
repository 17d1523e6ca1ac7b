// module.h: the base of every layer and model: named parameters and buffers, child modules,
// train/eval mode.
//
// Names are dotted paths ("blocks.3.attn.qkv.weight"), the keys of checkpoints. Parameters are
// leaves that require a gradient; buffers (batch-norm running statistics) are saved in
// checkpoints but never trained.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/named_tensors.h"
#include "engine/tensor.h"

namespace forge::nn {

using forge::NamedTensors;

class Module {
 public:
  virtual ~Module() = default;
  // Single-input modules (layers, Sequential, image classifiers) implement this.
  virtual Tensor forward(const Tensor& x);

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  // Tells stochastic layers (dropout) the global training step, so that their randomness is a
  // function of (layer, step) and a resumed run repeats an uninterrupted one exactly.
  void set_step(uint64_t step);
  // Names the samples of the next forward's batch, one key each (after set_step, which forgets
  // them), so that per-sample randomness (drop path) is a function of the sample, not of its row.
  void set_sample_keys(const std::vector<uint64_t>& keys);

  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t parameter_count() const;

 protected:
  Tensor register_parameter(const std::string& name, Tensor value);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return child;
  }
  virtual void on_step(uint64_t step) {}
  virtual void on_sample_keys(const std::vector<uint64_t>&) {}

 private:
  void collect(const std::string& prefix, bool buffers, NamedTensors& out) const;

  NamedTensors parameters_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace forge::nn
