// loss.cpp: cross_entropy, the mean over rows of the softmax cross-entropy of logits against
// integer labels with label smoothing (math and backward in engine/cpu/loss.cpp).
// One node computes the per-row losses [rows] and saves the logits, the per-row log-sum-exp and
// the labels (in a device buffer the primitive reads); the mean over rows is the ordinary mean op
// on top, whose backward hands this node gloss_r = g / rows. mixed_cross_entropy weighs two such
// per-row nodes (one per label set) with ordinary mul and mean ops.
#include <memory>
#include <string>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

namespace {

// The shape and smoothing checks both forms make.
void check_cross_entropy(const Tensor& logits, float smoothing) {
  check_ndim("cross_entropy", "logits", logits, 2);
  if (logits.size(0) == 0 || logits.size(1) == 0)
    throw std::invalid_argument("cross_entropy: logits " + shape_str(logits.shape()) +
                                " has no rows or no classes");
  if (!(smoothing >= 0.f && smoothing <= 1.f))
    throw std::invalid_argument("cross_entropy: smoothing " + std::to_string(smoothing) +
                                " is outside [0, 1]");
}

// The per-row losses [rows], one autograd node, against `rows` int32 labels in device memory
// (kept alive by the node for its backward).
Tensor row_cross_entropy(const Tensor& logits, std::shared_ptr<Storage> label_buf, float smoothing);

// The same against host labels, checked and uploaded.
Tensor row_cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels,
                         float smoothing) {
  check_cross_entropy(logits, smoothing);
  const int rows = int(logits.size(0)), classes = int(logits.size(1));
  if (labels.size() != size_t(rows))
    throw std::invalid_argument("cross_entropy: " + std::to_string(labels.size()) +
                                " labels for logits " + shape_str(logits.shape()));
  for (int r = 0; r < rows; ++r)
    if (labels[r] < 0 || labels[r] >= classes)
      throw std::invalid_argument("cross_entropy: label " + std::to_string(labels[r]) + " of row " +
                                  std::to_string(r) + " is outside [0, " + std::to_string(classes) +
                                  ")");
  auto label_buf = std::make_shared<Storage>(logits.device(), labels.size() * sizeof(int32_t));
  backend_of(logits).copy_from_host(label_buf->data, labels.data(), label_buf->bytes);
  return row_cross_entropy(logits, label_buf, smoothing);
}

Tensor row_cross_entropy(const Tensor& logits, std::shared_ptr<Storage> label_buf,
                         float smoothing) {
  const int rows = int(logits.size(0)), classes = int(logits.size(1));
  Backend& be = backend_of(logits);
  const auto* label_ptr = static_cast<const int32_t*>(label_buf->data);
  Tensor z = plain(logits);
  Tensor loss = Tensor::empty({rows}, logits.device()),
         lse = Tensor::empty({rows}, logits.device());
  be.cross_entropy_forward(rows, classes, z.data(), label_ptr, smoothing, loss.data(), lse.data());
  loss = record(loss, "cross_entropy", {logits},
                [z, lse, label_buf, label_ptr, rows, classes, smoothing](const Tensor& g) {
                  Tensor gc = plain(g), gz = Tensor::empty(z.shape(), g.device());
                  backend_of(g).cross_entropy_backward(rows, classes, z.data(), label_ptr,
                                                       smoothing, lse.data(), gc.data(), gz.data());
                  return std::vector<Tensor>{gz};
                });
  return loss;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing) {
  return mean(row_cross_entropy(logits, labels, smoothing));
}

Tensor cross_entropy(const Tensor& logits, std::shared_ptr<Storage> labels, float smoothing) {
  check_cross_entropy(logits, smoothing);
  if (!labels || labels->device != logits.device() ||
      labels->bytes < size_t(logits.size(0)) * sizeof(int32_t))
    throw std::invalid_argument(
        "cross_entropy: device labels missing, too short or on another "
        "device than logits " +
        shape_str(logits.shape()));
  return mean(row_cross_entropy(logits, std::move(labels), smoothing));
}

Tensor mixed_cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels,
                           const std::vector<int32_t>& other_labels,
                           const std::vector<float>& weights, float smoothing) {
  const size_t rows = labels.size();
  if (other_labels.size() != rows || weights.size() != rows)
    throw std::invalid_argument("mixed_cross_entropy: " + std::to_string(rows) + " labels, " +
                                std::to_string(other_labels.size()) + " other labels and " +
                                std::to_string(weights.size()) + " weights");
  std::vector<float> other_weights(rows);
  for (size_t r = 0; r < rows; ++r) {
    if (!(weights[r] >= 0.f && weights[r] <= 1.f))
      throw std::invalid_argument("mixed_cross_entropy: weight " + std::to_string(weights[r]) +
                                  " of row " + std::to_string(r) + " is outside [0, 1]");
    other_weights[r] = 1.f - weights[r];
  }
  const Shape shape{int64_t(rows)};
  const Tensor w = Tensor::from_vector(weights, shape, logits.device()),
               other_w = Tensor::from_vector(other_weights, shape, logits.device());
  return mean(add(mul(row_cross_entropy(logits, labels, smoothing), w),
                  mul(row_cross_entropy(logits, other_labels, smoothing), other_w)));
}

}  // namespace forge
