// op_bench.cpp: times each op case. A forward rep times the op's call (autograd recording
// included, as in training); a backward rep runs the forward untimed, then times run_backward
// from the op's output with a gradient of ones (the autograd walk and the hand-over of gradients
// to the inputs included), then drops the inputs' gradients untimed.
#include "tools/bench/op_bench.h"

#include <omp.h>

#include <cstdio>
#include <stdexcept>

#include "engine/autograd.h"
#include "tools/bench/op_cases.h"
#include "tools/bench/report.h"

namespace forge::bench {

static void drop_grads(const std::vector<Tensor>& leaves) {
  for (const Tensor& t : leaves) t.zero_grad();
}

static OpResult time_case(const OpCase& c, const OpBenchOptions& o, DeviceTimer& timer) {
  Tensor seed;
  for (int i = 0; i < o.warmup + 1; ++i) {  // at least once, to learn the output's shape
    Tensor y = c.forward();
    seed = Tensor::ones(y.shape(), o.device);
    run_backward(y, seed);
    drop_grads(c.leaves);
  }
  std::vector<double> forward_ms, backward_ms;
  for (int i = 0; i < o.reps; ++i) {
    timer.start();
    Tensor y = c.forward();
    forward_ms.push_back(timer.stop_ms());
  }
  for (int i = 0; i < o.reps; ++i) {
    Tensor y = c.forward();
    timer.start();
    run_backward(y, seed);
    backward_ms.push_back(timer.stop_ms());
    drop_grads(c.leaves);
  }
  return {c.name, c.shapes, c.cost, summarize(forward_ms), summarize(backward_ms)};
}

std::vector<OpResult> run_op_bench(const OpBenchOptions& o) {
  if (o.batch < 1 || o.reps < 1 || o.warmup < 0)
    throw std::invalid_argument("ops: needs --batch >= 1, --reps >= 1 and --warmup >= 0");
  Generator gen(42);
  std::vector<OpCase> cases = make_op_cases(o.device, o.batch, gen);
  std::vector<const OpCase*> chosen;
  std::string names;
  for (const OpCase& c : cases) {
    names += (names.empty() ? "" : ", ") + c.name;
    if (c.name.find(o.filter) != std::string::npos) chosen.push_back(&c);
  }
  if (chosen.empty())
    throw std::invalid_argument("no op matches --filter '" + o.filter + "' (ops: " + names + ")");
  DeviceTimer timer(o.device);
  std::vector<OpResult> results;
  for (const OpCase* c : chosen) results.push_back(time_case(*c, o, timer));
  return results;
}

// GFLOP/s and GB/s of `cost` done in `ms` milliseconds.
static double giga_per_second(double amount, double ms) {
  return amount / (ms * 1e-3) / 1e9;
}

void print_op_results(const OpBenchOptions& o, const std::vector<OpResult>& results) {
  std::printf("ops on %s: batch %d, %d OpenMP threads, median of %d reps after %d warm-up; %s\n",
              device_name(o.device), o.batch, omp_get_max_threads(), o.reps, o.warmup,
              machine_load().c_str());
  if (o.device == Device::sim) std::printf("%s\n", kSimNote);
  Table table(
      {"op", "pass", "median ms", "min ms", "max ms", "MFLOP", "GFLOP/s", "MB", "GB/s", "inputs"});
  for (const OpResult& r : results)
    for (bool forward : {true, false}) {
      const Cost& cost = forward ? r.cost.forward : r.cost.backward;
      const Spread& t = forward ? r.forward : r.backward;
      table.add_row(
          {forward ? r.name : "", forward ? "fwd" : "bwd", fixed(t.median, 3), fixed(t.min, 3),
           fixed(t.max, 3), fixed(cost.flops / 1e6, 1, true),
           fixed(giga_per_second(cost.flops, t.median), 2, true), fixed(cost.bytes / 1e6, 1, true),
           fixed(giga_per_second(cost.bytes, t.median), 2, true), forward ? r.shapes : ""});
    }
  table.print();
  std::printf(
      "(flops and bytes from the shapes, tools/bench/op_costs.cpp: bytes = each input read and "
      "each output written once; backward times include the autograd walk)\n");
}

nlohmann::json op_results_json(const OpBenchOptions& o, const std::vector<OpResult>& results) {
  auto pass = [](const Cost& cost, const Spread& t) {
    return nlohmann::json{{"flops", cost.flops},
                          {"bytes", cost.bytes},
                          {"ms_median", t.median},
                          {"ms_min", t.min},
                          {"ms_max", t.max},
                          {"gflops", giga_per_second(cost.flops, t.median)},
                          {"gbytes_per_second", giga_per_second(cost.bytes, t.median)}};
  };
  nlohmann::json ops = nlohmann::json::array();
  for (const OpResult& r : results)
    ops.push_back({{"name", r.name},
                   {"inputs", r.shapes},
                   {"forward", pass(r.cost.forward, r.forward)},
                   {"backward", pass(r.cost.backward, r.backward)}});
  nlohmann::json j{{"device", device_name(o.device)},
                   {"batch", o.batch},
                   {"threads", omp_get_max_threads()},
                   {"reps", o.reps},
                   {"warmup", o.warmup},
                   {"ops", ops}};
  if (o.device == Device::sim) j["note"] = kSimNote;
  return j;
}

}  // namespace forge::bench
