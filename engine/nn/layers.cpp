// layers.cpp: construction (shapes and initialisation) and forward of the standard layers.
#include "engine/nn/layers.h"

#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/dist/batch_share.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/nn/init.h"
#include "engine/ops.h"

namespace forge::nn {

Linear::Linear(int64_t in, int64_t out, Generator& gen, Device device, Init init, bool has_bias) {
  weight = register_parameter("weight", init == Init::xavier_uniform
                                            ? xavier_uniform({out, in}, in, out, gen, device)
                                            : kaiming_normal({out, in}, in, gen, device));
  if (has_bias) bias = register_parameter("bias", Tensor::zeros({out}, device));
}

Tensor Linear::forward(const Tensor& x) {
  return linear(x, weight, bias);
}

Conv2d::Conv2d(int in, int out, int kernel, int stride_, int pad_, Generator& gen, Device device,
               bool has_bias, Init init)
    : stride(stride_), pad(pad_) {
  const Shape shape{out, in, kernel, kernel};
  const int64_t fan_in = int64_t(in) * kernel * kernel, fan_out = int64_t(out) * kernel * kernel;
  weight = register_parameter("weight", init == Init::kaiming_normal
                                            ? kaiming_normal(shape, fan_in, gen, device)
                                            : xavier_uniform(shape, fan_in, fan_out, gen, device));
  if (has_bias) bias = register_parameter("bias", Tensor::zeros({out}, device));
}

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, stride, pad);
}

BatchNorm2d::BatchNorm2d(int channels, Device device, float momentum_, float eps_)
    : momentum(momentum_), eps(eps_) {
  gamma = register_parameter("weight", Tensor::ones({channels}, device));
  beta = register_parameter("bias", Tensor::zeros({channels}, device));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}, device));
  running_var = register_buffer("running_var", Tensor::ones({channels}, device));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  if (dist::Communicator* group = dist::sync_batch_norm_group(); group && training())
    return dist::sync_batch_norm2d(x, gamma, beta, running_mean, running_var, momentum, eps,
                                   *group);
  return batch_norm2d(x, gamma, beta, running_mean, running_var, training(), momentum, eps);
}

LayerNorm::LayerNorm(int64_t dim, Device device, float eps_) : eps(eps_) {
  gamma = register_parameter("weight", Tensor::ones({dim}, device));
  beta = register_parameter("bias", Tensor::zeros({dim}, device));
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, gamma, beta, eps);
}

Dropout::Dropout(float p_, Generator& gen) : p(p_), seed_(gen.next_u64()) {
  if (p < 0.f || p >= 1.f)
    throw std::invalid_argument("Dropout: probability " + std::to_string(p) + " is outside [0, 1)");
}

void Dropout::on_step(uint64_t step) {
  step_ = step;
  calls_ = 0;
}

uint64_t Dropout::next_seed(Device device) {
  return backend(device).dropout_seed(seed_, step_, calls_++);
}

namespace {
// As one rank of several (engine/dist/batch_share.h): this rank's rows of the global batch's mask,
// 0 or 1 / (1 - p) for each element; undefined with no share set.
Tensor global_batch_mask(const Tensor& x, float p, uint64_t seed) {
  const dist::BatchShare* share = dist::batch_share();
  if (!share || share->rows == share->global_rows) return Tensor();
  if (x.ndim() == 0 || share->rows == 0 || x.size(0) % share->rows != 0)
    throw std::logic_error("Dropout: input " + shape_str(x.shape()) + " does not start with the " +
                           std::to_string(share->rows) + " rows of this rank's batch");
  const int64_t k = x.size(0) / share->rows;
  Shape global = x.shape();
  global[0] = share->global_rows * k;
  const Tensor mask = dropout(Tensor::ones(global, x.device()), p, true, seed);
  return slice(mask, 0, share->offset * k, (share->offset + share->rows) * k).contiguous();
}
}  // namespace

Tensor Dropout::forward(const Tensor& x) {
  if (!training() || p == 0.f) return x;
  const uint64_t seed = next_seed(x.device());
  if (const Tensor mask = global_batch_mask(x, p, seed); mask.defined()) return mul(x, mask);
  return dropout(x, p, true, seed);
}

Tensor Dropout::forward_add(const Tensor& residual, const Tensor& x) {
  if (!training() || p == 0.f) return add(residual, x);
  const uint64_t seed = next_seed(x.device());
  if (const Tensor mask = global_batch_mask(x, p, seed); mask.defined())
    return add(residual, mul(x, mask));
  return dropout_add(residual, x, p, true, seed);
}

Tensor Dropout::forward_gelu(const Tensor& x) {
  if (!training() || p == 0.f) return gelu(x);
  const uint64_t seed = next_seed(x.device());
  if (const Tensor mask = global_batch_mask(x, p, seed); mask.defined()) return mul(gelu(x), mask);
  return gelu_dropout(x, p, true, seed);
}

DropPath::DropPath(float p_, uint64_t layer) : p(p_), layer_(layer) {
  if (p < 0.f || p >= 1.f)
    throw std::invalid_argument("DropPath: probability " + std::to_string(p) +
                                " is outside [0, 1)");
}

void DropPath::on_step(uint64_t step) {
  step_ = step;
  keys_.clear();
}

void DropPath::on_sample_keys(const std::vector<uint64_t>& keys) {
  keys_ = keys;
}

std::vector<float> DropPath::sample_scales(int64_t rows) const {
  const bool keyed = int64_t(keys_.size()) == rows;
  std::vector<float> scales(rows);
  for (int64_t b = 0; b < rows; ++b) {
    const uint64_t key = keyed ? keys_[b] : splitmix64(step_ * 0x100000001B3ull + uint64_t(b));
    scales[b] = counter_uniform(key ^ 0xD50F'A7C1'22E4'9B3Dull, layer_) < p ? 0.f : 1.f / (1.f - p);
  }
  return scales;
}

Tensor DropPath::forward_add(const Tensor& residual, const Tensor& x) {
  if (!active()) return add(residual, x);
  Shape mask_shape(x.ndim(), 1);
  mask_shape[0] = x.size(0);
  return add(residual,
             mul(x, Tensor::from_vector(sample_scales(x.size(0)), mask_shape, x.device())));
}

Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}
Tensor GELU::forward(const Tensor& x) {
  return gelu(x);
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& l : layers) push_back(std::move(l));
}

void Sequential::push_back(std::shared_ptr<Module> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

}  // namespace forge::nn
