// bench: how fast the engine is, per op, per training step, and against the machine's GEMM peak.
//
//   build/bin/bench ops   --device cpu|sim|cuda [--filter NAME] [--reps N] [--warmup N] [--json F]
//   build/bin/bench model --model vit|hrnet|cnn|... [--stem patch|conv] --device ... [--batch 32]
//   [--steps N] [--json F] [--inference]
//   build/bin/bench gemm  [--json F]
//   build/bin/bench all   --device cpu [--json F]        (also: no subcommand)
//
// ops, model and all also take --precision fp32|bf16 and --tf32 (docs/MIXED_PRECISION.md).
// On sim every default shrinks (batch 2, fewer reps): the emulator runs ~1000x slower than a GPU
// and its figures are CPU timings of an emulation. `all` runs each model in a child process of
// its own (this program again), so that each model's peak resident memory is its own.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/cuda/builtin.h"
#include "models/model.h"
#include "tools/bench/gemm_bench.h"
#include "tools/bench/inference_bench.h"
#include "tools/bench/model_bench.h"
#include "tools/bench/op_bench.h"
#include "tools/bench/report.h"
#include "tools/program.h"

using namespace forge;
using namespace forge::bench;

extern char** environ;

namespace {

// A flag left out takes the device's default: `normal` on cpu and cuda, `on_sim` on sim.
int or_default(const std::optional<int>& given, Device device, int normal, int on_sim) {
  return given ? *given : (device == Device::sim ? on_sim : normal);
}

struct Flags {
  std::string device = "cpu", json, filter, model = "vit", stem = "patch";
  std::optional<int> batch, reps, warmup, steps;
  int image_size = 120;
  bool inference = false;  // model: time eval-mode forward passes instead of training steps
  bool cuda_graph = false;
  program::PrecisionFlags precision;
};

OpBenchOptions op_options(const Flags& f) {
  const Device d = parse_device(f.device);
  return {.device = d,
          .batch = or_default(f.batch, d, 32, 2),
          .reps = or_default(f.reps, d, 10, 2),
          .warmup = or_default(f.warmup, d, 2, 1),
          .filter = f.filter};
}

ModelBenchOptions model_options(const Flags& f) {
  const Device d = parse_device(f.device);
  return {.model = f.model,
          .stem = f.stem,
          .device = d,
          .batch = or_default(f.batch, d, 32, 2),
          .image_size = f.image_size,
          .steps = or_default(f.steps, d, 10, 2),
          .warmup = or_default(f.warmup, d, 2, 1),
          .cuda_graph = f.cuda_graph};
}

int run_ops(const Flags& f) {
  const OpBenchOptions o = op_options(f);
  const std::vector<OpResult> results = run_op_bench(o);
  print_op_results(o, results);
  if (!f.json.empty()) write_json(f.json, op_results_json(o, results));
  return 0;
}

int run_inference(const Flags& f) {
  const InferenceResult r = run_inference_bench(model_options(f));
  print_inference_result(r);
  if (!f.json.empty()) write_json(f.json, inference_result_json(r));
  return 0;
}

int run_model(const Flags& f) {
  if (f.inference) return run_inference(f);
  const ModelResult r = run_model_bench(model_options(f));
  print_model_result(r);
  if (!f.json.empty()) write_json(f.json, model_result_json(r));
  return 0;
}

int run_gemm(const Flags& f) {
  const GemmResult r = run_gemm_bench({});
  print_gemm_result(r);
  if (!f.json.empty()) write_json(f.json, gemm_result_json(r));
  return 0;
}

// Runs `bench model` for one preset in a child process and returns its JSON.
nlohmann::json model_in_child(const Flags& f, const std::string& model) {
  const ModelBenchOptions o = model_options(f);
  const std::filesystem::path json =
      std::filesystem::temp_directory_path() /
      ("forge_bench_" + std::to_string(getpid()) + "_" + model + ".json");
  std::vector<std::string> args = {"bench",        "model",
                                   "--model",      model,
                                   "--device",     f.device,
                                   "--batch",      std::to_string(o.batch),
                                   "--steps",      std::to_string(o.steps),
                                   "--warmup",     std::to_string(o.warmup),
                                   "--image-size", std::to_string(o.image_size),
                                   "--precision",  f.precision.precision,
                                   "--json",       json.string()};
  if (f.precision.tf32) args.push_back("--tf32");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
    throw std::runtime_error("cannot start a child process for model " + model);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("the child process benchmarking model " + model + " failed");
  nlohmann::json j = read_json(json.string());
  std::filesystem::remove(json);
  return j;
}

int run_all(const Flags& f) {
  const Device device = parse_device(f.device);
  nlohmann::json all;
  {
    const OpBenchOptions o = op_options(f);
    const std::vector<OpResult> results = run_op_bench(o);
    print_op_results(o, results);
    all["ops"] = op_results_json(o, results);
  }
  std::printf("\n");
  double peak = 0;
  if (device == Device::cpu) {
    const GemmResult g = run_gemm_bench({});
    print_gemm_result(g);
    all["gemm"] = gemm_result_json(g);
    peak = g.peak_gflops;
  } else {
    std::printf("gemm: skipped (the peak-GEMM denominator is a CPU figure; run `bench gemm`)\n");
  }
  all["models"] = nlohmann::json::array();
  for (const char* model : {"vit", "hrnet", "cnn"}) {
    std::printf("\n");
    all["models"].push_back(model_in_child(f, model));
  }
  std::printf("\ntraining steps on %s, precision %s\n", f.device.c_str(),
              f.precision.tf32 ? "tf32" : f.precision.precision.c_str());
  Table table({"model", "step ms", "images/s", "GFLOP/s", "% of peak GEMM", "peak RSS MB"});
  for (const nlohmann::json& m : all["models"]) {
    const double achieved = m["achieved_gflops"].get<double>();
    table.add_row({m["model"].get<std::string>(), fixed(m["step_ms_median"].get<double>(), 1),
                   fixed(m["images_per_second"].get<double>(), 1), fixed(achieved, 2),
                   peak > 0 ? fixed(100 * achieved / peak, 1) : "-",
                   fixed(m["peak_rss_mb"].get<double>(), 0)});
  }
  table.print();
  if (!f.json.empty()) write_json(f.json, all);
  return 0;
}

}  // namespace

// The program itself; program::run (tools/program.h) makes `app` and catches what escapes.
int bench_main(CLI::App& app, int argc, char** argv) {
  register_builtin_backends();  // --device sim / cuda, when built in
  Flags f;
  app.require_subcommand(0, 1);
  auto device_option = [&](CLI::App* sub) {
    sub->add_option("--device", f.device, "cpu, sim or cuda")
        ->check(CLI::IsMember({"cpu", "sim", "cuda"}))
        ->capture_default_str();
    program::add_precision_flags(*sub, f.precision);
  };
  auto json_option = [&](CLI::App* sub) {
    sub->add_option("--json", f.json, "also write the results to this JSON file");
  };
  auto batch_option = [&](CLI::App* sub) {
    sub->add_option("--batch", f.batch, "batch size (default 32; 2 on sim)")
        ->check(CLI::Range(1, 4096));
  };
  auto warmup_option = [&](CLI::App* sub, const char* what) {
    sub->add_option("--warmup", f.warmup, what)->check(CLI::Range(0, 100000));
  };
  auto reps_option = [&](CLI::App* sub) {
    sub->add_option("--reps", f.reps, "timed runs of each op's pass (default 10; 2 on sim)")
        ->check(CLI::Range(1, 100000));
  };
  auto steps_option = [&](CLI::App* sub) {
    sub->add_option("--steps", f.steps, "timed training steps (default 10; 2 on sim)")
        ->check(CLI::Range(1, 100000));
  };

  CLI::App* ops = app.add_subcommand("ops", "forward and backward time of every op");
  device_option(ops);
  ops->add_option("--filter", f.filter, "only the ops whose name contains this");
  reps_option(ops);
  warmup_option(ops, "untimed runs first (default 2; 1 on sim)");
  batch_option(ops);
  json_option(ops);

  CLI::App* model = app.add_subcommand("model", "time a full training step of a preset");
  model->add_option("--model", f.model, "model preset")
      ->check(CLI::IsMember(models::model_presets()))
      ->capture_default_str();
  model->add_option("--stem", f.stem, "the ViT's image embedding: patch or conv (as train's)")
      ->check(CLI::IsMember(models::model_stems()))
      ->capture_default_str();
  device_option(model);
  batch_option(model);
  model->add_option("--image-size", f.image_size, "input size in pixels")
      ->check(CLI::Range(16, 1024))
      ->capture_default_str();
  steps_option(model);
  warmup_option(model, "untimed steps first (default 2; 1 on sim)");
  CLI::Option* inference =
      model->add_flag("--inference", f.inference,
                      "time forward passes in eval mode without autograd, at batch 1 and --batch "
                      "(--steps passes each), instead of training steps");
  model
      ->add_flag("--cuda-graph", f.cuda_graph,
                 "replay the step as a CUDA graph (cuda; sim emulates it): at least 3 untimed "
                 "steps (2 warm-up, 1 captured)")
      ->excludes(inference);  // the captured step is a training step
  json_option(model);

  CLI::App* gemm = app.add_subcommand("gemm", "peak single-precision GEMM of the CPU backend");
  json_option(gemm);

  CLI::App* all = app.add_subcommand("all", "ops, gemm and the vit, hrnet and cnn steps");
  device_option(all);
  batch_option(all);
  reps_option(all);
  steps_option(all);
  warmup_option(all, "untimed op runs and training steps first (default 2; 1 on sim)");
  json_option(all);

  app.parse(argc, argv);
  const train::ScopedPrecision precision =
      program::scoped_precision(parse_device(f.device), f.precision);
  if (ops->parsed()) return run_ops(f);
  if (model->parsed()) return run_model(f);
  if (gemm->parsed()) return run_gemm(f);
  return run_all(f);
}

int main(int argc, char** argv) {
  return program::run(
      "bench",
      "Benchmark forge: per-op timings, training steps, peak CPU GEMM. Without a subcommand: "
      "`all` on cpu.",
      [&](CLI::App& app) { return bench_main(app, argc, argv); });
}
