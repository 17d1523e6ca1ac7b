// norm.cpp: batch_norm2d, layer_norm and softmax, each one node over the backend's fused forward
// and backward primitives (engine/backend.h; the derivations sit beside the CPU primitives in
// engine/cpu/norm.cpp).
//
// Batch norm in eval mode normalises with the running statistics, constants to its backward
// (Backend::batchnorm_backward_eval: gx = gy gamma s, s = 1 / sqrt(running_var + eps)).
#include <string>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    float momentum, float eps) {
  check_same_device("batch_norm2d", {x, gamma, beta, running_mean, running_var});
  check_ndim("batch_norm2d", "input", x, 4);
  const int n = int(x.size(0)), c = int(x.size(1)), hw = int(x.size(2) * x.size(3));
  for (const auto& [what, t] :
       {std::pair{"gamma", gamma}, std::pair{"beta", beta}, std::pair{"running_mean", running_mean},
        std::pair{"running_var", running_var}})
    check_shape("batch_norm2d", what, t, {c});
  Tensor xin = plain(x), g = plain(gamma), b = plain(beta);
  Tensor y = Tensor::empty(x.shape(), x.device());
  Backend& be = backend_of(x);

  if (!training) {
    be.batchnorm_forward_eval(n, c, hw, xin.data(), g.data(), b.data(), plain(running_mean).data(),
                              plain(running_var).data(), eps, y.data());
    // Copies: the running statistics may change in place before this backward runs.
    return record(y, "batch_norm2d(eval)", {x, gamma, beta},
                  [xin, g, mean = running_mean.clone(), var = running_var.clone(), eps, n, c,
                   hw](const Tensor& gy) {
                    Tensor gx = Tensor::empty(xin.shape(), gy.device());
                    Tensor ggamma = Tensor::empty({c}, gy.device());
                    Tensor gbeta = Tensor::empty({c}, gy.device());
                    backend_of(gy).batchnorm_backward_eval(
                        n, c, hw, xin.data(), gy.data(), g.data(), plain(mean).data(),
                        plain(var).data(), eps, gx.data(), ggamma.data(), gbeta.data());
                    return std::vector<Tensor>{gx, ggamma, gbeta};
                  });
  }

  if (int64_t(n) * hw < 2)
    throw std::invalid_argument(
        "batch_norm2d: training needs more than one value per channel, got input " +
        shape_str(x.shape()));
  // The running statistics are updated in place through their own buffers.
  if (!running_mean.is_contiguous() || !running_var.is_contiguous())
    throw std::invalid_argument("batch_norm2d: running_mean and running_var must be contiguous");
  Tensor save_mean = Tensor::empty({c}, x.device()), save_invstd = Tensor::empty({c}, x.device());
  be.batchnorm_forward_train(n, c, hw, xin.data(), g.data(), b.data(), eps, momentum, y.data(),
                             save_mean.data(), save_invstd.data(), running_mean.data(),
                             running_var.data());
  return record(y, "batch_norm2d", {x, gamma, beta},
                [xin, g, save_mean, save_invstd, n, c, hw](const Tensor& gy) {
                  Tensor gx = Tensor::empty(xin.shape(), gy.device());
                  Tensor ggamma = Tensor::empty({c}, gy.device());
                  Tensor gbeta = Tensor::empty({c}, gy.device());
                  backend_of(gy).batchnorm_backward(n, c, hw, xin.data(), gy.data(), g.data(),
                                                    save_mean.data(), save_invstd.data(), gx.data(),
                                                    ggamma.data(), gbeta.data());
                  return std::vector<Tensor>{gx, ggamma, gbeta};
                });
}

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps) {
  check_same_device("layer_norm", {x, gamma, beta});
  if (x.ndim() < 1 || x.size(-1) == 0)
    throw std::invalid_argument("layer_norm: needs a non-empty last dimension, got shape " +
                                shape_str(x.shape()));
  const int d = int(x.size(-1)), rows = int(x.numel() / d);
  check_shape("layer_norm", "gamma", gamma, {d});
  check_shape("layer_norm", "beta", beta, {d});
  Tensor xin = plain(x), g = plain(gamma), b = plain(beta);
  Tensor y = Tensor::empty(x.shape(), x.device());
  Tensor mean = Tensor::empty({rows}, x.device()), rstd = Tensor::empty({rows}, x.device());
  backend_of(x).layernorm_forward(rows, d, xin.data(), g.data(), b.data(), eps, y.data(),
                                  mean.data(), rstd.data());
  // The backward, adding x's gradient into `into_x` when given one (a residual stream's gradient
  // so far: one launch instead of the backward and autograd's axpy), else into a new tensor.
  auto backward = [xin, g, mean, rstd, rows, d](const Tensor& gy, const Tensor& into_x) {
    // Adding in place is safe only into a buffer the backward does not also read.
    const bool accumulate =
        into_x.defined() && into_x.storage() != gy.storage() && into_x.storage() != xin.storage();
    Tensor gx = accumulate ? into_x : Tensor::empty(xin.shape(), gy.device());
    Tensor ggamma = Tensor::empty({d}, gy.device());
    Tensor gbeta = Tensor::empty({d}, gy.device());
    backend_of(gy).layernorm_backward(rows, d, xin.data(), gy.data(), g.data(), mean.data(),
                                      rstd.data(), gx.data(), ggamma.data(), gbeta.data(),
                                      accumulate);
    return std::vector<Tensor>{accumulate ? Tensor() : gx, ggamma, gbeta};
  };
  Tensor out = record(y, "layer_norm", {x, gamma, beta},
                      [backward](const Tensor& gy) { return backward(gy, Tensor()); });
  if (out.grad_fn())
    out.grad_fn()->backward_into = [backward](const Tensor& gy, const std::vector<Tensor>& into) {
      return backward(gy, into[0]);
    };
  return out;
}

Tensor softmax(const Tensor& x) {
  if (x.ndim() < 1 || x.size(-1) == 0)
    throw std::invalid_argument("softmax: needs a non-empty last dimension, got shape " +
                                shape_str(x.shape()));
  const int d = int(x.size(-1)), rows = int(x.numel() / d);
  Tensor xin = plain(x);
  Tensor y = Tensor::empty(x.shape(), x.device());
  backend_of(x).softmax_forward(rows, d, xin.data(), y.data());
  return record(y, "softmax", {x}, [y = y.detach(), rows, d](const Tensor& gy) {
    Tensor gx = Tensor::empty(y.shape(), gy.device());
    backend_of(gy).softmax_backward(rows, d, y.data(), gy.data(), gx.data());
    return std::vector<Tensor>{gx};
  });
}

}  // namespace forge
