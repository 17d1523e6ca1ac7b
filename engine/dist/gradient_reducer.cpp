// gradient_reducer.cpp: bucketed, overlapped gradient all-reduce (see gradient_reducer.h).
#include "engine/dist/gradient_reducer.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"

namespace forge::dist {

using Clock = std::chrono::steady_clock;

GradientReducer::GradientReducer(Communicator& comm, std::vector<Tensor> params,
                                 size_t bucket_bytes, DeviceAllReduce* device_sum)
    : comm_(comm), device_sum_(device_sum), params_(std::move(params)) {
  size_t bucket_floats = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    if (!p.defined() || !p.requires_grad() || p.grad_fn())
      throw std::invalid_argument("GradientReducer: parameter " + std::to_string(k) +
                                  " is not a leaf that requires a gradient");
    if (p.device() != params_.back().device())
      throw std::invalid_argument("GradientReducer: parameter " + std::to_string(k) + " is on " +
                                  device_name(p.device()) + ", the last on " +
                                  device_name(params_.back().device()));
    const size_t floats = size_t(p.numel());
    if (buckets_.empty() || (bucket_floats > 0 && (bucket_floats + floats) * 4 > bucket_bytes)) {
      buckets_.emplace_back();
      bucket_floats = 0;
    }
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.offsets.push_back(bucket_floats);
    bucket_floats += floats;
    bucket_of_[&p.impl()] = buckets_.size() - 1;
  }
  if (params_.empty()) return;
  const Device device = params_.front().device();
  if (device == Device::cuda && !device_sum_)
    throw std::invalid_argument(
        "GradientReducer: cuda gradients are summed on the GPU, and no DeviceAllReduce (NCCL) "
        "was given");
  for (Bucket& b : buckets_) {
    const Tensor& last = params_[b.params.back()];
    b.buffer = Tensor::zeros({int64_t(b.offsets.back()) + last.numel()}, device);
  }
}

size_t GradientReducer::bytes_per_step() const {
  size_t floats = 0;
  for (const Bucket& b : buckets_) floats += size_t(b.buffer.numel());
  return floats * sizeof(float);
}

void GradientReducer::backward(const Tensor& loss, float weight) {
  next_to_start_ = 0;
  for (Bucket& b : buckets_) b.waiting = b.params.size();
  {
    LeafGradientScope hook([this](const Tensor& leaf) { on_final(leaf); });
    // The seed `weight`, not 1: the backward of weight * loss, so that a collective inside the
    // graph (sync batch norm's all-reduce) sums the ranks' weighted contributions too.
    run_backward(loss, Tensor::full(loss.shape(), weight, loss.device()));
  }
  const Clock::time_point backward_done = Clock::now();
  // Parameters the graph never reached: their buckets start now, with zeros for them.
  for (Bucket& b : buckets_) b.waiting = 0;
  start_ready_buckets();
  for (Bucket& b : buckets_) finish(b);
  const Clock::time_point done = Clock::now();
  timing_.steps += 1;
  timing_.span_seconds += std::chrono::duration<double>(done - first_start_).count();
  timing_.exposed_seconds +=
      std::chrono::duration<double>(done - std::max(backward_done, first_start_)).count();
}

void GradientReducer::on_final(const Tensor& leaf) {
  auto it = bucket_of_.find(&leaf.impl());
  if (it == bucket_of_.end()) return;  // a leaf of the graph that is no parameter (an input)
  Bucket& b = buckets_[it->second];
  if (b.waiting > 0) --b.waiting;
  start_ready_buckets();
  // MPI progresses a nonblocking collective only inside MPI calls: give it one now and then.
  for (size_t k = 0; k < next_to_start_; ++k)
    if (buckets_[k].pending) buckets_[k].pending->test();
}

void GradientReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0)
    start(buckets_[next_to_start_++]);
}

void GradientReducer::start(Bucket& b) {
  if (&b == &buckets_.front()) first_start_ = Clock::now();
  Backend& be = backend(b.buffer.device());
  for (size_t j = 0; j < b.params.size(); ++j) {
    const Tensor& p = params_[b.params[j]];
    float* dst = b.buffer.data() + b.offsets[j];
    const Tensor g = p.grad();
    if (g.defined())
      be.copy(dst, g.data(), size_t(p.numel()) * sizeof(float));
    else
      be.fill(dst, p.numel(), 0.f);
  }
  const size_t count = size_t(b.buffer.numel());
  b.pending = device_sum_ ? device_sum_->start_all_reduce_sum(b.buffer.data(), count)
                          : comm_.start_all_reduce_sum(b.buffer.data(), count);
}

void GradientReducer::finish(Bucket& b) {
  b.pending->wait();
  b.pending.reset();
  Backend& be = backend(b.buffer.device());
  for (size_t j = 0; j < b.params.size(); ++j) {
    const Tensor& p = params_[b.params[j]];
    if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.device()));
    be.copy(p.grad().data(), b.buffer.data() + b.offsets[j], size_t(p.numel()) * sizeof(float));
  }
}

}  // namespace forge::dist
