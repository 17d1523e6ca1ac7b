// layers.h: the standard layers, each a Module around one differentiable op of engine/ops.h.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/module.h"

namespace forge::nn {

enum class Init { kaiming_normal, xavier_uniform };

// y = x W^T + b, W [out, in]. Bias starts at zero.
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, Generator& gen, Device device, Init init = Init::xavier_uniform,
         bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

// 2-D convolution, weight [out, in, k, k], zero padding. He-normal weights by default.
class Conv2d : public Module {
 public:
  Conv2d(int in, int out, int kernel, int stride, int pad, Generator& gen, Device device,
         bool bias = false, Init init = Init::kaiming_normal);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  int stride, pad;
};

// Batch normalisation over [n, c, h, w]; gamma = 1, beta = 0, running mean 0 and variance 1. In
// training inside a dist::SyncBatchNormScope, the statistics are those of every rank's batch
// (engine/dist/sync_batch_norm.h).
class BatchNorm2d : public Module {
 public:
  BatchNorm2d(int channels, Device device, float momentum = 0.1f, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;
  Tensor gamma, beta, running_mean, running_var;
  float momentum, eps;
};

// Layer normalisation over the last dimension.
class LayerNorm : public Module {
 public:
  LayerNorm(int64_t dim, Device device, float eps = 1e-6f);
  Tensor forward(const Tensor& x) override;
  Tensor gamma, beta;
  float eps;
};

// Inverted dropout, active in training mode only. Its mask depends on (the layer's own seed, the
// step given by set_step, the call's number within that step): seeded, and repeatable on resume.
// As one rank of several, the mask is the global batch's, this rank's rows of it
// (engine/dist/batch_share.h), so it does not depend on the number of ranks.
class Dropout : public Module {
 public:
  Dropout(float p, Generator& gen);
  Tensor forward(const Tensor& x) override;
  // The fused forms (engine/ops.h), drawing the same masks forward(x) would:
  // residual + forward(x), and forward(gelu(x)).
  Tensor forward_add(const Tensor& residual, const Tensor& x);
  Tensor forward_gelu(const Tensor& x);
  float p;

 protected:
  void on_step(uint64_t step) override;

 private:
  // This call's mask: step_seed(seed_, step_, calls_) (engine/random.h), through the backend,
  // which on a GPU derives it on the device (engine/backend.h dropout_seed).
  uint64_t next_seed(Device device);
  uint64_t seed_, step_ = 0, calls_ = 0;
};

// Stochastic depth (Huang et al. 2016; timm's DropPath) on a residual branch: in training,
// residual + x * keep_b / (1 - p), keep_b one Bernoulli(1 - p) draw per sample b of the batch
// (the whole branch of a sample is dropped or kept, and scaled so its expectation is x); in eval
// mode, residual + x. A sample's draw is a function of (its key from set_sample_keys, this
// layer's number): it does not depend on the batch the sample lands in. Rows without keys (a
// caller that names no samples, e.g. the benchmarks) are keyed by (step, row).
class DropPath : public Module {
 public:
  DropPath(float p, uint64_t layer);
  Tensor forward_add(const Tensor& residual, const Tensor& x);
  // Whether forward_add draws anything (training with p > 0): otherwise it is a plain sum.
  bool active() const { return training() && p > 0.f; }
  // The per-sample factors keep_b / (1 - p) for `rows` samples: 0 or 1 / (1 - p).
  std::vector<float> sample_scales(int64_t rows) const;
  float p;

 protected:
  void on_step(uint64_t step) override;
  void on_sample_keys(const std::vector<uint64_t>& keys) override;

 private:
  uint64_t layer_, step_ = 0;
  std::vector<uint64_t> keys_;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// Applies its children in order; they are named "0", "1", ... in parameter names.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);
  void push_back(std::shared_ptr<Module> layer);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

}  // namespace forge::nn
