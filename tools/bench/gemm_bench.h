// gemm_bench.h: `bench gemm`: the single-precision GEMM rate of the CPU backend (oneDNN) on
// square problems: the machine's practical peak, against which a training step's GFLOP/s reads as
// a fraction.
#pragma once
#include <nlohmann/json.hpp>
#include <vector>

namespace forge::bench {

struct GemmOptions {
  std::vector<int> sizes = {256, 512, 1024, 1536, 2048};
  double seconds_per_size =
      0.3;  // timed reps continue until this much time has passed (3 at least)
};

struct GemmSize {
  int n = 0, reps = 0;
  double ms_median = 0, gflops = 0;  // gflops = 2 n^3 / median time
};

struct GemmResult {
  std::vector<GemmSize> sizes;
  double peak_gflops = 0;  // the best size's rate
  int peak_n = 0;
};

GemmResult run_gemm_bench(const GemmOptions& options);
void print_gemm_result(const GemmResult& result);
nlohmann::json gemm_result_json(const GemmResult& result);

}  // namespace forge::bench
