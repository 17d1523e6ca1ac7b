// gradient_reducer.h: the gradient all-reduce of data-parallel training, bucketed and overlapped
// with backward, as PyTorch's DistributedDataParallel does it (docs/DISTRIBUTED.md).
//
// The parameters, in reverse order (backward produces the last layers' gradients first), are cut
// into buckets of about `bucket_bytes` (25 MiB, DDP's default; train's --bucket-mb). During
// backward an autograd hook (engine/autograd.h, LeafGradientScope) names each parameter whose
// gradient is final; when every parameter of the next bucket in order is final, its gradients are
// copied into the bucket's buffer and the bucket's nonblocking sum over the ranks starts, while
// backward goes on. Buckets start in the same order on every rank (MPI's rule for collectives),
// whatever order the hook names them in. After backward: the buckets left are started, all are
// waited for, and the sums are copied back into the gradients.
//
// The weight is this rank's share of the global batch, n_rank / n_global: each rank's loss is the
// mean over its own samples, so sum_r (n_r / n) grad_r is the gradient of the mean over the whole
// global batch, the one a single process would compute, whatever the shares are. Backward starts
// from the seed n_r / n (the gradient of (n_r / n) loss_r), not 1, so that a collective inside the
// graph (sync batch norm) sums the ranks' contributions with the same weights.
// A parameter without a gradient on this rank counts as zero and has the sum as its gradient
// afterwards (the models here use every parameter in every step).
//
// The buckets' buffers are on the parameters' device, packed and unpacked by the backend's
// device-to-device copies (on cuda in order on the compute stream). cpu and sim memory is the
// host's: MPI sums it (Communicator::start_all_reduce_sum). On cuda a DeviceAllReduce (NCCL)
// sums it on the GPU, with no host staging.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/dist/device_all_reduce.h"
#include "engine/tensor.h"

namespace forge::dist {

// What the all-reduce cost, summed over steps, by the host's clock: on cuda that sees NCCL's work
// queued, not done, so these figures mean something on cpu and sim only.
struct ReduceTiming {
  int64_t steps = 0;
  // From the first bucket's start to the last bucket's sums copied back, per step.
  double span_seconds = 0;
  // The part of that span after backward had finished: the wait nothing hid.
  double exposed_seconds = 0;
};

class GradientReducer {
 public:
  static constexpr size_t default_bucket_bytes = size_t(25) << 20;

  // `device_sum`: how buckets on a device whose memory is not the host's are summed (NCCL on
  // cuda); null for cpu and sim parameters, which `comm` sums. Throws std::invalid_argument for
  // cuda parameters without one.
  GradientReducer(Communicator& comm, std::vector<Tensor> params,
                  size_t bucket_bytes = default_bucket_bytes,
                  DeviceAllReduce* device_sum = nullptr);

  // loss.backward() with the all-reduce overlapped; afterwards every parameter's gradient is
  // sum over ranks of weight_r * grad_r. Every rank must call it once a step.
  void backward(const Tensor& loss, float weight);

  size_t bucket_count() const { return buckets_.size(); }
  size_t bytes_per_step() const;  // the all-reduce's payload: every gradient, in fp32
  const ReduceTiming& timing() const { return timing_; }
  void reset_timing() { timing_ = {}; }

 private:
  struct Bucket {
    std::vector<size_t> params;   // indices into params_, in reverse parameter order
    std::vector<size_t> offsets;  // of each in `buffer`, in floats
    Tensor buffer;                // on the parameters' device
    size_t waiting = 0;           // parameters not final yet in this step
    std::unique_ptr<PendingCollective> pending;
  };
  void on_final(const Tensor& leaf);
  void start_ready_buckets();  // in order, as far as every earlier one has started
  void start(Bucket& bucket);
  void finish(Bucket& bucket);

  Communicator& comm_;
  DeviceAllReduce* device_sum_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> bucket_of_;  // parameter -> its bucket
  size_t next_to_start_ = 0;
  ReduceTiming timing_;
  std::chrono::steady_clock::time_point first_start_;
};

}  // namespace forge::dist
