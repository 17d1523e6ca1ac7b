// op_bench.h: `bench ops`: forward and backward time of each differentiable op (op_cases.h),
// with the achieved GFLOP/s and GB/s of its flop and byte counts (op_costs.h).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/device.h"
#include "tools/bench/op_costs.h"
#include "tools/bench/timing.h"

namespace forge::bench {

struct OpBenchOptions {
  Device device = Device::cpu;
  int batch = 32;
  int reps = 10;       // timed runs of each pass
  int warmup = 2;      // untimed forward + backward runs first
  std::string filter;  // run the ops whose name contains this (all when empty)
};

struct OpResult {
  std::string name, shapes;
  PassCosts cost;
  Spread forward, backward;  // milliseconds
};

// Throws std::invalid_argument, listing the op names, when the filter matches none.
std::vector<OpResult> run_op_bench(const OpBenchOptions& options);
void print_op_results(const OpBenchOptions& options, const std::vector<OpResult>& results);
nlohmann::json op_results_json(const OpBenchOptions& options, const std::vector<OpResult>& results);

}  // namespace forge::bench
