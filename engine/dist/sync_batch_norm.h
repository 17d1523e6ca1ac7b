// sync_batch_norm.h: batch normalisation whose statistics are those of the global batch, over
// every rank (--sync-bn; PyTorch's SyncBatchNorm), and the differentiable all-reduce it is made of.
//
// Training forward, per channel, M the element count over all ranks:
//   mean = all_reduce(sum_local x) / M,  var = all_reduce(sum_local (x - mean)^2) / M,
//   y = (x - mean) / sqrt(var + eps) * gamma + beta
// composed from ordinary ops and all_reduce_sum, whose backward is again the all-reduce of the
// incoming gradient (each rank's mean feeds every rank's outputs), so autograd gives the global
// batch's gradient. Two passes (mean, then the centred squares) as the fused kernel does, rather
// than E[x^2] - mean^2, which cancels. The running statistics take the global mean and the
// unbiased global variance var * M / (M - 1), as batch_norm2d's do.
//
// With one rank the all-reduce is the identity and this is batch_norm2d computed by other ops (the
// same values up to the sum order). Every rank must run the same layers in the same order (each
// forward and each backward of a layer is a collective).
#pragma once
#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace forge::dist {

// x summed over every rank (the same shape on each); backward: the gradient summed the same way.
Tensor all_reduce_sum(const Tensor& x, Communicator& comm);

// Training-mode batch norm of x [n, c, h, w] with the global batch's statistics (see above).
Tensor sync_batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& running_mean, const Tensor& running_var, float momentum,
                         float eps, Communicator& comm);

// The communicator training-mode BatchNorm2d layers synchronise over (engine/nn/layers.h), for
// the scope's lifetime; none (per-rank statistics, the default) outside one.
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(Communicator& comm);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  Communicator* previous_;
};

Communicator* sync_batch_norm_group();  // the scope's communicator, or null

}  // namespace forge::dist
