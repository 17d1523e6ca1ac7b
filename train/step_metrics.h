// step_metrics.h: a training pass's running loss and accuracy, summed on the device so that a
// training step makes the host wait for nothing; the trainer reads them back once a log interval
// (every step_row_interval steps, train/history.h, and at the end of the epoch).
//
// Each add() is one launch (Backend::accumulate_step_metrics) and an upload of the labels; read()
// is one transfer, the only host wait. Because the loss is no longer read every step, a NaN or
// infinite loss is found at the next read(), not at its own step: the steps in between have
// already updated the weights, so the caller must stop without saving them (the trainer does;
// no checkpoint is written between two reads). first_non_finite_step says which step it was.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace forge::train {

struct MetricsSnapshot {
  double loss_sum = 0;                 // sum over the steps of batch size * mean loss
  long correct = 0;                    // rows whose first maximum logit is the label
  double last_loss = 0;                // the loss of the last step added
  int64_t first_non_finite_step = -1;  // the first step whose loss was NaN or infinite; -1: none
};

class StepMetrics {
 public:
  explicit StepMetrics(Device device);  // zeroed
  // A step's loss [1] and logits [rows, classes] against its labels; no transfer to the host.
  void add(const Tensor& loss, const Tensor& logits, const std::vector<int32_t>& labels,
           int64_t step);
  // The same with the labels in device memory (int32, one per row of logits): nothing uploaded,
  // as a step captured as a CUDA graph needs (train/graph_step.h).
  void add(const Tensor& loss, const Tensor& logits, const int32_t* device_labels, int64_t step);
  MetricsSnapshot read() const;  // one transfer: waits for the steps added so far
  void reset();                  // back to zero (an epoch's start)

 private:
  Device device_;
  std::shared_ptr<Storage> sums_;  // 4 device doubles (engine/backend.h accumulate_step_metrics)
};

}  // namespace forge::train
