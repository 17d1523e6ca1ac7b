// graph_step.h: --cuda-graph, the training step captured once as a CUDA graph and replayed
// (engine/cuda/builtin.h GpuGraph; docs/GPU_BACKEND.md "CUDA graphs").
//
// A full batch goes through GraphStep::run: its images (on the device already) and labels are
// copied into static device buffers (the graph reads those addresses), the step's values are set on
// the backend (train_step.h set_up_step: the learning rate, the step, the optimizer's count, which
// the kernels read from device memory), and then
//   the first kWarmupSteps batches run uncaptured, so that the caching allocator holds every block
//     a step needs (the capture may not allocate);
//   the next one is captured: forward, loss, backward, clipping, the optimizer step and the
//     metrics' accumulation (train/step_metrics.h), and the graph replayed for it at once;
//   every later one replays the graph (one launch), and the optimizer's counts advance on the host
//     (Optimizer::count_step) as its step() would have advanced them.
// A batch of another shape (the last, partial batch of an epoch) is not taken (takes() is false):
// the caller runs train_step on it uncaptured. Evaluation is never captured.
//
// The options that upload per-step data inside the step are refused with the flag
// (check_cuda_graph_options): drop path's and the mixed loss's per-sample vectors and the model
// EMA's update would be replayed with the captured step's values.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "engine/cuda/builtin.h"
#include "engine/nn/module.h"
#include "engine/optim/optimizer.h"
#include "train/step_metrics.h"
#include "train/train_step.h"
#include "train/trainer.h"

namespace forge::train {

// Throws OptionError (train/options.h: exit code 2) naming --cuda-graph and what it cannot go
// with: device cpu (no graphs; sim emulates them, for testing), --drop-path, --mixup, --cutmix,
// --model-ema, more than one rank of data-parallel training. Nothing when --cuda-graph is off.
void check_cuda_graph_options(const TrainOptions& options, int ranks);
// The presets --cuda-graph is allowed with: the ViT ones. The batch-norm presets (cnn, hrnet) are
// refused: on sim their replays differ from uncaptured training after the first epoch (cnn-micro,
// with a partial last batch; not yet found why), and a wrong result is worse than none.
// Empty when `model` is allowed, else why not.
std::string cuda_graph_refusal(const std::string& model);

class GraphStep {
 public:
  static constexpr int kWarmupSteps = 2;

  // `metrics` must outlive this (the graph adds to its sums); `classes`: the labels' range.
  GraphStep(nn::Module& model, Optimizer& optimizer, StepMetrics& metrics, Device device,
            int batch_size, int classes);

  // Whether run() takes the batch: a full one (batch_size images) of the first one's shape.
  bool takes(const data::Batch& batch) const;
  // One training step of the batch, its metrics added (see the file comment). `images`: the
  // batch's images already on the device (train/batch_stream.h), copied into the static input in
  // stream order, outside the capture. `settings` as for train_step; its labels are the batch's.
  void run(const data::Batch& batch, const Tensor& images, const StepSettings& settings);

  int steps_run() const { return steps_; }  // warm-up, captured and replayed ones

 private:
  nn::Module& model_;
  Optimizer& optimizer_;
  StepMetrics& metrics_;
  Device device_;
  int batch_size_, classes_;
  Tensor images_;                    // the static input [batch_size, c, h, w]
  std::shared_ptr<Storage> labels_;  // the static labels, batch_size int32
  std::unique_ptr<GpuGraph> graph_;  // made at the capture
  int steps_ = 0;
};

}  // namespace forge::train
