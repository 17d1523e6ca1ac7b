// inference_bench.h: `bench model --inference`: images per second of a preset's forward pass in
// eval mode with autograd off (no graph recorded), at batch 1 and at the benchmark's batch.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/bench/model_bench.h"

namespace forge::bench {

// One batch size's timings: `passes` timed forward passes after the warm-up ones.
struct InferencePass {
  int batch = 0, passes = 0;
  double ms_median = 0, ms_min = 0, ms_max = 0;
  double images_per_second = 0;  // batch / median
};

struct InferenceResult {
  std::string model, stem, device, precision;
  int image_size = 0, threads = 0;
  std::vector<InferencePass> batches;  // batch 1 first, then options.batch when it is not 1
  double peak_rss_mb = 0;              // getrusage ru_maxrss after the last pass
};

// Times options.steps forward passes (after options.warmup) at each batch size.
InferenceResult run_inference_bench(const ModelBenchOptions& options);
void print_inference_result(const InferenceResult& result);
// {"model", "stem", "device", "precision", "mode": "inference", "image_size", "threads",
//  "inference": [{"batch", "passes", "ms_median", "ms_min", "ms_max", "images_per_second"}, ...],
//  "peak_rss_mb"}
nlohmann::json inference_result_json(const InferenceResult& result);

}  // namespace forge::bench
