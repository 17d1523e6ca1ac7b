// graph_step.cpp: the training step as a CUDA graph (see graph_step.h).
#include "train/graph_step.h"

#include <string>

#include "engine/backend.h"
#include "train/options.h"

namespace forge::train {

void check_cuda_graph_options(const TrainOptions& o, int ranks) {
  if (!o.cuda_graph) return;
  const auto refuse = [](const std::string& why) { throw OptionError("--cuda-graph: " + why); };
  if (o.device == Device::cpu)
    refuse(
        "device cpu has no CUDA graphs; use --device cuda (or sim, which emulates them, for "
        "testing)");
  if (o.drop_path > 0.f)
    refuse(
        "not with --drop-path (its per-sample scales are uploaded each step: a graph would "
        "replay the captured ones)");
  if (o.mix.enabled())
    refuse(
        "not with --mixup or --cutmix (the mixed loss's per-sample weights are uploaded each "
        "step: a graph would replay the captured ones)");
  if (ranks > 1)
    refuse("not with " + std::to_string(ranks) +
           " ranks (the gradient all-reduce is an MPI call on the host, outside the captured "
           "stream)");
}

GraphStep::GraphStep(nn::Module& model, Optimizer& optimizer, StepMetrics& metrics, Device device,
                     int batch_size, int classes, ModelEma* ema)
    : model_(model),
      optimizer_(optimizer),
      metrics_(metrics),
      ema_(ema),
      device_(device),
      batch_size_(batch_size),
      classes_(classes),
      labels_(std::make_shared<Storage>(device, size_t(batch_size) * sizeof(int32_t))) {}

bool GraphStep::takes(const data::Batch& b) const {
  if (b.n != batch_size_) return false;
  return !images_.defined() ||
         (images_.size(1) == b.c && images_.size(2) == b.h && images_.size(3) == b.w);
}

void GraphStep::run(const data::Batch& b, const Tensor& images, const StepSettings& settings) {
  if (!takes(b))
    throw std::invalid_argument("GraphStep: a batch of " + std::to_string(b.n) +
                                " images of another shape than the captured step's");
  for (int r = 0; r < b.n; ++r)  // cross_entropy cannot check labels it does not see
    if (b.labels[size_t(r)] < 0 || b.labels[size_t(r)] >= classes_)
      throw std::invalid_argument("GraphStep: label " + std::to_string(b.labels[size_t(r)]) +
                                  " of row " + std::to_string(r) + " is outside [0, " +
                                  std::to_string(classes_) + ")");
  Backend& be = backend(device_);
  if (!images_.defined()) images_ = Tensor::empty({b.n, b.c, b.h, b.w}, device_);
  if (images.numel() != images_.numel() || !images.is_contiguous())
    throw std::invalid_argument("GraphStep: images of another shape than the batch's");
  be.copy(images_.data(), images.data(), size_t(images_.numel()) * sizeof(float));
  be.copy_from_host(labels_->data, b.labels.data(), b.labels.size() * sizeof(int32_t));
  StepSettings s = settings;
  s.device_labels = labels_;
  set_up_step(model_, optimizer_, device_, s);
  const auto* labels = static_cast<const int32_t*>(labels_->data);
  const auto step_and_metrics = [&] {
    const StepResult r = run_step(model_, optimizer_, images_, b.labels, s);
    metrics_.add(r.loss, r.logits, labels, int64_t(s.step));
    if (ema_) ema_->update(model_);
  };
  if (steps_ < kWarmupSteps) {
    step_and_metrics();
  } else if (!graph_) {
    graph_ = std::make_unique<GpuGraph>(device_);
    graph_->begin_capture();
    step_and_metrics();  // recorded, not run
    graph_->end_capture();
    captured_updates_ = optimizer_.updated_by_last_step();
    graph_->replay();
  } else {
    optimizer_.count_step(captured_updates_);
    graph_->replay();
  }
  ++steps_;
}

}  // namespace forge::train
