// model_bench.h: `bench model`: the time of a full training step of a preset on random images,
// its flop count, and the process's peak memory.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "engine/device.h"

namespace forge::bench {

struct ModelBenchOptions {
  std::string model = "vit";
  std::string stem = "patch";  // the ViT's image embedding (models/model.h: ModelSpec::stem)
  Device device = Device::cpu;
  int batch = 32;
  int image_size = 120;
  int steps = 10;  // timed steps
  int warmup = 2;  // untimed steps first
  // The step as a CUDA graph (train/graph_step.h; cuda, or sim's emulation): the untimed steps
  // are then at least its warm-up and capture, so every timed step is a replay.
  bool cuda_graph = false;
};

// The fields of the JSON another engineer's PyTorch comparison reads (keys as named here).
struct ModelResult {
  std::string model, stem, device;
  std::string precision;  // the backend's matmul precision: fp32, tf32 or bf16 (--precision)
  int batch = 0, image_size = 0, threads = 0, steps = 0;
  double step_ms_median = 0, step_ms_min = 0, step_ms_max = 0;
  double images_per_second = 0;
  double train_gflop_per_step = 0;  // 3 x the forward flops of the GEMM-shaped ops
  double achieved_gflops = 0;       // train_gflop_per_step / median step time
  double peak_rss_mb = 0;           // getrusage ru_maxrss: the whole process's peak so far
  double launches_per_step = 0;     // GPU kernel launches a timed step issued (0 on cpu)
  bool cuda_graph = false;          // the steps replayed a CUDA graph (a replay is one launch)
};

// The model as the printed tables name it: the preset, with ", conv stem" where it has one.
std::string model_label(const std::string& model, const std::string& stem);

ModelResult run_model_bench(const ModelBenchOptions& options);
void print_model_result(const ModelResult& result);
nlohmann::json model_result_json(const ModelResult& result);

}  // namespace forge::bench
