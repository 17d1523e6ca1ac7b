// step_metrics.cpp: a training pass's running loss and accuracy on the device (see step_metrics.h).
#include "train/step_metrics.h"

#include "engine/backend.h"

namespace forge::train {

namespace {
constexpr int kSums = 4;  // loss sum, correct rows, last loss, first non-finite step
}

StepMetrics::StepMetrics(Device device)
    : device_(device), sums_(std::make_shared<Storage>(device, kSums * sizeof(double))) {
  reset();
}

void StepMetrics::reset() {
  const double zero[kSums] = {0, 0, 0, -1};
  backend(device_).copy_from_host(sums_->data, zero, sizeof zero);
}

void StepMetrics::add(const Tensor& loss, const Tensor& logits, const std::vector<int32_t>& labels,
                      int64_t step) {
  Storage label_buf(device_, labels.size() * sizeof(int32_t));
  backend(device_).copy_from_host(label_buf.data, labels.data(), label_buf.bytes);
  add(loss, logits, static_cast<const int32_t*>(label_buf.data), step);
}

void StepMetrics::add(const Tensor& loss, const Tensor& logits, const int32_t* device_labels,
                      int64_t step) {
  const Tensor z = logits.contiguous(), l = loss.contiguous();
  backend(device_).accumulate_step_metrics(int(z.size(0)), int(z.size(1)), z.data(), device_labels,
                                           l.data(), step, static_cast<double*>(sums_->data));
}

MetricsSnapshot StepMetrics::read() const {
  double sums[kSums];
  backend(device_).copy_to_host(sums, sums_->data, sizeof sums);
  return {.loss_sum = sums[0],
          .correct = static_cast<long>(sums[1]),
          .last_loss = sums[2],
          .first_non_finite_step = static_cast<int64_t>(sums[3])};
}

}  // namespace forge::train
