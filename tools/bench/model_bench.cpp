// model_bench.cpp: times training steps of a preset, the trainer's step (forward, label-smoothed
// cross-entropy, backward, clipping to norm 1, AdamW) on one batch of random images (labels
// alternating between two classes).
//
// The flop count follows the usual convention: the forward flops of the GEMM-shaped ops
// (convolutions, linear layers, matmuls, fused attention, patch embedding), read from the
// autograd graph of one untimed forward pass (op_costs.h: graph_forward_flops), times 3 for
// forward + backward (the backward of such an op is two products of the forward's size).
// Elementwise ops, normalisation and the optimizer are not counted. The count costs one extra
// forward pass before the timed steps and nothing inside them.
//
// launches_per_step: kernel launches (one per cuBLAS call included) the GPU backend issued during
// the timed steps, over their number (engine/cuda/builtin.h); 0 on cpu, which launches none.
// Each step's batch comes as the trainer's does (train/batch_stream.h): uploaded on the copy
// stream, one step ahead, into double-buffered slots; the compute stream waits for it, so an
// upload that does not overlap the previous step shows in the time. (The copies are no kernel
// launches.) With --cuda-graph the step is the trainer's graph step (train/graph_step.h): the
// batch copied into its static input, the step values set, one graph replay (one launch), with
// the metrics' accumulation inside; without, the step has no metrics.
#include "tools/bench/model_bench.h"

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/builtin.h"
#include "engine/ops.h"
#include "engine/optim/optimizer.h"
#include "models/model.h"
#include "tools/bench/op_costs.h"
#include "tools/bench/report.h"
#include "tools/bench/timing.h"
#include "train/batch_stream.h"
#include "train/graph_step.h"
#include "train/step_metrics.h"
#include "train/train_step.h"

namespace forge::bench {

// Peak resident set of this process so far, in MB (Linux reports ru_maxrss in KiB).
static double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / 1024.0;
}

std::string model_label(const std::string& model, const std::string& stem) {
  return stem == "patch" ? model : model + ", " + stem + " stem";
}

ModelResult run_model_bench(const ModelBenchOptions& o) {
  if (o.batch < 1 || o.steps < 1 || o.warmup < 0 || o.image_size < 16)
    throw std::invalid_argument(
        "model: needs --batch >= 1, --steps >= 1, --warmup >= 0 and --image-size >= 16");
  Generator gen(7);
  auto model = models::create_model({o.model, 2, o.image_size, -1.f, 0.f, o.stem}, gen, o.device);
  model->train();
  AdamW optimizer(model->parameters(), AdamOptions{.lr = 5e-4f, .weight_decay = 0.05f});
  const Tensor images =
      Tensor::randn({o.batch, 3, o.image_size, o.image_size}, gen, 0.f, 1.f, o.device);
  std::vector<int32_t> labels(o.batch);
  for (int i = 0; i < o.batch; ++i) labels[i] = i % 2;

  double forward_flops = 0;
  {  // the count: one forward whose graph is read, then dropped without a backward
    Tensor loss = cross_entropy(model->forward(images), labels);
    forward_flops = graph_forward_flops(loss);
  }
  // The trainer's step (train/train_step.h), less data loading and the schedule: label smoothing
  // 0.1, clipping to global norm 1, nothing read back
  // (bench/pytorch_bench.py does the same, so the two are timed on identical work).
  if (o.cuda_graph && o.device == Device::cpu)
    throw std::invalid_argument(
        "model: --cuda-graph: device cpu has no CUDA graphs (cuda, or sim "
        "for its emulation)");
  train::StepMetrics metrics(o.device);
  std::unique_ptr<train::GraphStep> graph;
  if (o.cuda_graph)
    graph = std::make_unique<train::GraphStep>(*model, optimizer, metrics, o.device, o.batch, 2);
  // The host batch every step uploads, as the trainer's steps upload theirs.
  const data::Batch host_batch = {.images = images.to_vector(),
                                  .labels = labels,
                                  .n = o.batch,
                                  .h = o.image_size,
                                  .w = o.image_size};
  train::BatchStream batches(o.device, o.batch);
  batches.start([&](data::Batch& b) {
    b = host_batch;
    return true;
  });
  data::Batch batch;
  auto step = [&](int index) {
    const train::StepSettings settings{
        .step = uint64_t(index), .lr = 5e-4f, .label_smoothing = 0.1f, .clip_grad = 1.f};
    batches.next(batch);
    if (graph)
      graph->run(batch, batches.images(), settings);
    else
      train::train_step(*model, optimizer, batches.images(), labels, settings);
  };
  const int warmup = graph ? std::max(o.warmup, train::GraphStep::kWarmupSteps + 1) : o.warmup;
  for (int i = 0; i < warmup; ++i) step(i);
  const bool on_gpu = o.device != Device::cpu;
  const uint64_t launches_before = on_gpu ? gpu_launch_count(o.device) : 0;
  DeviceTimer timer(o.device);
  std::vector<double> ms;
  for (int i = 0; i < o.steps; ++i) {
    timer.start();
    step(warmup + i);
    ms.push_back(timer.stop_ms());
  }
  const uint64_t launches = on_gpu ? gpu_launch_count(o.device) - launches_before : 0;
  const Spread t = summarize(ms);

  ModelResult r;
  r.model = o.model;
  r.stem = o.stem;
  r.device = device_name(o.device);
  r.precision = matmul_precision_name(backend(o.device).matmul_precision());
  r.batch = o.batch;
  r.image_size = o.image_size;
  r.threads = omp_get_max_threads();
  r.steps = o.steps;
  r.step_ms_median = t.median;
  r.step_ms_min = t.min;
  r.step_ms_max = t.max;
  r.images_per_second = o.batch / (t.median * 1e-3);
  r.train_gflop_per_step = 3 * forward_flops / 1e9;
  r.achieved_gflops = r.train_gflop_per_step / (t.median * 1e-3);
  r.peak_rss_mb = peak_rss_mb();
  r.launches_per_step = double(launches) / o.steps;
  r.cuda_graph = o.cuda_graph;
  return r;
}

void print_model_result(const ModelResult& r) {
  std::printf(
      "model %s on %s, precision %s%s: batch %d, %dx%d, %d OpenMP threads, %d timed steps; %s\n",
      model_label(r.model, r.stem).c_str(), r.device.c_str(), r.precision.c_str(),
      r.cuda_graph ? ", CUDA graph" : "", r.batch, r.image_size, r.image_size, r.threads, r.steps,
      machine_load().c_str());
  if (r.device == "sim") std::printf("%s\n", kSimNote);
  Table table({"model", "step ms (median)", "min ms", "max ms", "images/s", "GFLOP/step", "GFLOP/s",
               "peak RSS MB", "launches/step"});
  table.add_row({model_label(r.model, r.stem), fixed(r.step_ms_median, 1), fixed(r.step_ms_min, 1),
                 fixed(r.step_ms_max, 1), fixed(r.images_per_second, 1),
                 fixed(r.train_gflop_per_step, 3), fixed(r.achieved_gflops, 2),
                 fixed(r.peak_rss_mb, 0), fixed(r.launches_per_step, 0)});
  table.print();
  std::printf(
      "(a step: forward, label-smoothed cross-entropy, backward, clip to norm 1, AdamW; GFLOP/step "
      "= 3 x the forward "
      "flops of conv, linear, matmul, attention and patch embedding; launches/step = GPU kernel "
      "launches, a cuBLAS call counted as one)\n");
}

nlohmann::json model_result_json(const ModelResult& r) {
  return {{"model", r.model},
          {"stem", r.stem},
          {"device", r.device},
          {"precision", r.precision},
          {"batch", r.batch},
          {"image_size", r.image_size},
          {"threads", r.threads},
          {"steps", r.steps},
          {"step_ms_median", r.step_ms_median},
          {"step_ms_min", r.step_ms_min},
          {"step_ms_max", r.step_ms_max},
          {"images_per_second", r.images_per_second},
          {"train_gflop_per_step", r.train_gflop_per_step},
          {"achieved_gflops", r.achieved_gflops},
          {"peak_rss_mb", r.peak_rss_mb},
          {"launches_per_step", r.launches_per_step},
          {"cuda_graph", r.cuda_graph}};
}

}  // namespace forge::bench
