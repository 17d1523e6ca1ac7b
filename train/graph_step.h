// graph_step.h: --cuda-graph, the training step captured once as a CUDA graph and replayed
// (engine/cuda/builtin.h GpuGraph; docs/GPU_BACKEND.md "CUDA graphs").
//
// A full batch goes through GraphStep::run: its images (on the device already) and labels are
// copied into static device buffers (the graph reads those addresses), the step's values are set on
// the backend (train_step.h set_up_step: the learning rate, the step, the optimizer's count, which
// the kernels read from device memory), and then
//   the first kWarmupSteps batches run uncaptured, so that the caching allocator holds every block
//     a step needs (the capture may not allocate);
//   the next one is captured: forward, loss, backward, clipping, the optimizer step, the
//     metrics' accumulation (train/step_metrics.h) and, with --model-ema, the average's update
//     (train/model_ema.h: one launch over a table fixed at its construction, a constant decay),
//     and the graph replayed for it at once;
//   every later one replays the graph (one launch), and the optimizer's counts advance on the host
//     (Optimizer::count_step) for the parameters the captured step updated: the host's gradients
//     cannot tell which (the run report's Grad-CAM drops them all between epochs), and an
//     uncaptured step after the replays (the partial batch) takes Adam's t from those counts.
// A batch of another shape (the last, partial batch of an epoch) is not taken (takes() is false):
// the caller runs train_step on it uncaptured. Evaluation is never captured.
//
// The options that upload per-step data inside the step are refused with the flag
// (check_cuda_graph_options): drop path's and the mixed loss's per-sample vectors would be
// replayed with the captured step's values.
#pragma once
#include <memory>
#include <vector>

#include "data/loader.h"
#include "engine/cuda/builtin.h"
#include "engine/nn/module.h"
#include "engine/optim/optimizer.h"
#include "train/model_ema.h"
#include "train/step_metrics.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace forge::train {

// Throws OptionError (train/options.h: exit code 2) naming --cuda-graph and what it cannot go
// with: device cpu (no graphs; sim emulates them, for testing), --drop-path, --mixup, --cutmix,
// more than one rank of data-parallel training. Nothing when --cuda-graph is off.
void check_cuda_graph_options(const TrainOptions& options, int ranks);

class GraphStep {
 public:
  static constexpr int kWarmupSteps = 2;

  // `metrics` must outlive this (the graph adds to its sums); `classes`: the labels' range;
  // `ema`: the weight average each step updates (run() does it), or null.
  GraphStep(nn::Module& model, Optimizer& optimizer, StepMetrics& metrics, Device device,
            int batch_size, int classes, ModelEma* ema = nullptr);

  // Whether run() takes the batch: a full one (batch_size images) of the first one's shape.
  bool takes(const data::Batch& batch) const;
  // One training step of the batch, its metrics added and the EMA updated (see the file
  // comment). `images`: the batch's images already on the device (train/batch_stream.h), copied
  // into the static input in stream order, outside the capture. `settings` as for train_step; its
  // labels are the batch's.
  void run(const data::Batch& batch, const Tensor& images, const StepSettings& settings);

  int steps_run() const { return steps_; }  // warm-up, captured and replayed ones

 private:
  nn::Module& model_;
  Optimizer& optimizer_;
  StepMetrics& metrics_;
  ModelEma* ema_;
  Device device_;
  int batch_size_, classes_;
  Tensor images_;                       // the static input [batch_size, c, h, w]
  std::shared_ptr<Storage> labels_;     // the static labels, batch_size int32
  std::unique_ptr<GpuGraph> graph_;     // made at the capture
  std::vector<bool> captured_updates_;  // the parameters the captured step updated
  int steps_ = 0;
};

}  // namespace forge::train
