// inference_bench.cpp: times a preset's forward pass as eval and predict run it: eval mode
// (dropout off, batch norm on its running statistics) inside a NoGradGuard, so no autograd node
// is recorded and every activation is freed as soon as the next op has read it. The images are
// random normal noise: the time of a forward does not depend on the pixel values.
#include "tools/bench/inference_bench.h"

#include <omp.h>
#include <sys/resource.h>

#include <cstdio>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "models/model.h"
#include "tools/bench/report.h"
#include "tools/bench/timing.h"

namespace forge::bench {

InferenceResult run_inference_bench(const ModelBenchOptions& o) {
  if (o.batch < 1 || o.steps < 1 || o.warmup < 0 || o.image_size < 16)
    throw std::invalid_argument(
        "model --inference: needs --batch >= 1, --steps >= 1, --warmup >= 0 and --image-size >= "
        "16");
  Generator gen(7);
  auto model = models::create_model({o.model, 2, o.image_size, -1.f, 0.f, o.stem}, gen, o.device);
  model->eval();
  NoGradGuard no_grad;

  InferenceResult r;
  r.model = o.model;
  r.stem = o.stem;
  r.device = device_name(o.device);
  r.precision = matmul_precision_name(backend(o.device).matmul_precision());
  r.image_size = o.image_size;
  r.threads = omp_get_max_threads();
  std::vector<int> batches{1};
  if (o.batch != 1) batches.push_back(o.batch);
  DeviceTimer timer(o.device);
  for (const int batch : batches) {
    const Tensor images =
        Tensor::randn({batch, 3, o.image_size, o.image_size}, gen, 0.f, 1.f, o.device);
    for (int i = 0; i < o.warmup; ++i) model->forward(images);
    std::vector<double> ms;
    for (int i = 0; i < o.steps; ++i) {
      timer.start();
      model->forward(images);
      ms.push_back(timer.stop_ms());
    }
    const Spread t = summarize(ms);
    r.batches.push_back({.batch = batch,
                         .passes = o.steps,
                         .ms_median = t.median,
                         .ms_min = t.min,
                         .ms_max = t.max,
                         .images_per_second = batch / (t.median * 1e-3)});
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  r.peak_rss_mb = double(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
  return r;
}

void print_inference_result(const InferenceResult& r) {
  std::printf(
      "inference, model %s on %s, precision %s: eval mode, no autograd, %dx%d, %d OpenMP "
      "threads; %s\n",
      model_label(r.model, r.stem).c_str(), r.device.c_str(), r.precision.c_str(), r.image_size,
      r.image_size, r.threads, machine_load().c_str());
  if (r.device == "sim") std::printf("%s\n", kSimNote);
  Table table({"model", "batch", "passes", "forward ms (median)", "min ms", "max ms", "images/s",
               "peak RSS MB"});
  for (const InferencePass& p : r.batches)
    table.add_row({model_label(r.model, r.stem), std::to_string(p.batch), std::to_string(p.passes),
                   fixed(p.ms_median, 2), fixed(p.ms_min, 2), fixed(p.ms_max, 2),
                   fixed(p.images_per_second, 1), fixed(r.peak_rss_mb, 0)});
  table.print();
}

nlohmann::json inference_result_json(const InferenceResult& r) {
  nlohmann::json passes = nlohmann::json::array();
  for (const InferencePass& p : r.batches)
    passes.push_back({{"batch", p.batch},
                      {"passes", p.passes},
                      {"ms_median", p.ms_median},
                      {"ms_min", p.ms_min},
                      {"ms_max", p.ms_max},
                      {"images_per_second", p.images_per_second}});
  return {{"model", r.model},         {"stem", r.stem},      {"device", r.device},
          {"precision", r.precision}, {"mode", "inference"}, {"image_size", r.image_size},
          {"threads", r.threads},     {"inference", passes}, {"peak_rss_mb", r.peak_rss_mb}};
}

}  // namespace forge::bench
