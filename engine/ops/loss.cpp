// loss.cpp: cross_entropy, the mean over rows of the softmax cross-entropy of logits against
// integer labels with label smoothing (math and backward in engine/cpu/loss.cpp).
// One node computes the per-row losses [rows] and saves the logits, the per-row log-sum-exp and
// the labels (in a device buffer the primitive reads); the mean over rows is the ordinary mean op
// on top, whose backward hands this node gloss_r = g / rows.
#include <memory>
#include <string>

#include "engine/ops.h"
#include "engine/ops/op_util.h"

namespace forge {
using namespace detail;

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing) {
  check_ndim("cross_entropy", "logits", logits, 2);
  const int rows = int(logits.size(0)), classes = int(logits.size(1));
  if (rows == 0 || classes == 0)
    throw std::invalid_argument("cross_entropy: logits " + shape_str(logits.shape()) +
                                " has no rows or no classes");
  if (labels.size() != size_t(rows))
    throw std::invalid_argument("cross_entropy: " + std::to_string(labels.size()) +
                                " labels for logits " + shape_str(logits.shape()));
  for (int r = 0; r < rows; ++r)
    if (labels[r] < 0 || labels[r] >= classes)
      throw std::invalid_argument("cross_entropy: label " + std::to_string(labels[r]) + " of row " +
                                  std::to_string(r) + " is outside [0, " + std::to_string(classes) +
                                  ")");
  if (!(smoothing >= 0.f && smoothing <= 1.f))
    throw std::invalid_argument("cross_entropy: smoothing " + std::to_string(smoothing) +
                                " is outside [0, 1]");
  Backend& be = backend_of(logits);
  auto label_buf = std::make_shared<Storage>(logits.device(), labels.size() * sizeof(int32_t));
  be.copy_from_host(label_buf->data, labels.data(), label_buf->bytes);
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
  return mean(loss);
}

}  // namespace forge
