// sync_batch_norm.cpp: the differentiable all-reduce and batch norm over every rank's batch (see
// sync_batch_norm.h).
#include "engine/dist/sync_batch_norm.h"

#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace forge::dist {
namespace {

Communicator* g_group = nullptr;

// The sum over ranks of a tensor's values, as a new contiguous tensor (not recorded).
Tensor reduced(const Tensor& x, Communicator& comm) {
  const Tensor in = x.contiguous();
  std::vector<float> host(size_t(in.numel()));
  Backend& be = backend(in.device());
  be.copy_to_host(host.data(), in.data(), host.size() * sizeof(float));
  comm.all_reduce_sum(host.data(), host.size());
  return Tensor::from_vector(host, in.shape(), in.device());
}

Tensor per_channel(const Tensor& v) {
  return reshape(v, {1, v.size(0), 1, 1});
}

}  // namespace

Tensor all_reduce_sum(const Tensor& x, Communicator& comm) {
  return record(reduced(x, comm), "all_reduce_sum", {x},
                [&comm](const Tensor& gy) { return std::vector<Tensor>{reduced(gy, comm)}; });
}

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& running_mean, const Tensor& running_var, float momentum,
                         float eps, Communicator& comm) {
  if (x.ndim() != 4)
    throw std::invalid_argument("sync_batch_norm2d: needs [n, c, h, w], got " +
                                shape_str(x.shape()));
  double count = double(x.size(0)) * double(x.size(2)) * double(x.size(3));
  comm.all_reduce_sum(&count, 1);
  if (count < 2)
    throw std::invalid_argument(
        "sync_batch_norm2d: training needs more than one value per channel over all ranks, got "
        "input " +
        shape_str(x.shape()) + " on this rank");
  const float inverse_count = float(1.0 / count);
  const Tensor mean = mul_scalar(all_reduce_sum(sum(x, {0, 2, 3}), comm), inverse_count);
  const Tensor centred = sub(x, per_channel(mean));
  const Tensor var =
      mul_scalar(all_reduce_sum(sum(mul(centred, centred), {0, 2, 3}), comm), inverse_count);
  // 1 / sqrt(var + eps) as exp(-log(var + eps) / 2): the ops have no sqrt.
  const Tensor invstd = exp(mul_scalar(log(add_scalar(var, eps)), -0.5f));
  const Tensor y =
      add(mul(mul(centred, per_channel(invstd)), per_channel(gamma)), per_channel(beta));
  {
    NoGradGuard no_grad;
    const float unbias = float(count / (count - 1));
    running_mean.copy_from(
        add(mul_scalar(running_mean, 1.f - momentum), mul_scalar(mean.detach(), momentum)));
    running_var.copy_from(
        add(mul_scalar(running_var, 1.f - momentum), mul_scalar(var.detach(), momentum * unbias)));
  }
  return y;
}

SyncBatchNormScope::SyncBatchNormScope(Communicator& comm) : previous_(g_group) {
  g_group = &comm;
}
SyncBatchNormScope::~SyncBatchNormScope() {
  g_group = previous_;
}

Communicator* sync_batch_norm_group() {
  return g_group;
}

}  // namespace forge::dist
