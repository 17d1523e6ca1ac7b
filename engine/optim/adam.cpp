// adam.cpp: Adam (L2 weight decay) and AdamW (decoupled weight decay). The arithmetic is
// Backend::adam_step (engine/backend.h), which takes every parameter at once, for step t of each:
//   m = b1 m + (1 - b1) g',  v = b2 v + (1 - b2) g'^2,
//   p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// Adam: g' = g + wd p.   AdamW: g' = g and p -= lr wd p first.
// The bias corrections 1 - b^t undo the zero initialisation of m and v (after one step
// m = (1 - b1) g, so m / (1 - b1) = g); t counts this parameter's own updates, so a parameter
// that was frozen for a while starts its correction afresh.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/optim/optimizer.h"

namespace forge {

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::move(params), options, false, "Adam") {}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled, const char* name)
    : Optimizer(std::move(params), options.lr, name), options_(options), decoupled_(decoupled) {
  const auto bad_beta = [](float b) { return !(b >= 0.f && b < 1.f); };
  if (bad_beta(options.beta1) || bad_beta(options.beta2) || !(options.eps > 0.f) ||
      !(options.weight_decay >= 0.f))
    throw std::invalid_argument(
        std::string(name) + ": need 0 <= beta < 1, eps > 0, weight decay " + ">= 0; got beta1 " +
        std::to_string(options.beta1) + ", beta2 " + std::to_string(options.beta2) + ", eps " +
        std::to_string(options.eps) + ", weight decay " + std::to_string(options.weight_decay));
  for (size_t i = 0; i < this->params().size(); ++i) {
    exp_avg_.push_back(add_buffer("exp_avg", i));
    exp_avg_sq_.push_back(add_buffer("exp_avg_sq", i));
  }
}

// One adam_step call per device holding parameters (one, in any real model).
void Adam::update(const std::vector<ParamUpdate>& updates) {
  for (Device device : {Device::cpu, Device::sim, Device::cuda}) {
    std::vector<AdamTensor> tensors;
    for (const ParamUpdate& u : updates) {
      if (u.p.device() != device || u.p.numel() == 0) continue;
      // The primitive takes an int step; beyond 2^31 updates b^t is 0 in float anyway.
      const int step = static_cast<int>(std::min<int64_t>(u.t, std::numeric_limits<int>::max()));
      tensors.push_back({u.p.data(), u.g.data(), exp_avg_[u.i].data(), exp_avg_sq_[u.i].data(),
                         u.p.numel(), step});
    }
    if (tensors.empty()) continue;
    backend(device).adam_step(tensors.data(), static_cast<int>(tensors.size()), lr(),
                              options_.beta1, options_.beta2, options_.eps, options_.weight_decay,
                              decoupled_);
  }
}

AdamW::AdamW(std::vector<Tensor> params, const AdamOptions& options)
    : Adam(std::move(params), options, true, "AdamW") {}

}  // namespace forge
