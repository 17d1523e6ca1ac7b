// sgd.cpp: stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.
// The arithmetic is Backend::sgd_step (engine/backend.h):
//   g' = g + wd p,   buf = momentum buf + g',   p -= lr (nesterov ? g' + momentum buf : buf)
// With momentum 0 the buffer just holds g' (the primitive always writes it).
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/optim/optimizer.h"

namespace forge {

SGD::SGD(std::vector<Tensor> params, const SgdOptions& options)
    : Optimizer(std::move(params), options.lr, "SGD"), options_(options) {
  if (!(options.momentum >= 0.f) || !(options.weight_decay >= 0.f))
    throw std::invalid_argument("SGD: momentum and weight decay must be >= 0, got momentum " +
                                std::to_string(options.momentum) + ", weight decay " +
                                std::to_string(options.weight_decay));
  if (options.nesterov && options.momentum == 0.f)
    throw std::invalid_argument("SGD: Nesterov momentum needs momentum > 0");
  for (size_t i = 0; i < this->params().size(); ++i) momentum_.push_back(add_buffer("momentum", i));
}

void SGD::update(const std::vector<ParamUpdate>& updates) {
  for (const ParamUpdate& u : updates) {
    if (u.p.numel() == 0) continue;
    backend(u.p.device())
        .sgd_step(u.p.numel(), u.p.data(), u.g.data(), momentum_[u.i].data(), lr(),
                  options_.momentum, options_.weight_decay, options_.nesterov);
  }
}

}  // namespace forge
