// gemm_bench.cpp: C = A B for square n x n float32 matrices through Backend::gemm of Device::cpu
// (oneDNN's sgemm), 2 n^3 flops a call; one untimed call per size first, then the median of the
// timed ones.
#include "tools/bench/gemm_bench.h"

#include <omp.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/backend.h"
#include "engine/tensor.h"
#include "tools/bench/report.h"
#include "tools/bench/timing.h"

namespace forge::bench {

GemmResult run_gemm_bench(const GemmOptions& o) {
  Backend& cpu = backend(Device::cpu);
  DeviceTimer timer(Device::cpu);
  Generator gen(3);
  GemmResult result;
  for (int n : o.sizes) {
    if (n < 1) throw std::invalid_argument("gemm: size " + std::to_string(n) + " must be positive");
    const Tensor a = Tensor::randn({n, n}, gen), b = Tensor::randn({n, n}, gen);
    const Tensor c = Tensor::empty({n, n});
    auto multiply = [&] {
      cpu.gemm(false, false, n, n, n, 1.f, a.data(), n, 0, b.data(), n, 0, 0.f, c.data(), n, 0, 1);
    };
    multiply();
    std::vector<double> ms;
    double total_ms = 0;
    while (ms.size() < 3 || total_ms < o.seconds_per_size * 1e3) {
      timer.start();
      multiply();
      ms.push_back(timer.stop_ms());
      total_ms += ms.back();
    }
    const double median = summarize(ms).median;
    GemmSize s{n, int(ms.size()), median, 2.0 * n * n * double(n) / (median * 1e-3) / 1e9};
    if (s.gflops > result.peak_gflops) {
      result.peak_gflops = s.gflops;
      result.peak_n = n;
    }
    result.sizes.push_back(s);
  }
  return result;
}

void print_gemm_result(const GemmResult& r) {
  std::printf("gemm on cpu (oneDNN sgemm, C = A B, n x n), %d OpenMP threads; %s\n",
              omp_get_max_threads(), machine_load().c_str());
  Table table({"n", "reps", "median ms", "GFLOP/s"});
  for (const GemmSize& s : r.sizes)
    table.add_row(
        {std::to_string(s.n), std::to_string(s.reps), fixed(s.ms_median, 3), fixed(s.gflops, 1)});
  table.print();
  std::printf("peak GEMM: %.1f GFLOP/s (n = %d)\n", r.peak_gflops, r.peak_n);
}

nlohmann::json gemm_result_json(const GemmResult& r) {
  nlohmann::json sizes = nlohmann::json::array();
  for (const GemmSize& s : r.sizes)
    sizes.push_back(
        {{"n", s.n}, {"reps", s.reps}, {"ms_median", s.ms_median}, {"gflops", s.gflops}});
  return {{"device", "cpu"},
          {"threads", omp_get_max_threads()},
          {"sizes", sizes},
          {"peak_gflops", r.peak_gflops},
          {"peak_n", r.peak_n}};
}

}  // namespace forge::bench
